"""The `quant` command line: the one place that wires data, llm, strategies and quant together.

Every command works on a workspace (the current folder or `--workspace DIR`) and takes `--json`
for machine-readable output. Framework errors print one clear line and exit with status 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from data.errors import FrameworkError
from quant import jsonable
from quant.config import Config, load_config
from quant.tables import fmt, print_evaluation, table_of
from quant.workspace import (
    evaluate_report,
    init_workspace,
    load_model,
    make_engine,
    model_cache,
    open_warehouse,
    score_documents,
)

console = Console()
err_console = Console(stderr=True)


def emit(data: object, as_json: bool, render=None) -> None:
    """Print `data` as JSON, or through `render` (rich) for people."""
    if as_json:
        click.echo(json.dumps(data, default=jsonable.default, indent=2))
    elif render is not None:
        render(data)
    else:
        console.print(data)


def json_option(fn):
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(fn)


def config_of(ctx: click.Context) -> Config:
    return load_config(ctx.obj["workspace"])


@click.group()
@click.option("--workspace", "-w", type=click.Path(file_okay=False), default=".",
              help="Workspace folder holding quant.toml and the warehouse (default: here).")
@click.pass_context
def cli(ctx: click.Context, workspace: str) -> None:
    """Point-in-time LLM signals, factor evaluation and honest backtests."""
    ctx.obj = {"workspace": Path(workspace)}


@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@json_option
@click.pass_context
def init(ctx: click.Context, directory: str | None, as_json: bool) -> None:
    """Create a workspace: quant.toml, an empty migrated warehouse and inbox folders."""
    root = Path(directory) if directory else ctx.obj["workspace"]
    summary = init_workspace(root)
    emit(summary, as_json, lambda d: console.print(
        f"workspace ready at [bold]{d['workspace']}[/] (schema version {d['schema_version']})"))


# ------------------------------------------------------------------ ingest

@cli.group()
def ingest() -> None:
    """Load prices, news or SEC filings into the warehouse (idempotent, per-file transactions)."""


def _mapping(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        theirs, sep, ours = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"--map takes THEIRCOL=ourcol, got {pair!r}")
        out[theirs] = ours
    return out


def _run_ingest(ctx: click.Context, kind: str, paths: tuple[str, ...], as_json: bool,
                **options: object) -> None:
    from data.ingest import ingest_files

    config = config_of(ctx)
    with open_warehouse(config) as wh:
        results = [r.as_dict() for r in ingest_files(wh, kind, paths, **options)]
    emit(results, as_json, lambda rows: console.print(table_of([
        {"file": Path(r["file"]).name, "read": r["read"], "inserted": r["inserted"],
         "duplicate": r["duplicate"], "rejected": r["rejected"],
         "note": "already ingested" if r["skipped_file"] else "; ".join(
             f"{k} ({v})" for k, v in list(r["reasons"].items())[:3])}
        for r in rows], title=f"ingest {kind}")))


@ingest.command("prices")
@click.argument("paths", nargs=-1, required=True)
@click.option("--map", "pairs", multiple=True, help="Rename a column: THEIRCOL=ourcol.")
@click.option("--wide", is_flag=True, help="One column per ticker (plus a date column).")
@click.option("--field", "wide_field", default="close", help="What a wide file's values are.")
@click.option("--source", default=None)
@json_option
@click.pass_context
def ingest_prices_cmd(ctx, paths, pairs, wide, wide_field, source, as_json):
    """Daily prices from CSV or Parquet (long or wide)."""
    _run_ingest(ctx, "prices", paths, as_json, mapping=_mapping(pairs), wide=wide,
                wide_field=wide_field, source=source)


@ingest.command("news")
@click.argument("paths", nargs=-1, required=True)
@click.option("--map", "pairs", multiple=True, help="Rename a column: THEIRCOL=ourcol.")
@click.option("--source", default=None, help="Source name when the file has no source column.")
@json_option
@click.pass_context
def ingest_news_cmd(ctx, paths, pairs, source, as_json):
    """News and posts from JSONL, CSV, Parquet or RSS/Atom (.gz read transparently)."""
    config = config_of(ctx)
    _run_ingest(ctx, "news", paths, as_json, mapping=_mapping(pairs), source=source,
                assume_zone=config.data.assume_zone)


@ingest.command("filings")
@click.argument("paths", nargs=-1, required=True)
@click.option("--index", type=click.Path(dir_okay=False),
              help="CSV with file,form_type,filed_date,ticker,cik columns.")
@click.option("--form-type", default=None)
@click.option("--filed-date", default=None, help="YYYY-MM-DD, when the file carries none.")
@click.option("--ticker", default=None)
@click.option("--cik", default=None)
@json_option
@click.pass_context
def ingest_filings_cmd(ctx, paths, index, form_type, filed_date, ticker, cik, as_json):
    """SEC filings: EDGAR submission .txt or .htm(l) primary documents."""
    _run_ingest(ctx, "filings", paths, as_json, index=index, form_type=form_type,
                filed_date=filed_date, ticker=ticker, cik=cik)


# ------------------------------------------------------------------ db, search

@cli.group()
def db() -> None:
    """Inspect the warehouse."""


@db.command("status")
@json_option
@click.pass_context
def db_status(ctx: click.Context, as_json: bool) -> None:
    """Tables, row counts, date ranges and rejects (opens the warehouse read-only)."""
    from data.status import warehouse_status

    config = config_of(ctx)
    with open_warehouse(config, read_only=True) as wh:
        status = warehouse_status(wh)

    def render(s: dict) -> None:
        console.print(f"warehouse [bold]{s['path']}[/], schema version {s['schema_version']}")
        console.print(table_of(s["tables"], title="tables"))
        if s["rejects_by_reason"]:
            console.print(table_of(s["rejects_by_reason"], title="rejects"))

    emit(status, as_json, render)


@cli.command()
@click.argument("query")
@click.option("--ticker", default=None)
@click.option("--kind", type=click.Choice(["news", "filing"]), default=None)
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--limit", default=10, show_default=True)
@json_option
@click.pass_context
def search(ctx, query, ticker, kind, since, limit, as_json):
    """Rank news and filing sections by BM25."""
    from data.search import search as run_search

    config = config_of(ctx)
    with open_warehouse(config, read_only=True) as wh:
        hits = run_search(wh, query, ticker=ticker, kind=kind,
                          since=since.date() if since else None, limit=limit).to_dicts()
    emit(hits, as_json, lambda rows: console.print(table_of([
        {"score": f"{r['score']:.2f}", "published": str(r["published_at"])[:16],
         "tickers": ",".join(r["tickers"]), "title": (r["title"] or "")[:60],
         "snippet": (r["snippet"] or "").replace("\n", " ")[:100]} for r in rows],
        title=f"search: {query}")))


# ------------------------------------------------------------------ models and signals

@cli.command()
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--model", "spec", default=None, help="Model spec (default: [model].spec).")
@click.option("--mode", type=click.Choice(["score", "reason"]), default=None)
@click.option("--limit", type=int, default=None)
@click.option("--sample", is_flag=True, help="With --limit: a spread-out sample, not the oldest.")
@click.option("--engine", "engine_name", type=click.Choice(["local", "ray"]), default=None)
@json_option
@click.pass_context
def score(ctx, since, spec, mode, limit, sample, engine_name, as_json):
    """Score every document not yet scored by this model and prompt."""
    from datetime import timezone

    config = config_of(ctx)
    with open_warehouse(config) as wh:
        summary = score_documents(config, wh, mode, spec,
                                  since.replace(tzinfo=timezone.utc) if since else None,
                                  limit, quiet=as_json, engine_name=engine_name,
                                  sample=sample)
    emit(summary, as_json, lambda s: console.print(table_of([s], title="signals")))


@cli.group("llm")
def llm_group() -> None:
    """The local model: info, evaluation and fine-tuning."""


@llm_group.command("info")
@click.option("--model", "spec", default=None)
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp8", "int8"]),
              default=None)
@json_option
@click.pass_context
def llm_info(ctx, spec, precision, as_json):
    """Model, parameters, experts, precision and fingerprint."""
    import llm

    info = llm.describe(load_model(config_of(ctx), spec, precision))
    emit(info, as_json, lambda d: console.print(table_of(
        [{"key": k, "value": v} for k, v in d.items()], title="model")))


@llm_group.command("eval")
@click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False))
@click.option("--text-col", default="text", show_default=True)
@click.option("--label-col", default="label", show_default=True)
@click.option("--model", "spec", default=None)
@click.option("--mode", type=click.Choice(["score", "reason"]), default="score")
@click.option("--limit", type=int, default=None)
@json_option
@click.pass_context
def llm_eval(ctx, data_path, text_col, label_col, spec, mode, limit, as_json):
    """Accuracy, F1, confusion matrix and calibration on a labelled Parquet/CSV file."""
    from llm.evaluate import evaluate, read_labelled

    config = config_of(ctx)
    frame = read_labelled(data_path, text_col, label_col, limit)
    metrics = evaluate(make_engine(config, load_model(config, spec)), frame, mode)
    metrics["data"] = str(data_path)

    def render(m: dict) -> None:
        console.print(table_of([{k: (round(v, 4) if isinstance(v, float) else v)
                                 for k, v in m.items() if k not in ("confusion", "labels")}],
                               title="evaluation"))
        console.print(table_of([{"truth": label, **dict(zip(m["labels"], row, strict=True))}
                                for label, row in zip(m["labels"], m["confusion"], strict=True)],
                               title="confusion (rows: truth)"))

    emit(metrics, as_json, render)


def _command_line() -> str:
    """This invocation, as a shell command (recorded in what it writes, to reproduce it)."""
    import shlex

    return shlex.join(["quant", *sys.argv[1:]])


@llm_group.command("finetune")
@click.option("--data", "train_files", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False), help="labelled file (repeatable)")
@click.option("--valid", "valid_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False),
              help="validation file (repeatable): chooses the epoch, never trained on")
@click.option("--text-col", default="text", show_default=True)
@click.option("--label-col", "label_cols", multiple=True, default=("label", "sentiment"),
              show_default=True, help="label column; the first one a file has is used")
@click.option("--base", default="default-base", show_default=True, help="model to adapt")
@click.option("--epochs", type=int, default=3, show_default=True)
@click.option("--lora-rank", type=int, default=8, show_default=True)
@click.option("--layers", default="10:16", show_default=True,
              help="trained band START:STOP; the head reads layer STOP's input")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="adapter directory to write")
@json_option
@click.pass_context
def llm_finetune(ctx, train_files, valid_files, text_col, label_cols, base, epochs, lora_rank,
                 layers, batch_size, out, as_json):
    """Fine-tune a domain adapter (low-rank band + sentiment head) on labelled text."""
    from llm.finetune import FinetuneSettings, train_adapter

    config = config_of(ctx)
    try:
        start, stop = (int(x) for x in layers.split(":"))
    except ValueError:
        raise click.BadParameter(f"--layers takes START:STOP like 10:16, not {layers!r}"
                                 ) from None
    settings = FinetuneSettings(start=start, stop=stop, rank=lora_rank, epochs=epochs,
                                batch_size=batch_size)
    log = (lambda line: None) if as_json else (lambda line: console.print(line))
    meta = train_adapter(base, list(train_files), list(valid_files), text_col, list(label_cols),
                         out, settings, cache_dir=model_cache(config),
                         names=config.models, command=_command_line(), log=log)
    report = meta["report"]
    summary = {"adapter": out, "best_epoch": report["best_epoch"],
               "wall_seconds": report["wall_seconds"],
               **{f"{name} {k}": m[k] for name, m in report["valid"].items()
                  for k in ("accuracy", "weighted_f1")}}
    emit(meta if as_json else summary, as_json,
         lambda s: console.print(table_of([s], title="fine-tuning")))


@llm_group.command("reward")
@click.option("--posts", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Parquet of posts: ticker, created_at (UTC), text")
@click.option("--prices", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Parquet of daily prices: ticker, date/session, open, close, adj_close, volume")
@click.option("--split", type=click.DateTime(["%Y-%m-%d"]), default="2014-09-01",
              show_default=True, help="train on sessions before, evaluate on posts from")
@click.option("--model", "spec", default="default", show_default=True)
@click.option("--steps", type=int, default=300, show_default=True)
@click.option("--horizon", type=int, default=1, show_default=True)
@click.option("--out", required=True, type=click.Path(file_okay=False))
@json_option
@click.pass_context
def llm_reward(ctx, posts, prices, split, spec, steps, horizon, out, as_json):
    """GRPO-style reward stage: the head learns from realised returns (out-of-sample IC)."""
    from llm.grpo import GrpoSettings
    from quant.reward import RewardSettings, train_reward_adapter

    config = config_of(ctx)
    loaded = load_model(config, spec, "fp32")
    settings = RewardSettings(split=split.date(), horizon=horizon,
                              grpo=GrpoSettings(steps=steps))
    log = (lambda line: None) if as_json else (lambda line: console.print(line))
    meta = train_reward_adapter(loaded, posts, prices, out, settings,
                                command=_command_line(), log=log)
    report = meta["reward_stage"]
    rows = [{"head": name, "horizon": h, **{k: v for k, v in m.items() if k != "pooled_ic_95"}}
            for name in ("supervised_ic", "rewarded_ic") for h, m in report[name].items()]
    emit(meta if as_json else rows, as_json,
         lambda r: console.print(table_of(r, title="out-of-sample rank IC")))


# ------------------------------------------------------------------ research

def _horizons(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(h) for h in text.split(","))
    except ValueError:
        raise click.BadParameter(f"--horizons takes integers like 1,5,20, not {text!r}") from None


@cli.command("evaluate")
@click.option("--signal", default=None, help="Panel column (default: [evaluate].signal).")
@click.option("--horizons", default=None, help="Comma-separated sessions, e.g. 1,5,20.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None)
@json_option
@click.pass_context
def evaluate_cmd(ctx, signal, horizons, since, until, as_json):
    """IC, rank IC, decay, quantile returns, turnover, coverage and calibration."""
    config = config_of(ctx)
    with open_warehouse(config, read_only=True) as wh:
        report = evaluate_report(config, wh, signal, _horizons(horizons),
                                 since.date() if since else None, until.date() if until else None)
    emit(report.to_json() if as_json else report, as_json,
         lambda r: print_evaluation(r, console))


# ------------------------------------------------------------------ backtests

def _params(pairs: tuple[str, ...]) -> dict:
    out: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"--params takes key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@cli.command()
@click.option("--strategy", "strategy_name", required=True)
@click.option("--params", "pairs", multiple=True, help="Parameter override: key=value.")
@click.option("--sweep", is_flag=True, help="Every point of the strategy's grid.")
@click.option("--walk-forward", is_flag=True, help="Rolling train/test over the grid.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--engine", "engine_name", type=click.Choice(["local", "ray"]), default=None)
@json_option
@click.pass_context
def backtest(ctx, strategy_name, pairs, sweep, walk_forward, since, until, engine_name,
             as_json):
    """Backtest a strategy on the signal panel (vectorbt), store the run and write its report."""
    from quant import runs

    if sweep and walk_forward:
        raise click.BadParameter("choose --sweep or --walk-forward, not both")
    config = config_of(ctx)
    mode = "sweep" if sweep else "walk_forward" if walk_forward else "single"
    with open_warehouse(config) as wh:
        summary = runs.run(config, wh, strategy_name, _params(pairs), mode,
                           since.date() if since else None, until.date() if until else None,
                           engine=engine_name)
    emit(summary, as_json, lambda s: console.print(table_of(
        [{"": k, "value": fmt(v, 3)} for k, v in s.items()], title="backtest")))


@cli.command()
@click.argument("run_id", default="latest")
@json_option
@click.pass_context
def report(ctx, run_id, as_json):
    """Write the HTML report of a stored run (RUN_ID or `latest`)."""
    from quant import runs

    config = config_of(ctx)
    with open_warehouse(config, read_only=True) as wh:
        summary = runs.render(config, wh, run_id)
    emit(summary, as_json, lambda s: console.print(f"report: [bold]{s['report']}[/]"))


@cli.command("strategies")
@json_option
def strategies_cmd(as_json):
    """The registered strategies with their parameters and grids."""
    from strategies import REGISTRY, get_strategy

    get_strategy("buy_and_hold")  # loads the built-ins
    rows = [{"name": s.name, "description": s.description, "defaults": s.defaults,
             "grid": s.grid} for s in REGISTRY.values()]
    emit(rows, as_json, lambda r: console.print(table_of(r, title="strategies")))


# ------------------------------------------------------------------ schedule

@cli.group()
def schedule() -> None:
    """Scheduled batch jobs (APScheduler cron lines from quant.toml)."""


@schedule.command("start")
@click.pass_context
def schedule_start(ctx):
    """Run the scheduler in the foreground until SIGTERM/SIGINT; logs each run."""
    import logging

    from quant.scheduler import Scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    Scheduler(config_of(ctx)).start()


@schedule.command("once")
@click.argument("job")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), default=None)
@json_option
@click.pass_context
def schedule_once(ctx, job, as_of, as_json):
    """Run one job now (for system cron, CI or a one-shot container)."""
    from quant.scheduler import run_once

    row = run_once(config_of(ctx), job, as_of.date() if as_of else None)
    emit(row, as_json, lambda r: console.print(table_of(
        [{"": k, "value": fmt(v, 3)} for k, v in r.items()], title=f"job {job}")))
    if row["status"] in ("failed", "aborted"):
        sys.exit(1)


@schedule.command("status")
@json_option
@click.pass_context
def schedule_status(ctx, as_json):
    """Whether a scheduler runs, the next fire times, the latest runs."""
    from quant.scheduler import status

    info = status(config_of(ctx))

    def render(s: dict) -> None:
        holder = s["scheduler"]
        console.print(f"scheduler: {'running ' + json.dumps(holder) if holder else 'not running'}")
        console.print(table_of(s["schedules"], title="schedules"))
        console.print(table_of(s["latest"], title="latest runs"))

    emit(info, as_json, render)


@schedule.command("history")
@click.option("--limit", default=50, show_default=True)
@json_option
@click.pass_context
def schedule_history(ctx, limit, as_json):
    """Past job runs, newest first."""
    from quant.scheduler import history

    info = history(config_of(ctx), limit)
    emit(info, as_json, lambda h: console.print(table_of(
        [{k: str(fmt(v))[:60] for k, v in r.items()} for r in h["runs"]],
        title=f"job runs ({h['source']})")))


# ------------------------------------------------------------------ demo

@cli.command()
@click.option("--dir", "directory", default="demo-workspace", show_default=True,
              type=click.Path(file_okay=False), help="Workspace the demo builds (reused).")
@json_option
def demo(directory: str, as_json: bool) -> None:
    """Build a workspace from the bundled sample data and run the whole pipeline on it."""
    from quant.demo import run_demo

    summary = run_demo(Path(directory), quiet=as_json)
    emit(summary, as_json, lambda s: None)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except FrameworkError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
