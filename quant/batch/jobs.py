"""Batch jobs: plain, importable, idempotent functions `(config, as_of, wh=None)`.

`ingest` (new files in the inbox), `score` (documents not yet scored by the configured model
and prompt), `evaluate`, `backtest` (the configured strategies), `book` (each live
deployment's targets for the next session), `report` (an index of the day's runs), `daily`
(all of them, in order) and `monitor` (the checks after it: `quant.batch.monitor`; the daily job
runs them whether or not a step failed). Each attempt writes a `job_runs` row when it
starts and when it ends (ok, skipped, failed, aborted; `interrupted` when a later start finds it
still `running` from a process that died). Re-running a job for the same `as_of` does no work
twice: ingest and score skip what is done; evaluate, backtest and report skip an as_of that
already finished ok.

A stop request (SIGTERM/SIGINT in the scheduler) is honoured between files and scoring
batches: the job stops there, committed work stays, and its row says `aborted`.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path

from data.ingest.batch import expand_paths, reject_file
from data.warehouse import Warehouse
from quant.api import Workspace
from quant.artefact import write_file
from quant.batch import job_log
from quant.batch import monitor as watch
from quant.config import Config
from quant.errors import JobError
from quant.process import alive

STOP = threading.Event()
RERUN_WHEN_DONE = {"ingest", "score"}   # cheap to re-check; the others skip a finished as_of


class JobAborted(JobError):
    """The job stopped at a safe point because a stop was requested."""


def check_stop() -> None:
    if STOP.is_set():
        raise JobAborted("stop requested: the job stopped at a safe point")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def log_path(config: Config) -> Path:
    return job_log.log_path(config.root)


def _log(config: Config, record: dict) -> None:
    job_log.append(config.root, record)


@contextmanager
def _warehouse(config: Config, wh: Warehouse | None):
    if wh is not None:
        yield wh
        return
    with Warehouse(config.warehouse_path) as own:
        yield own


def mark_interrupted(wh: Warehouse, config: Config) -> list[dict]:
    """Rows left `running` by a process that is gone: mark them interrupted, return them."""
    stale = [r for r in job_log.running(wh) if not _alive(r["pid"], r["host"])]
    for row in stale:
        job_log.mark_interrupted(wh, row["run_id"], _now())
        _log(config, {**row, "status": "interrupted", "at": _now()})
    return stale


def _alive(pid: int | None, host: str | None) -> bool:
    if pid is None:
        return False
    if host != socket.gethostname():
        return True  # a process on another machine cannot be checked from here: leave it
    if pid == os.getpid():
        return False  # a row from an earlier process that had our (reused) pid
    return alive(pid)


def run_job(name: str, config: Config, as_of: date, wh: Warehouse | None = None) -> dict:
    """Run one job with its run row; returns the row as a dict."""
    if name not in JOBS:
        raise JobError(f"unknown job {name!r}; jobs: {', '.join(JOBS)}")
    with _warehouse(config, wh) as warehouse:
        return _tracked(name, config, as_of, warehouse, JOBS[name])


def _tracked(name: str, config: Config, as_of: date, wh: Warehouse,
             body: Callable[[Config, date, Warehouse], dict]) -> dict:
    row = {"run_id": uuid.uuid4().hex[:12], "job": name, "as_of": as_of, "started_at": _now(),
           "pid": os.getpid(), "host": socket.gethostname()}
    if name not in RERUN_WHEN_DONE and job_log.finished_ok(wh, name, as_of):
        row |= {"status": "skipped", "finished_at": _now(),
                "counters": {"reason": f"{name} already finished ok for {as_of}"}}
        job_log.insert(wh, row)
        _log(config, row)
        return row
    job_log.insert(wh, {**row, "status": "running"})
    _log(config, {**row, "status": "running"})
    try:
        counters = body(config, as_of, wh)
        row |= {"status": "ok", "counters": counters}
    except JobAborted as exc:
        row |= {"status": "aborted", "error": str(exc)}
    except Exception as exc:  # a job failure is recorded, never lost
        row |= {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    row["finished_at"] = _now()
    job_log.finish(wh, row)
    _log(config, row)
    return row


# ------------------------------------------------------------------ the jobs

def ingest(config: Config, as_of: date, wh: Warehouse) -> dict:
    """Every file in inbox/prices, inbox/news and inbox/filings not ingested before."""
    counters: dict = {}
    for kind in ("prices", "news", "filings"):
        folder = config.inbox_dir / kind
        files, skipped = expand_paths([folder]) if folder.exists() else ([], [])
        totals = {"files": len(skipped), "new_files": 0, "inserted": 0,
                  "rejected": len(skipped)}
        for path, reason in skipped:  # links out of the inbox are not followed
            reject_file(wh, kind, path, reason)
        for path in files:
            check_stop()
            for result in Workspace.on(config, wh).ingest(kind, [path]):
                totals["files"] += 1
                totals["new_files"] += not result.skipped_file
                totals["inserted"] += result.inserted
                totals["rejected"] += result.rejected
        counters[kind] = totals
    return counters


def score(config: Config, as_of: date, wh: Warehouse) -> dict:
    """Every document not yet scored by the configured model and prompt."""
    last = {"at": 0.0, "done": 0}

    def stop_point(done: int, total: int) -> None:
        check_stop()
        # A heartbeat in the run log, for status and ops: every 2 s, and at least every 256
        # documents (a part), so a fast model's progress is visible too.
        if time.monotonic() - last["at"] > 2 or done - last["done"] >= 256:
            last.update(at=time.monotonic(), done=done)
            _log(config, {"job": "score", "as_of": as_of, "progress": done, "of": total,
                          "at": _now()})

    summary = Workspace.on(config, wh).score(on_progress=stop_point)
    return {k: summary[k] for k in ("pending", "ok", "abstain", "failed", "written",
                                    "docs_per_s", "fingerprint", "prompt_version")}


def evaluate(config: Config, as_of: date, wh: Warehouse) -> dict:
    evaluation = Workspace.on(config, wh).evaluate(until=as_of)
    path = config.reports_dir / "evaluations" / f"{as_of}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, json.dumps(evaluation.to_json(), default=str, indent=1))
    first = evaluation.first
    return {"path": str(path), "rank_ic": first.rank_ic["mean"],
            "pooled_ic": first.pooled_ic["ic"], "rows": first.rows}


def backtest(config: Config, as_of: date, wh: Warehouse) -> dict:
    results = {}
    for name in config.backtest.strategies:
        check_stop()
        summary = Workspace.on(config, wh).backtest(name, {}, until=as_of).summary
        results[name] = {"run_id": summary["run_id"], "sharpe": summary["sharpe"]}
    return results


def book(config: Config, as_of: date, wh: Warehouse) -> dict:
    """Each live deployment's targets for the next session (`quant.live.book`)."""
    books = Workspace.on(config, wh).daily_books(as_of)
    refused = {name: b["refused"] for name, b in books.items() if "refused" in b}
    if refused:  # the others are written; the job says which could not be decided, and why
        raise JobError("; ".join(f"{name}: {why}" for name, why in refused.items()))
    return books


def monitor(config: Config, as_of: date, wh: Warehouse) -> dict:
    """The checks of `quant.batch.monitor`; breaches go to the notifiers (the job itself is ok:
    it did its work, and what it found is in its counters, the job log and the alerts)."""
    found = watch.checks(config, wh, as_of)
    breaches = [c for c in found if not c["ok"]]
    return {"checks": len(found), "breaches": breaches,
            "notifier_failures": watch.notify(config, breaches, as_of)}


def report(config: Config, as_of: date, wh: Warehouse) -> dict:
    """The index page of every stored run, newest first."""
    return Workspace.on(config, wh).write_index(as_of)


def daily(config: Config, as_of: date, wh: Warehouse) -> dict:
    """ingest -> score -> evaluate -> backtest -> book -> report, each with its own run row,
    then the monitor's checks, which run even after a failed step (that failure is one)."""
    steps = {}
    try:
        for name in ("ingest", "score", "evaluate", "backtest", "book", "report"):
            check_stop()
            row = _tracked(name, config, as_of, wh, JOBS[name])
            steps[name] = row["status"]
            if row["status"] == "aborted":
                raise JobAborted(f"stopped during {name}")
            if row["status"] == "failed":
                raise JobError(f"{name} failed: {row.get('error')}")
    finally:
        if not STOP.is_set():
            steps["monitor"] = _tracked("monitor", config, as_of, wh, monitor)["status"]
    return steps


JOBS: dict[str, Callable[[Config, date, Warehouse], dict]] = {
    "ingest": ingest, "score": score, "evaluate": evaluate, "backtest": backtest,
    "book": book, "report": report, "monitor": monitor, "daily": daily,
}
