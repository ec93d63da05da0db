"""Fault injection: stop a writer at each of its commit and file-write boundaries, as a kill or
a full disk would, and compare what a re-run leaves with what an uninterrupted run leaves.

The boundaries are every warehouse write that commits (a COMMIT, or a statement that changes
data outside a transaction) and every artefact write (`quant.artefact.write` and
`write_file`). At each, a fault strikes either just before it (the write never happens) or
just after it (the write happened, nothing after it did). A kill is `Killed`, a BaseException
that no `except Exception` catches, as nothing catches SIGKILL; a full disk is the OSError the
system raises.
"""

from __future__ import annotations

import errno
import importlib
import json
import math
import shutil
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import duckdb

from data.warehouse import Warehouse
from quant import artefact

CHANGES = ("INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "PRAGMA CREATE_FTS",
           "PRAGMA DROP_FTS")
# Columns that say when, in what order or how fast a row was written: they differ between
# any two runs.
WRITTEN_AT = {"ingested_at", "created_at", "rejected_at", "added_at", "started_at",
              "finished_at", "reject_id", "latency_ms"}
# What a re-run may legitimately add or differ in: the record of the stopped attempt itself.
HISTORY = {"job_runs"}


class Killed(BaseException):
    """The process died here."""


class Faults:
    """Counts boundaries; strikes at number `at` (1-based) `when` ("before" or "after") with
    `how` ("kill" or "disk_full")."""

    def __init__(self, at: int | None = None, when: str = "before", how: str = "kill"):
        self.at, self.when, self.how, self.seen = at, when, how, 0
        self.names: list[str] = []

    def boundary(self, name: str, write: Callable[[], object]):
        self.seen += 1
        self.names.append(name)
        strike = self.seen == self.at
        if strike and self.when == "before":
            self._strike(name)
        result = write()
        if strike and self.when == "after":
            raise Killed(f"after {name}")  # a full disk strikes only before a write
        return result

    def _strike(self, name: str) -> None:
        if self.how == "disk_full":
            raise OSError(errno.ENOSPC, "No space left on device", name)
        raise Killed(f"before {name}")


class _Connection:
    """A DuckDB connection whose committing statements are boundaries."""

    def __init__(self, real: duckdb.DuckDBPyConnection, faults: Faults) -> None:
        self._real, self._faults, self._open = real, faults, False

    def __getattr__(self, name: str):
        return getattr(self._real, name)

    def execute(self, sql: str, *args):
        words = " ".join(sql.split()).upper()
        if words.startswith("BEGIN"):
            self._open = True
        elif words.startswith(("COMMIT", "ROLLBACK")):
            self._open = False
            if words.startswith("COMMIT"):
                return self._faults.boundary("COMMIT", lambda: self._real.execute(sql, *args))
        elif not self._open and words.startswith(CHANGES):
            return self._faults.boundary(words[:40], lambda: self._real.execute(sql, *args))
        return self._real.execute(sql, *args)


@contextmanager
def injected(monkeypatch, faults: Faults):
    """Every warehouse opened and every artefact written inside goes through `faults`."""
    connect = Warehouse._connect
    write, write_file = artefact.write, artefact.write_file

    def faulty_connect(self):
        real = connect(self)
        return real if self.read_only else _Connection(real, faults)

    def faulty_write(folder, files):
        return faults.boundary(f"artefact {folder.name}", lambda: write(folder, files))

    def faulty_write_file(path, content):
        return faults.boundary(f"file {path.name}", lambda: write_file(path, content))

    # Imported before the writers are patched: a module first imported inside would bind the
    # faulty writers by name, and keep them (and their counter) after this context ends.
    writers = [importlib.import_module(module) for module in (
        "quant.reports.report", "quant.learned", "quant.reports.run_store", "quant.batch.jobs")]
    with monkeypatch.context() as patch:
        patch.setattr(Warehouse, "_connect", faulty_connect)
        patch.setattr(artefact, "write", faulty_write)
        patch.setattr(artefact, "write_file", faulty_write_file)
        for module in writers:
            _repoint(patch, module, write, faulty_write, write_file, faulty_write_file)
        yield faults


def _repoint(patch, module, write, faulty_write, write_file, faulty_write_file) -> None:
    """A module that imported the writers by name gets the faulty ones too."""
    for name, value in vars(module).items():
        if value is write:
            patch.setattr(module, name, faulty_write)
        elif value is write_file:
            patch.setattr(module, name, faulty_write_file)


def state(root: Path, warehouse: Path) -> dict:
    """What a run leaves: every table's rows (but when they were written, and the job
    history), each artefact's manifest, and the workspace's file names."""
    tables = {}
    with Warehouse(warehouse, read_only=True) as wh:
        names = [n for (n,) in wh.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_type = 'BASE TABLE'").fetchall() if n not in HISTORY]
        for name in sorted(names):
            columns = [c for (c,) in wh.con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                "ORDER BY ordinal_position", [name]).fetchall() if c not in WRITTEN_AT]
            rows = wh.con.execute(f'SELECT {", ".join(columns)} FROM "{name}"').fetchall()
            rows = [tuple(_plain(v, str(root)) for v in row) for row in rows]
            tables[name] = sorted(rows, key=lambda row: repr(
                [v for v in row if not isinstance(v, float)]))
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                   if p.is_file() and not _volatile(p, root, warehouse))
    manifests = {str(p.parent.relative_to(root)): json.loads(p.read_text())["files"]
                 for p in root.rglob(artefact.MANIFEST)}
    for folder in manifests:
        artefact.verified(root / folder, "artefact", "")  # whole, not torn
    return {"tables": tables, "files": files, "artefacts": _contents(root, manifests)}


def same(a: dict, b: dict) -> list[str]:
    """Where two states differ (floats compared to 1e-6 relative: a model's scores may move
    in their last bits with the batch they were computed in)."""
    differences = [f"files: {sorted(set(a['files']) ^ set(b['files']))}"
                   ] if a["files"] != b["files"] else []
    for name in sorted(set(a["artefacts"]) | set(b["artefacts"])):
        if not _near(a["artefacts"].get(name), b["artefacts"].get(name)):
            differences.append(f"artefact file {name} differs")
    for table in sorted(set(a["tables"]) | set(b["tables"])):
        rows_a, rows_b = a["tables"].get(table, []), b["tables"].get(table, [])
        if len(rows_a) != len(rows_b) or not all(
                _close(x, y) for x, y in zip(rows_a, rows_b, strict=True)):
            unlike = [(x, y) for x, y in zip(rows_a, rows_b, strict=False) if not _close(x, y)]
            differences.append(f"{table}: {len(rows_a)} rows vs {len(rows_b)}, first unlike: "
                               f"{unlike[:1]}")
    return differences


def _close(row_a: tuple, row_b: tuple) -> bool:
    return _near(row_a, row_b)


def _plain(value, root: str):
    """A value as compared: the workspace's own path left out (two copies are compared)."""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True, default=str)
    return value.replace(root, "<root>") if isinstance(value, str) else value


def _volatile(path: Path, root: Path, warehouse: Path) -> bool:
    """Files whose presence is not what is compared: the warehouse itself (compared by its
    rows), the job log mirror, locks and caches."""
    relative = path.relative_to(root).parts
    return (path.name.startswith(warehouse.name) or relative[0] in ("logs", ".cache", "cache")
            or path.name.startswith(".scheduler"))


def _contents(root: Path, manifests: dict) -> dict:
    """Each artefact's files, read: tables as rows, JSON as values (compared to 1e-6 like the
    warehouse: two runs may sum in another order), other files by digest."""
    import polars as pl

    contents = {}
    for folder, files in manifests.items():
        for name, entry in files.items():
            path = root / folder / name
            if name.endswith(".parquet"):
                value = [tuple(row) for row in pl.read_parquet(path).rows()]
            elif name.endswith(".json"):
                value = json.loads(path.read_text())
            else:
                value = entry["sha256"]
            contents[f"{folder}/{name}"] = value
    return contents


def _near(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) or (a != a and b != b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_near(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_near(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def fresh(template: Path, into: Path) -> Path:
    if into.exists():
        shutil.rmtree(into)
    shutil.copytree(template, into)
    return into

