"""Batch jobs and the scheduler: idempotence, catch-up, the lock, signals, and SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone

import pytest

from data.warehouse import Warehouse
from quant.api import init_workspace
from quant.batch import jobs
from quant.batch.scheduler import Scheduler, WorkspaceLock, run_once
from quant.config import load_config
from quant.errors import JobError
from tests.llm.tiny import build_tiny_model
from tests.quant.helpers import calendar_prices

AS_OF = date(2024, 6, 28)


def make_workspace(root, tiny, stories: int = 120, schedule: str = "") -> object:
    init_workspace(root)
    toml = (root / "quant.toml").read_text()
    toml = toml.replace('spec = "default"', f'spec = "{tiny}"').replace(
        'precision = "auto"', 'precision = "fp32"')
    toml = toml.split("[schedule.daily]")[0] + schedule
    toml = toml.replace("[pipeline]\n", "[pipeline]\nmin_history = 5\n")
    (root / "quant.toml").write_text(toml)
    config = load_config(root)
    prices = calendar_prices(["AAA", "BBB", "CCC", "DDD"], date(2024, 1, 2), date(2024, 6, 28))
    prices.write_csv(config.inbox_dir / "prices" / "prices.csv")
    start = datetime(2024, 1, 3, 12, tzinfo=timezone.utc)
    with (config.inbox_dir / "news" / "news.jsonl").open("w") as handle:
        for i in range(stories):
            handle.write(json.dumps({
                "published_at": (start + timedelta(hours=3 * i)).isoformat(),
                "title": f"Story {i}: {'beats' if i % 3 else 'misses'} estimates",
                "body": "Shares move on the results.", "tickers": ["AAA", "BBB", "CCC",
                                                                   "DDD"][i % 4]}) + "\n")
    return config


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), "qwen3_moe")


def test_daily_runs_every_step_and_rerunning_does_nothing_twice(tmp_path, tiny):
    config = make_workspace(tmp_path / "ws", tiny)
    (config.inbox_dir / "news" / "broken.jsonl").write_text("{not json\n")
    first = run_once(config, "daily", AS_OF)
    assert first["status"] == "ok", first.get("error")
    assert set(first["counters"].values()) == {"ok"}
    with Warehouse(config.warehouse_path, read_only=True) as wh:
        signals = wh.scalar("SELECT count(*) FROM signals")
        documents = wh.scalar("SELECT count(*) FROM documents")
        backtests = wh.scalar("SELECT count(*) FROM backtests")
        rejects = wh.query("SELECT file, reason FROM rejects").rows()
    assert signals == documents == 120 and backtests == 4
    assert len(rejects) == 1 and "broken.jsonl" in rejects[0][0]
    assert "invalid JSON" in rejects[0][1]
    again = run_once(config, "daily", AS_OF)
    assert again["status"] == "skipped"
    for job in ("ingest", "score"):
        assert run_once(config, job, AS_OF)["status"] == "ok"
    with Warehouse(config.warehouse_path, read_only=True) as wh:
        assert wh.scalar("SELECT count(*) FROM signals") == signals
        assert wh.scalar("SELECT count(*) FROM backtests") == backtests
        assert wh.scalar("SELECT count(*) FROM rejects") == 1
        statuses = wh.query("SELECT job, status FROM job_runs")
    assert (statuses["status"] == "failed").sum() == 0
    assert (config.reports_dir / "index.html").exists()
    assert (config.reports_dir / "evaluations" / f"{AS_OF}.json").exists()


@contextmanager
def attached_scheduler(config):
    """A scheduler holding the warehouse, as `start` would leave it, without its threads."""
    scheduler = Scheduler(config)
    with Warehouse(config.warehouse_path) as wh:
        scheduler.wh = wh
        yield scheduler, wh


def test_catch_up_runs_a_missed_slot_once(tmp_path, tiny):
    config = make_workspace(tmp_path / "ws", tiny, schedule=(
        '[schedule.report]\ncron = "*/5 * * * *"\ntimezone = "UTC"\n'))
    with attached_scheduler(config) as (scheduler, wh):
        long_ago = datetime.now(timezone.utc) - timedelta(hours=3)
        wh.con.execute("INSERT INTO job_runs VALUES ('old', 'report', ?, ?, ?, 'ok', NULL, "
                       "NULL, 1, 'h')", [AS_OF, long_ago, long_ago])
        todo = scheduler.catch_up()
    assert [name for name, _ in todo] == ["report"]  # 36 missed slots, one run


def test_unknown_jobs_and_bad_cron_lines_are_clear(tmp_path, tiny):
    config = make_workspace(tmp_path / "ws", tiny, schedule=(
        '[schedule.daly]\ncron = "0 6 * * *"\n'))
    with pytest.raises(JobError, match=r"\[schedule.daly\] in quant.toml names no job"):
        Scheduler(config)
    config = make_workspace(tmp_path / "ws2", tiny, schedule=(
        '[schedule.daily]\ncron = "61 6 * * *"\n'))
    with pytest.raises(JobError, match="bad schedule"):
        Scheduler(config)
    assert WorkspaceLock(config).holder() is None  # refused before taking the lock


def _quant(ws, *args):
    return [sys.executable, "-m", "quant.cli", "-w", str(ws), *args]


def _wait_for(predicate, timeout=120.0, every=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def _log_rows(config):
    path = jobs.log_path(config)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_sigkill_mid_score_then_restart_scores_each_document_once(tmp_path, tiny):
    config = make_workspace(tmp_path / "ws", tiny, stories=2500, schedule=(
        '[schedule.score]\ncron = "0 0 1 1 *"\ntimezone = "UTC"\n'))
    assert run_once(config, "ingest", AS_OF)["status"] == "ok"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(_quant(config.root, "schedule", "once", "score", "--as-of",
                                    str(AS_OF)), env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    # Kill once a first chunk of signals is committed (the heartbeat says > 256 scored).
    assert _wait_for(lambda: any(r.get("job") == "score" and r.get("progress", 0) > 300
                                 for r in _log_rows(config)), timeout=300)
    assert child.poll() is None, "scoring finished before it could be killed"
    child.kill()
    child.wait()

    # A reader sees a clean file (the writer is gone); the run row still says running.
    with Warehouse(config.warehouse_path, read_only=True) as wh:
        partial = wh.scalar("SELECT count(*) FROM signals")
        assert wh.scalar("SELECT status FROM job_runs WHERE job = 'score'") == "running"
    assert 0 < partial < 2500

    scheduler = subprocess.Popen(_quant(config.root, "schedule", "start"), env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_for(lambda: sum(r.get("status") == "ok" and r["job"] == "score"
                                     for r in _log_rows(config)) >= 1, timeout=300)
        # While the scheduler holds the warehouse, a second writer or reader gets a clear
        # message; the scheduler's status is still readable from the run log.
        status = subprocess.run(_quant(config.root, "db", "status"), capture_output=True,
                                text=True)
        assert status.returncode == 2 and "locked by process" in status.stderr
        assert "Traceback" not in status.stderr
        second = subprocess.run(_quant(config.root, "schedule", "start"), capture_output=True,
                                text=True, timeout=60)
        assert second.returncode == 2 and "a scheduler already runs" in second.stderr
        assert str(scheduler.pid) in second.stderr
        history = subprocess.run(_quant(config.root, "schedule", "history", "--json"),
                                 capture_output=True, text=True)
        assert history.returncode == 0 and json.loads(history.stdout)["source"].startswith("log")
    finally:
        scheduler.send_signal(signal.SIGTERM)
        assert scheduler.wait(timeout=120) == 0
    assert WorkspaceLock(config).holder() is None
    with Warehouse(config.warehouse_path, read_only=True) as wh:
        pairs = wh.scalar("SELECT count(*) FROM signals")
        distinct = wh.scalar("SELECT count(DISTINCT (doc_id, ticker)) FROM signals")
        runs = wh.query("SELECT status FROM job_runs WHERE job = 'score' ORDER BY started_at")
    assert pairs == distinct == 2500
    assert runs["status"].to_list()[0] == "interrupted" and "ok" in runs["status"].to_list()


@pytest.mark.slow
def test_sigterm_aborts_the_running_job_cleanly(tmp_path, tiny):
    config = make_workspace(tmp_path / "ws", tiny, stories=2500, schedule=(
        '[schedule.score]\ncron = "* * * * *"\ntimezone = "UTC"\n'))
    assert run_once(config, "ingest", AS_OF)["status"] == "ok"
    scheduler = subprocess.Popen(_quant(config.root, "schedule", "start"),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert _wait_for(lambda: any(r.get("job") == "score" and r.get("progress", 0) > 0
                                 for r in _log_rows(config)), timeout=300)
    scheduler.send_signal(signal.SIGTERM)
    assert scheduler.wait(timeout=120) == 0
    assert WorkspaceLock(config).holder() is None
    with Warehouse(config.warehouse_path, read_only=True) as wh:
        status, error = wh.con.execute("SELECT status, error FROM job_runs WHERE job = 'score' "
                                       "ORDER BY started_at LIMIT 1").fetchone()
        written = wh.scalar("SELECT count(*) FROM signals")
    assert status == "aborted" and "stop requested" in error
    assert written < 2500  # it stopped early, and what it committed is whole
    with Warehouse(config.warehouse_path, read_only=True) as wh:  # nothing started after it
        assert wh.scalar("SELECT count(*) FROM job_runs WHERE job = 'score'") == 1


def test_no_queued_job_starts_once_a_stop_is_requested(tmp_path, tiny):
    config = make_workspace(tmp_path / "ws", tiny, schedule=(
        '[schedule.daily]\ncron = "30 6 * * 1-5"\n'))
    with attached_scheduler(config) as (scheduler, wh):
        jobs.STOP.set()
        try:
            scheduler._run("ingest", AS_OF)   # a slot queued behind the aborted job
        finally:
            jobs.STOP.clear()
        assert wh.scalar("SELECT count(*) FROM job_runs") == 0


def test_a_catch_up_of_a_job_without_a_schedule_line_runs(tmp_path, tiny):
    config = make_workspace(tmp_path / "ws", tiny, schedule=(
        '[schedule.daily]\ncron = "30 6 * * 1-5"\n'))
    with attached_scheduler(config) as (scheduler, wh):
        scheduler._run("ingest", AS_OF)   # `ingest` has no [schedule.ingest] line
        status = wh.scalar("SELECT status FROM job_runs WHERE job = 'ingest'")
    assert status == "ok"
