"""Full-text search (BM25) over news and filing sections, with DuckDB's fts extension.

The extension loads offline from the `duckdb-extension-fts` PyPI package. DuckDB's fts index
is a snapshot: it is rebuilt after each ingest that adds documents.
"""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from data.errors import DataError
from data.warehouse import Warehouse


def load_fts(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("LOAD fts")
    except duckdb.Error:
        import duckdb_extensions

        duckdb_extensions.import_extension("fts", con=con)
        con.execute("LOAD fts")


def refresh_index(wh: Warehouse) -> None:
    """Rebuild the BM25 indexes on `documents` (title, body) and `filing_sections`, both in
    one transaction: a rebuild that fails or is killed leaves the previous indexes usable."""
    load_fts(wh.con)
    with wh.transaction() as con:
        con.execute("PRAGMA create_fts_index('documents', 'doc_id', 'title', 'body', "
                    "stemmer='porter', stopwords='english', overwrite=1)")
        con.execute("PRAGMA create_fts_index('filing_sections', 'section_id', 'title', 'text', "
                    "stemmer='porter', stopwords='english', overwrite=1)")


def _has_index(wh: Warehouse) -> bool:
    """Both indexes exist (a warehouse from before the rebuild was atomic may have one)."""
    return wh.scalar("SELECT count(*) FROM information_schema.schemata WHERE schema_name IN "
                     "('fts_main_documents', 'fts_main_filing_sections')") == 2


def search(wh: Warehouse, query: str, ticker: str | None = None, kind: str | None = None,
           since: date | None = None, limit: int = 10) -> pl.DataFrame:
    """Documents and filing sections ranked by BM25: doc_id, item, kind, published_at,
    tickers, title, snippet, score."""
    if not query.strip():
        raise DataError("empty search query")
    if limit < 1:
        raise DataError(f"--limit must be at least 1, not {limit}")
    if kind not in (None, "news", "filing"):
        raise DataError(f"--kind must be news or filing, not {kind!r}")
    if not _has_index(wh):
        if wh.read_only:
            raise DataError("no search index yet: run an ingest (it builds the index)")
        refresh_index(wh)
    load_fts(wh.con)
    first_term = query.split()[0].lower()
    sql = """
    WITH hits AS (
        SELECT doc_id, NULL::VARCHAR AS item, body AS text,
               fts_main_documents.match_bm25(doc_id, $q) AS score
        FROM documents WHERE kind = 'news'
        UNION ALL
        SELECT doc_id, item, text, fts_main_filing_sections.match_bm25(section_id, $q) AS score
        FROM filing_sections
    )
    SELECT h.doc_id, h.item, d.kind, d.published_at, d.tickers,
           CASE WHEN h.item IS NULL THEN d.title ELSE d.title || ' - Item ' || h.item END
               AS title,
           substr(h.text, greatest(1, instr(lower(h.text), $t) - 80), 240) AS snippet,
           h.score
    FROM hits h JOIN documents d USING (doc_id)
    WHERE h.score IS NOT NULL
      AND ($ticker IS NULL OR list_contains(d.tickers, $ticker))
      AND ($kind IS NULL OR d.kind = $kind)
      AND ($since IS NULL OR d.published_at >= $since)
    ORDER BY h.score DESC
    LIMIT $limit
    """
    params = {"q": query, "t": first_term, "ticker": ticker.upper() if ticker else None,
              "kind": kind, "since": since, "limit": limit}
    return wh.con.execute(sql, params).pl()
