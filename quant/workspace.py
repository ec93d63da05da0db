"""A workspace's moving parts, shared by the command line, the jobs and the demo: open its
warehouse, load its model and engine, score what is pending, evaluate the signal."""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from quant.config import CONFIG_NAME, DEFAULT_TOML, Config, load_config

err_console = Console(stderr=True, soft_wrap=True, emoji=False)


def open_warehouse(config: Config, read_only: bool = False):
    from data.warehouse import Warehouse

    return Warehouse(config.warehouse_path, read_only=read_only)


def init_workspace(root: Path) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    if not (root / CONFIG_NAME).exists():
        (root / CONFIG_NAME).write_text(DEFAULT_TOML)
    config = load_config(root)
    for kind in ("prices", "news", "filings"):
        (config.inbox_dir / kind).mkdir(parents=True, exist_ok=True)
    with open_warehouse(config) as wh:
        version = wh.scalar("SELECT max(version) FROM schema_version")
    return {"workspace": str(config.root), "warehouse": str(config.warehouse_path),
            "schema_version": version}


def load_request(config: Config, spec: str | None = None, precision: str | None = None,
                 adapter: str | None = None):
    """The model quant.toml names, with the caller's overrides: one value for every scorer
    (here and on Ray), so each loads the same weights."""
    from llm.load import LoadRequest

    cache = model_cache(config)
    return LoadRequest(spec or config.model.spec, precision or config.model.precision,
                       str(cache) if cache else None, tuple(sorted(config.models.items())),
                       adapter or config.model.adapter or None)


def load_model(config: Config, spec: str | None = None, precision: str | None = None,
               adapter: str | None = None):
    return load_request(config, spec, precision, adapter).load()


def model_cache(config: Config) -> Path | None:
    """Where converted models live: quant.toml's [model] cache_dir, else the user's cache."""
    if not config.model.cache_dir:
        return None
    return config.root / Path(config.model.cache_dir).expanduser()  # absolute paths stay


def make_engine(config: Config, loaded):
    from llm.engine import Engine

    return Engine(loaded, config.model)


@contextmanager
def progress_callback(description: str, quiet: bool = False):
    """An `on_progress(done, total)` that draws a rich progress bar (nothing when `quiet`,
    e.g. when output is JSON)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
                  disable=quiet, transient=False) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def score_documents(config: Config, wh, mode: str | None = None, spec: str | None = None,
                    since=None, limit: int | None = None, on_progress=None,
                    engine_name: str | None = None, sample: bool = False) -> dict:
    """Load the model and score what is pending (here or on Ray); `on_progress(done, total)`
    as documents are scored."""
    from quant.scoring import score_pending

    mode = mode or config.model.mode
    request = load_request(config, spec)
    engine = make_engine(config, request.load())
    scorer, extra = None, {}
    if (engine_name or config.engine) == "ray":
        from quant.distributed import ray_scorer

        scorer = ray_scorer(request, engine, mode, workers=config.ray_workers,
                            address=config.ray_address or None)  # pinned to engine's model there
        extra = {"engine": "ray", "workers": config.ray_workers}
    summary = score_pending(wh, engine, mode, since, limit, progress=on_progress,
                            sample=sample, scorer=scorer)
    return summary | extra


def evaluate_report(config: Config, wh, signal: str | None = None, horizons=None, since=None,
                    until=None):
    from quant.evaluate import evaluate_signal
    from quant.pipeline import panel_from_warehouse

    params = dataclasses.replace(config.pipeline, horizons=horizons or config.pipeline.horizons)
    panel, which = panel_from_warehouse(wh, params, since=since, until=until,
                                        calendar=config.data.calendar)
    evaluation = evaluate_signal(panel, signal or config.evaluate.signal, params.horizons,
                                 config.evaluate.quantiles)
    return dataclasses.replace(evaluation, signals=which.provenance())
