"""Full-text search (BM25) over news and filing sections, with DuckDB's fts extension.

The extension loads offline from the `duckdb-extension-fts` PyPI package. What is indexed is
`search_passages`: each news body and filing section cut at line breaks into passages of at
most about `PASSAGE_CHARS` characters, because the extension's index build grows much faster
than linearly with the length of one text. A hit is the best passage of a document or section.
DuckDB's fts index is a snapshot: after an ingest that adds documents, their passages are added
and the index rebuilt, in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
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


PASSAGE_CHARS = 32_768  # a passage's size; a line longer than LINE_CHARS is cut at that width
LINE_CHARS = 8_192
BATCH_BYTES = 64 * 1024**2  # texts cut per insert: memory stays bounded whatever the corpus

# Every news body and filing section that has no passages yet.
_PENDING = """
SELECT doc_id, NULL::VARCHAR AS item, length(coalesce(body, '')) AS size FROM documents
WHERE kind = 'news' AND doc_id NOT IN (SELECT doc_id FROM search_passages)
UNION ALL
SELECT doc_id, item, length(text) FROM filing_sections
WHERE doc_id NOT IN (SELECT doc_id FROM search_passages)
"""
_TEXTS = """
SELECT doc_id, NULL::VARCHAR AS item, title, coalesce(body, '') AS text FROM documents
WHERE kind = 'news' AND doc_id IN (SELECT unnest($docs))
UNION ALL
SELECT doc_id, item, title, coalesce(text, '') FROM filing_sections
WHERE doc_id IN (SELECT unnest($docs)) AND item IN (SELECT unnest($items))
"""


def passages_of(text: str) -> Iterator[tuple[int, str]]:
    """(number, passage) of `text`: its lines (cut to LINE_CHARS) in order, grouped by their
    running length (each line counts one more, for its break) into passages of PASSAGE_CHARS.
    Linear in the text: a 10 MB line is 1,221 pieces, never a copy per piece."""
    total, current, parts = 0, 0, []
    for line in text.split("\n"):
        for start in range(0, max(len(line), 1), LINE_CHARS):
            piece = line[start:start + LINE_CHARS]
            total += len(piece) + 1
            number = (total - 1) // PASSAGE_CHARS
            if parts and number != current:
                yield current, "\n".join(parts)
                parts = []
            current = number
            parts.append(piece)
    yield current, "\n".join(parts)


def pending_passages(wh: Warehouse) -> int:
    """How many news bodies and filing sections have no passages yet."""
    return wh.scalar(f"SELECT count(*) FROM ({_PENDING})")


def _add_passages(con: duckdb.DuckDBPyConnection) -> None:
    pending = con.execute(_PENDING).fetchall()
    batch, size = [], 0
    for doc_id, item, length in pending + [(None, None, BATCH_BYTES)]:
        if batch and size + length > BATCH_BYTES:
            _insert_passages(con, batch)
            batch, size = [], 0
        if doc_id is not None:
            batch.append((doc_id, item))
            size += length


def _insert_passages(con: duckdb.DuckDBPyConnection, keys: list[tuple[str, str | None]]
                     ) -> None:
    wanted = set(keys)
    rows = []
    for doc_id, item, title, text in con.execute(_TEXTS, {
            "docs": sorted({d for d, _ in keys}),
            "items": sorted({i for _, i in keys if i is not None})}).fetchall():
        if (doc_id, item) not in wanted:
            continue
        rows += [(f"{doc_id}|{item or ''}|{number}", doc_id, item,
                  title if number == 0 else None, passage)
                 for number, passage in passages_of(text)]
    frame = pl.DataFrame(rows, orient="row", schema={
        "passage_id": pl.String, "doc_id": pl.String, "item": pl.String, "title": pl.String,
        "text": pl.String})
    con.register("_passages_in", frame.to_arrow())
    con.execute("INSERT INTO search_passages SELECT * FROM _passages_in")
    con.unregister("_passages_in")


def refresh_index(wh: Warehouse) -> None:
    """Add the passages of documents that have none and rebuild the BM25 index over them, in
    one transaction: a rebuild that fails or is killed leaves the previous index usable, and
    the next one adds what it did not."""
    load_fts(wh.con)
    with wh.transaction() as con:
        _add_passages(con)
        for table in ("documents", "filing_sections"):  # whole-text indexes of older versions
            if con.execute("SELECT count(*) FROM information_schema.schemata WHERE "
                           "schema_name = ?", [f"fts_main_{table}"]).fetchone()[0]:
                con.execute(f"PRAGMA drop_fts_index('{table}')")
        con.execute("PRAGMA create_fts_index('search_passages', 'passage_id', 'title', 'text', "
                    "stemmer='porter', stopwords='english', overwrite=1)")


def has_index(wh: Warehouse) -> bool:
    return wh.scalar("SELECT count(*) FROM information_schema.schemata WHERE schema_name = "
                     "'fts_main_search_passages'") == 1


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
    if not has_index(wh):
        if wh.read_only:
            raise DataError("no search index yet: run an ingest (it builds the index)")
        refresh_index(wh)
    load_fts(wh.con)
    first_term = query.split()[0].lower()
    sql = """
    WITH scored AS (
        SELECT doc_id, item, text,
               fts_main_search_passages.match_bm25(passage_id, $q) AS score
        FROM search_passages
    ), hits AS (  -- the best passage of each news document or filing section
        SELECT doc_id, item, arg_max(text, score) AS text, max(score) AS score
        FROM scored WHERE score IS NOT NULL GROUP BY doc_id, item
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
