"""A summary of what the warehouse holds: row counts, date ranges, rejects."""

from __future__ import annotations

from data.ingest.sections import MIN_COVERAGE
from data.warehouse import Warehouse

_RANGES = {
    "prices": "SELECT min(session)::VARCHAR, max(session)::VARCHAR, count(DISTINCT ticker) "
              "FROM prices",
    "documents": "SELECT min(published_at)::VARCHAR, max(published_at)::VARCHAR, "
                 "count(DISTINCT source) FROM documents",
}


def warehouse_status(wh: Warehouse) -> dict:
    tables = wh.query("SELECT table_name FROM information_schema.tables "
                      "WHERE table_schema = 'main' AND table_type = 'BASE TABLE' "
                      "ORDER BY table_name")["table_name"].to_list()
    rows = []
    for name in tables:
        entry = {"table": name, "rows": wh.scalar(f'SELECT count(*) FROM "{name}"'),
                 "from": None, "to": None, "distinct": None}
        if name in _RANGES:
            entry["from"], entry["to"], entry["distinct"] = wh.con.execute(
                _RANGES[name]).fetchone()
        rows.append(entry)
    by_kind = wh.query("SELECT kind, count(*) AS n FROM documents GROUP BY kind ORDER BY kind")
    rejects = wh.query("SELECT reason, count(*) AS n, count(DISTINCT file) AS files "
                       "FROM rejects GROUP BY reason ORDER BY n DESC LIMIT 20")

    thin = wh.query(f"""
        SELECT title, round(TRY_CAST(meta->>'sections_coverage' AS DOUBLE), 3) AS coverage
        FROM documents WHERE kind = 'filing'
          AND TRY_CAST(meta->>'sections_coverage' AS DOUBLE) < {MIN_COVERAGE}
        ORDER BY coverage LIMIT 20""")
    return {
        "path": str(wh.path),
        "schema_version": wh.scalar("SELECT max(version) FROM schema_version"),
        "tables": rows,
        "documents_by_kind": by_kind.to_dicts(),
        "rejects_by_reason": rejects.to_dicts(),
        # filings whose item sections leave much of the body out (their text is not scored)
        "filings_with_thin_sections": thin.to_dicts(),
    }
