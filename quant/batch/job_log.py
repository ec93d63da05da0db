"""The job log: the `job_runs` table, the one module that reads and writes it, and its mirror
as JSON lines (`logs/job_runs.jsonl`), readable while the scheduler holds the warehouse.

A run row is inserted `running` when a job starts and updated once with how it ended (`ok`,
`failed`, `aborted`; `skipped` is inserted finished); a row left `running` by a process that is
gone is marked `interrupted`, which is how lost runs are found again at start-up.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

from data.warehouse import Warehouse

FIELDS = ("job", "as_of", "status", "started_at", "finished_at", "counters", "error")


def log_path(root: Path) -> Path:
    return root / "logs" / "job_runs.jsonl"


def append(root: Path, record: dict) -> None:
    """One line of the mirror (a run row, or a progress heartbeat without run_id)."""
    path = log_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(record, default=str) + "\n")


def insert(wh: Warehouse, row: dict) -> None:
    wh.con.execute(
        "INSERT INTO job_runs (run_id, job, as_of, started_at, finished_at, status, counters, "
        "error, pid, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [row["run_id"], row["job"], row["as_of"], row["started_at"], row.get("finished_at"),
         row["status"], json.dumps(row.get("counters"), default=str), row.get("error"),
         row["pid"], row["host"]])


def finish(wh: Warehouse, row: dict) -> None:
    """Record how a running row ended."""
    wh.con.execute("UPDATE job_runs SET status = ?, finished_at = ?, counters = ?, error = ? "
                   "WHERE run_id = ?", [row["status"], row["finished_at"],
                                        json.dumps(row.get("counters"), default=str),
                                        row.get("error"), row["run_id"]])


def finished_ok(wh: Warehouse, job: str, as_of: date) -> bool:
    return bool(wh.scalar("SELECT count(*) FROM job_runs WHERE job = ? AND as_of = ? "
                          "AND status = 'ok'", [job, as_of]))


def failed_on(wh: Warehouse, as_of: date) -> list[tuple[str, str]]:
    """(job, error) of each run for `as_of` that failed, in the order they started."""
    return wh.con.execute("SELECT job, error FROM job_runs WHERE status = 'failed' "
                          "AND as_of = ? ORDER BY started_at", [as_of]).fetchall()


def running(wh: Warehouse) -> list[dict]:
    return wh.query("SELECT run_id, job, as_of, pid, host FROM job_runs "
                    "WHERE status = 'running'").to_dicts()


def mark_interrupted(wh: Warehouse, run_id: str, at: datetime) -> None:
    wh.con.execute("UPDATE job_runs SET status = 'interrupted', finished_at = ?, error = "
                   "'the process died while the job ran' WHERE run_id = ?", [at, run_id])


def last_done(wh: Warehouse, job: str) -> datetime | None:
    """When the job last started a run that finished ok or was skipped as done."""
    return wh.scalar("SELECT max(started_at) FROM job_runs WHERE job = ? AND "
                     "status IN ('ok', 'skipped')", [job])


def latest(wh: Warehouse, limit: int) -> list[dict]:
    return wh.query(f"SELECT {', '.join(FIELDS)} FROM job_runs ORDER BY started_at DESC "
                    "LIMIT ?", [limit]).to_dicts()


def latest_from_mirror(root: Path, limit: int) -> list[dict]:
    """The newest runs as the JSON-lines mirror last recorded them."""
    path = log_path(root)
    if not path.exists():
        return []
    merged: dict[str, dict] = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if "run_id" not in record:  # a progress heartbeat
            continue
        merged[record["run_id"]] = {**merged.get(record["run_id"], {}), **record}
    rows = sorted(merged.values(), key=lambda r: r["started_at"], reverse=True)
    return [{k: r.get(k) for k in FIELDS} for r in rows[:limit]]


def now() -> datetime:
    return datetime.now(timezone.utc)
