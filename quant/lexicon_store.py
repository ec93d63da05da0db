"""The `lexicon_counts` table's one owner: the Loughran-McDonald dictionary's reading
(`llm.lexicon.counts`) of each unit of text the model reads, a news document or a filing
section, in the same text the model is given. Derived data: `complete` reads the units that
have no row yet and adds them, so it is cheap to call after every ingest and every scoring
run, and a run stopped half-way is completed by the next."""

from __future__ import annotations

import polars as pl

from data.text import document_text_sql, section_text_sql
from data.warehouse import Warehouse
from llm import lexicon

BATCH = 50_000   # units read, counted and written at a time: memory stays flat on big corpora

_MISSING = f"""
SELECT doc_id, '' AS section, {document_text_sql("d.title", "d.body")} AS text
FROM documents d ANTI JOIN lexicon_counts l ON l.doc_id = d.doc_id AND l.section = ''
WHERE d.kind = 'news'
UNION ALL
SELECT s.doc_id, s.item AS section, {section_text_sql("s.title", "s.text")} AS text
FROM filing_sections s ANTI JOIN lexicon_counts l ON l.doc_id = s.doc_id AND l.section = s.item
LIMIT {BATCH}
"""

COLUMNS = ("words", *lexicon.LISTS, "tone")


def complete(wh: Warehouse) -> int:
    """Count the words of every unit without a row; how many units were added."""
    added = 0
    while True:
        missing = wh.con.execute(_MISSING).pl()
        if missing.is_empty():
            return added
        counted = pl.DataFrame([lexicon.counts(text) for text in missing["text"]],
                               schema={c: pl.Int32 if c == "words" else pl.Float64
                                       for c in COLUMNS})
        rows = missing.select("doc_id", "section").hstack(counted)
        with wh.transaction() as con:
            con.register("counted_rows", rows.to_arrow())
            con.execute(f"INSERT INTO lexicon_counts SELECT doc_id, section, "
                        f"{', '.join(COLUMNS)} FROM counted_rows")
            con.unregister("counted_rows")
        added += rows.height
