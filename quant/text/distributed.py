"""Scale-out on Ray: scoring with Ray Data and an actor pool of model replicas, sweeps as Ray
tasks. The same code runs on a laptop (a local Ray) and on a cluster (`ray_address`).

Scoring: pending work is exported from DuckDB as Arrow, `map_batches` sends it through an
actor pool (one model replica per actor: a GPU each, or N CPU workers), and the signal rows
come back as Arrow to the driver, the only process that writes the warehouse (DuckDB allows
one writer; workers never open it). Rows are keyed like local ones and inserted with ON
CONFLICT DO NOTHING, so running twice writes nothing and a retried batch never duplicates.
A worker that dies mid-batch is restarted and its batch retried.

Sweeps: `ray_map` runs the backtest's chunks of the parameter grid (each a vectorised vectorbt
run) as Ray tasks and returns them in grid order, so metrics equal the local engine's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import polars as pl

from quant.errors import JobError
from quant.text.scoring import score_part


def init(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to `address` (a cluster) or start a local Ray; a clear error if unreachable."""
    # Ray 2.6x asks for a token unless told otherwise; a local or private cluster needs none.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
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

    def __init__(self, request, settings, mode: str, fail_once_marker: str | None = None
                 ) -> None:
        import torch

        from llm.infer.engine import Engine  # torch: in the Ray worker, not the driver

        torch.set_num_threads(max(1, int(os.environ.get("QUANT_WORKER_THREADS", "1"))))
        self.engine = Engine(request.load(), settings)  # refuses another fingerprint
        self.mode = mode
        self.fail_once_marker = fail_once_marker  # tests: die once, mid-batch

    def __call__(self, batch):
        if self.fail_once_marker and not os.path.exists(self.fail_once_marker):
            open(self.fail_once_marker, "w").close()
            os._exit(1)
        rows = score_part(self.engine, pl.from_arrow(batch), self.mode)
        return rows.with_columns(pl.col("decoding").cast(pl.String)).to_arrow()


def ray_scorer(request, engine, mode: str, workers: int = 2, batch_size: int = 64,
               address: str | None = None, fail_once_marker: str | None = None):
    """A `quant.text.scoring.Scorer` on a Ray actor pool of `workers` model replicas, each loaded
    from `request` (an `llm.model.load.LoadRequest` pinned to the driver's model, so every
    replica's rows carry the driver's fingerprint)."""
    if request.expect is None:
        request = request.pinned(engine.loaded)
    def run(parts: list[pl.DataFrame], done) -> Iterator[pl.DataFrame]:
        import ray
        from ray.data import ActorPoolStrategy

        work = pl.concat(parts) if parts else None
        if work is None or work.is_empty():
            return
        init(address, num_cpus=None if address else max(workers, 2))
        dataset = ray.data.from_arrow(work.to_arrow()).repartition(
            max(1, -(-work.height // batch_size)))
        scored = dataset.map_batches(
            ScoringActor, batch_format="pyarrow", batch_size=batch_size,
            fn_constructor_kwargs={"request": request, "settings": engine.options,
                                   "mode": mode, "fail_once_marker": fail_once_marker},
            compute=ActorPoolStrategy(size=workers),
            # On one small machine the actors must leave a CPU to Ray Data's own tasks, or
            # the pool takes every CPU and the pipeline stalls; on a cluster each gets a CPU.
            num_cpus=1 if address else 0.5, max_restarts=3, max_task_retries=3)
        for ref in scored.to_arrow_refs():
            table = ray.get(ref)
            if table.num_rows:
                done(table.num_rows)
                yield pl.from_arrow(table)
    return run


def ray_map(address: str | None = None):
    """A `quant.backtests.backtest.ChunkMap` that runs each chunk as a Ray task; results in
    order."""
    def run(fn, chunks: list) -> list:
        import ray

        init(address)
        shared = ray.put(fn)  # the prepared prices travel once, not once per chunk
        task = ray.remote(max_retries=2)(_call)
        return ray.get([task.remote(shared, chunk) for chunk in chunks])
    return run


def _call(fn, chunk):
    return fn(chunk)
