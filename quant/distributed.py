"""Scale-out on Ray: scoring with Ray Data and an actor pool of model replicas, sweeps as Ray
tasks. The same code runs on a laptop (a local Ray) and on a cluster (`ray_address`).

Scoring: pending work is exported from DuckDB as Arrow, `map_batches` sends it through an
actor pool (one model replica per actor: a GPU each, or N CPU workers), and the signal rows
come back as Arrow to the driver, the only process that writes the warehouse (DuckDB allows
one writer; workers never open it). Rows are keyed like local ones and inserted with ON
CONFLICT DO NOTHING, so running twice writes nothing and a retried batch never duplicates.
A worker that dies mid-batch is restarted and its batch retried.

Sweeps: the parameter grid is split into chunks, each a vectorised vectorbt run in a task;
the results are put back in grid order, so metrics equal the local engine's.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict

import numpy as np
import pandas as pd
import polars as pl

from quant import workspace
from quant.errors import JobError

os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def init(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to `address` (a cluster) or start a local Ray; a clear error if unreachable."""
    import ray

    if ray.is_initialized():
        return
    if address and address != "auto":
        _check_reachable(address)
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # ray raises ConnectionError, RuntimeError, TimeoutError ...
        raise JobError(f"cannot reach the Ray cluster at {address or 'local'}: {exc}. Start "
                       "one with `ray start --head` (and `ray start --address HEAD:6379` on "
                       "each worker), or leave ray_address empty for a local Ray") from None


def _check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail fast (ray.init would retry for minutes) when nothing listens at the address."""
    import socket

    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return
    except (OSError, ValueError) as exc:
        raise JobError(f"cannot reach the Ray cluster at {address}: {exc}. Start one with "
                       "`ray start --head` (and `ray start --address HEAD:6379` on each "
                       "worker), or leave ray_address empty for a local Ray") from None


class ScoringActor:
    """One model replica; scores Arrow batches of pending work into signal rows."""

    def __init__(self, spec: str, precision: str, cache_dir: str, names: dict,
                 engine_options: dict, mode: str, fail_once_marker: str | None = None) -> None:
        import torch

        import llm
        from llm.engine import Engine

        torch.set_num_threads(max(1, int(os.environ.get("QUANT_WORKER_THREADS", "1"))))
        self.engine = Engine(llm.load(spec, precision, cache_dir=cache_dir, names=names),
                             **engine_options)
        self.mode = mode
        self.fail_once_marker = fail_once_marker  # tests: die once, mid-batch

    def __call__(self, batch):
        from llm.extract import decoding_settings, score_part

        if self.fail_once_marker and not os.path.exists(self.fail_once_marker):
            open(self.fail_once_marker, "w").close()
            os._exit(1)
        part = pl.from_arrow(batch)
        rows = score_part(self.engine, part, self.mode, decoding_settings(self.engine,
                                                                          self.mode))
        return rows.with_columns(pl.col("decoding").cast(pl.String)).to_arrow()


def extract_on_ray(wh, config, engine, mode: str, since=None, limit: int | None = None,
                   workers: int = 2, batch_size: int = 64, address: str | None = None,
                   fail_once_marker: str | None = None) -> dict:
    """Like `llm.extract.extract`, with the scoring on a Ray actor pool."""
    import ray
    from ray.data import ActorPoolStrategy

    from llm.extract import pending, summarise, write_signals

    init(address, num_cpus=None if address else max(workers, 2))
    work = pending(wh, engine, mode, since, limit)
    started = time.perf_counter()
    if work.is_empty():
        return summarise(pl.DataFrame(schema={"status": pl.String, "tokens": pl.Int32}), 0, 0,
                         0.0, engine, mode) | {"engine": "ray"}
    spec = config.model.spec
    options = {"batch_size": engine.batch_size, "max_input_tokens": engine.max_input_tokens,
               "max_new_tokens": engine.max_new_tokens, "min_label_mass": engine.min_label_mass,
               "events": engine.events}
    dataset = ray.data.from_arrow(work.to_arrow()).repartition(
        max(1, -(-work.height // batch_size)))
    scored = dataset.map_batches(
        ScoringActor, batch_format="pyarrow", batch_size=batch_size,
        fn_constructor_kwargs={"spec": spec, "precision": config.model.precision,
                               "cache_dir": workspace.model_cache(config),
                               "names": dict(config.models), "engine_options": options,
                               "mode": mode, "fail_once_marker": fail_once_marker},
        compute=ActorPoolStrategy(size=workers),
        # On one small machine the actors must leave a CPU to Ray Data's own tasks, or the
        # pool takes every CPU and the pipeline stalls; on a cluster each replica gets a CPU.
        num_cpus=1 if address else 0.5, max_restarts=3, max_task_retries=3)
    tables = [ray.get(ref) for ref in scored.to_arrow_refs()]
    rows = pl.concat([pl.from_arrow(t) for t in tables if t.num_rows]) if tables else None
    written = 0
    if rows is not None:
        rows = rows.unique(["doc_id", "section", "ticker"], keep="first")  # a retried batch
        for start in range(0, rows.height, 1000):
            written += write_signals(wh, rows.slice(start, 1000))
    seconds = time.perf_counter() - started
    summary = summarise(rows if rows is not None else pl.DataFrame(
        schema={"status": pl.String, "tokens": pl.Int32}), work.height, written, seconds,
        engine, mode)
    return summary | {"engine": "ray", "workers": workers}


def sweep_on_ray(panel: pl.DataFrame, strategy_name: str, settings, grid: list[dict],
                 chunks: int = 4, address: str | None = None):
    """`quant.backtest.sweep` with the grid split into Ray tasks; same result object."""
    import ray

    from quant import backtest as bt
    from quant import stats

    init(address)
    panel_ref = ray.put(panel.to_arrow())

    @ray.remote(max_retries=2)
    def run_chunk(panel_arrow, name: str, settings_dict: dict, part: list[dict]):
        from quant import backtest as local_bt
        from strategies import get_strategy

        result = local_bt._run(pl.from_arrow(panel_arrow), get_strategy(name), part,
                               local_bt.Settings(**settings_dict), "sweep")
        return result.returns, result.turnover, result.exposure

    parts = [list(p) for p in np.array_split(np.array(grid, dtype=object), chunks) if len(p)]
    outputs = ray.get([run_chunk.remote(panel_ref, strategy_name, asdict(settings), p)
                       for p in parts])
    returns = pd.concat([o[0] for o in outputs], axis=1)
    returns.columns = range(returns.shape[1])
    result = bt.Result(strategy_name, "sweep", grid, returns,
                       np.concatenate([o[1] for o in outputs]),
                       np.concatenate([o[2] for o in outputs]))
    result.metrics = [stats.summary(returns[i].to_numpy(), float(result.turnover[i]),
                                    float(result.exposure[i])) for i in returns.columns]
    return bt.finish_sweep(result)
