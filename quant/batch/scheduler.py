"""All scheduling in one place: APScheduler 3 cron triggers from quant.toml.

- The config is the source of truth: no persistent job store (a store inside the warehouse
  would lock it for the scheduler's whole life). Missed runs are found from `job_runs`: at
  start-up a job whose latest cron slot has passed since its last run runs once (coalesced),
  and rows left `running` by a dead process are marked `interrupted` and run again.
- `max_instances=1`, coalescing and a misfire grace time; one worker thread, so the jobs share
  the scheduler's single warehouse writer connection and never overlap.
- One scheduler per workspace: a lock file held (flock) for the process's life.
- SIGTERM/SIGINT: the running job stops at its next safe point (row `aborted`), no queued job
  starts, the scheduler shuts down and the lock is released.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import socket
import threading
from datetime import date, datetime, timezone

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from data.warehouse import Warehouse
from quant.batch import job_log, jobs
from quant.batch.cron import as_of_for, previous_fire, trigger
from quant.config import Config
from quant.errors import JobError

log = logging.getLogger("quant.batch.scheduler")
MISFIRE_GRACE_S = 6 * 3600


class WorkspaceLock:
    """An exclusive lock on `<workspace>/.scheduler.lock`, held until released or exit."""

    def __init__(self, config: Config) -> None:
        self.path = config.root / ".scheduler.lock"
        self.handle = None

    def acquire(self) -> WorkspaceLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise JobError(f"a scheduler already runs for workspace {self.path.parent} "
                           f"(holder: {holder}); stop it first, or use another workspace") \
                from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": datetime.now(timezone.utc).isoformat()}))
        handle.flush()
        self.handle = handle
        return self

    def release(self) -> None:
        if self.handle is not None:
            self.handle.seek(0)
            self.handle.truncate()
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None

    def holder(self) -> dict | None:
        """Who holds the lock now (None when nobody does)."""
        if not self.path.exists():
            return None
        with self.path.open("a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                text = handle.read().strip()
                return json.loads(text) if text else {"pid": None}
            fcntl.flock(handle, fcntl.LOCK_UN)
        return None


class Scheduler:
    """The long-lived process behind `quant schedule start`."""

    def __init__(self, config: Config) -> None:
        if not config.schedule:
            raise JobError(f"no [schedule.JOB] entries in {config.root / 'quant.toml'}; add one "
                           "such as [schedule.daily] cron = \"30 6 * * 1-5\"")
        for name in config.schedule:
            if name not in jobs.JOBS:
                raise JobError(f"[schedule.{name}] in quant.toml names no job; jobs: "
                               f"{', '.join(jobs.JOBS)}")
        self.triggers = {name: trigger(entry.cron, entry.timezone)
                         for name, entry in config.schedule.items()}  # bad lines fail here
        self.config = config
        self.lock = WorkspaceLock(config)
        self.stopped = threading.Event()

    def _run(self, name: str, as_of: date | None = None) -> None:
        if jobs.STOP.is_set():  # a slot queued behind the job a stop request aborted
            log.info("%s: not started, the scheduler is stopping", name)
            return
        # A catch-up may rerun an interrupted job that has no schedule line (`schedule once`).
        zone = self.config.schedule[name].timezone if name in self.config.schedule else "UTC"
        as_of = as_of or as_of_for(datetime.now(timezone.utc), zone)
        row = jobs.run_job(name, self.config, as_of, self.wh)
        log.info("%s %s: %s %s", name, as_of, row["status"], row.get("error") or "")

    def catch_up(self) -> list[tuple[str, date]]:
        """Interrupted runs again, and each job whose latest slot passed unrun: once."""
        todo: list[tuple[str, date]] = []
        for row in jobs.mark_interrupted(self.wh, self.config):
            todo.append((row["job"], row["as_of"]))
        now = datetime.now(timezone.utc)
        for name, entry in self.config.schedule.items():
            slot = previous_fire(entry.cron, entry.timezone, now)
            if slot is None:
                continue
            last = job_log.last_done(self.wh, name)
            if (last is None or last < slot) and (name, as_of_for(slot, entry.timezone)) \
                    not in todo:
                todo.append((name, as_of_for(slot, entry.timezone)))
        return todo

    def start(self, block: bool = True) -> None:
        self.lock.acquire()
        try:
            self.wh = Warehouse(self.config.warehouse_path)
        except BaseException:
            self.lock.release()
            raise
        jobs.STOP.clear()
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": MISFIRE_GRACE_S})
        for name, rule in self.triggers.items():
            scheduler.add_job(self._run, rule, args=[name], id=name, name=name)
        for name, as_of in self.catch_up():
            log.info("catching up: %s for %s", name, as_of)
            scheduler.add_job(self._run, args=[name, as_of], id=f"catch-up-{name}-{as_of}")
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        scheduler.start()
        log.info("scheduler started for %s: %s", self.config.root,
                 {j.id: str(j.next_run_time) for j in scheduler.get_jobs()})
        if not block:
            self._scheduler, self._previous = scheduler, previous
            return
        try:
            while not self.stopped.wait(1.0):
                pass
        finally:
            self._shutdown(scheduler, previous)

    def _on_signal(self, signum: int, frame: object) -> None:
        log.info("signal %s: stopping at the next safe point", signum)
        jobs.STOP.set()
        self.stopped.set()

    def stop(self) -> None:
        jobs.STOP.set()
        self.stopped.set()
        if hasattr(self, "_scheduler"):
            self._shutdown(self._scheduler, self._previous)

    def _shutdown(self, scheduler: BackgroundScheduler, previous: dict) -> None:
        scheduler.shutdown(wait=True)  # the running job returns at its next safe point
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        self.wh.close()
        self.lock.release()
        log.info("scheduler stopped; lock released")


def run_once(config: Config, name: str, as_of: date | None = None) -> dict:
    """`quant schedule once JOB`: for system cron, CI or a one-shot container."""
    lock = WorkspaceLock(config).acquire()
    jobs.STOP.clear()
    previous = {sig: signal.signal(sig, lambda *_: jobs.STOP.set())
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with Warehouse(config.warehouse_path) as wh:
            interrupted = jobs.mark_interrupted(wh, config)
            row = jobs.run_job(name, config, as_of or date.today(), wh)
        row["recovered"] = [f"{r['job']} {r['as_of']}" for r in interrupted]
        return row
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        lock.release()


def status(config: Config) -> dict:
    """Lock holder, next fire times from the config, and the latest runs (from the log when
    the warehouse is held by the scheduler)."""
    now = datetime.now(timezone.utc)
    schedules = []
    for name, entry in config.schedule.items():
        rule = trigger(entry.cron, entry.timezone)
        schedules.append({"job": name, "cron": entry.cron, "timezone": entry.timezone,
                          "next": rule.get_next_fire_time(None, now)})
    return {"workspace": str(config.root), "scheduler": WorkspaceLock(config).holder(),
            "schedules": schedules, "latest": history(config, limit=len(jobs.JOBS))["runs"]}


def history(config: Config, limit: int = 50) -> dict:
    try:
        with Warehouse(config.warehouse_path, read_only=True) as wh:
            runs = job_log.latest(wh, limit)
        return {"source": "warehouse", "runs": runs}
    except Exception as exc:  # held by the scheduler: read the JSON-lines mirror instead
        return {"source": f"log (warehouse busy: {str(exc)[:80]})",
                "runs": job_log.latest_from_mirror(config.root, limit)}
