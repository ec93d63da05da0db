"""Numbered SQL migrations (`data/migrations/NNNN_name.sql`), applied in order.

Each applied file is recorded in `schema_version`; a database written by a newer schema than
this code knows is refused rather than guessed at.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from data.errors import DataError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migration file, in order."""
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        found.append((int(path.name[:4]), path.stem, path.read_text()))
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise DataError(f"migrations in {MIGRATIONS_DIR} are not numbered 1..n: {versions}")
    return found


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchone()[0]
    if not exists:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]


def check_schema(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """The database's schema version; an error if this code is older than the database."""
    version = current_version(con)
    latest = len(migrations())
    if version > latest:
        raise DataError(
            f"warehouse {path} has schema version {version}, newer than this code knows "
            f"({latest}): upgrade the framework, or point at another warehouse"
        )
    return version


def apply_migrations(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    """Apply the migrations the database lacks, each in its own transaction."""
    version = check_schema(con, path)
    applied = []
    for number, name, sql in migrations():
        if number <= version:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMPTZ DEFAULT now())"
            )
            con.execute(sql)
            con.execute("INSERT INTO schema_version (version, name) VALUES (?, ?)", [number, name])
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            raise DataError(f"migration {name} failed on {path}: {exc}") from None
        con.execute("COMMIT")
        applied.append(name)
    return applied
