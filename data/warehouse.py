"""The warehouse: one DuckDB file, migrated on open, one writer process at a time.

DuckDB allows a single read-write process per file; a second one fails at once. We turn that
failure into a `DataError` naming the file and the holder, and let readers open read-only.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from data.errors import DataError
from data.migrate import apply_migrations, check_schema

_LOCK_HOLDER = re.compile(r"PID (\d+)")
LOCK_WAIT = 5.0  # seconds a connection waits for another process to let go of the file


class Warehouse:
    """A DuckDB warehouse file. `read_only=True` for readers; writers migrate it on open."""

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if read_only and not self.path.exists():
            raise DataError(
                f"no warehouse at {self.path}: run `quant init` (or a writing command) first"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = self._connect()
        self.con.execute("SET TimeZone = 'UTC'")  # every timestamp in and out is UTC
        if read_only:
            check_schema(self.con, self.path)
        else:
            apply_migrations(self.con, self.path)

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """Connect, waiting up to LOCK_WAIT seconds for another process's connection to close
        (a reader's call is short: a notebook's read-only workspace opens the file only for
        the length of each call)."""
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=self.read_only)
            except duckdb.IOException as exc:
                message = str(exc)
                if "lock" not in message.lower():
                    raise DataError(f"cannot open warehouse {self.path}: {message}") from None
                if time.monotonic() > deadline:
                    raise DataError(_locked(self.path, message, self.read_only)) from None
                time.sleep(0.2)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All-or-nothing: commit on success, roll back on any exception."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def query(self, sql: str, params: list | None = None):
        """Run a query and return a polars DataFrame (Arrow underneath)."""
        return self.con.execute(sql, params or []).pl()

    def scalar(self, sql: str, params: list | None = None):
        row = self.con.execute(sql, params or []).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _locked(path: Path, message: str, read_only: bool) -> str:
    holder = _LOCK_HOLDER.search(message)
    pid = holder.group(1) if holder else None
    who = f"process {pid}{_command_of(pid)}" if pid else "another process"
    wanted = "read it" if read_only else "write to it"
    return (f"warehouse {path} is locked by {who}, which has it open, so this process cannot "
            f"{wanted} (DuckDB lets one process write a file, and none while another has it "
            "open); wait for that job to finish, stop it, or run this command in the process "
            "that holds the warehouse (e.g. `quant schedule once ...` inside the scheduler)")


def _command_of(pid: str) -> str:
    """`: its command line` where the system tells it (Linux), else nothing."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return ""
    command = " ".join(w.decode(errors="replace") for w in words if w)[:160]
    return f" ({command})" if command else ""
