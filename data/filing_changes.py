"""What changed in a filing since the same company's previous filing of the same form.

Firms whose 10-K and 10-Q text changes most go on to underperform (Cohen, Malloy and Nguyen,
"Lazy Prices", 2020). Per section (item): the cosine similarity of word counts and the Jaccard
similarity of word sets against the same item of the company's previous filing of that form,
and the sentences added and removed (compared whitespace- and case-normalised). A company is
its CIK, or its ticker where the filing names no CIK. Stored in `filing_changes`; a company's
rows are recomputed whenever it files, so a filing ingested out of order is placed right.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter

import polars as pl

from data.text import sentences
from data.warehouse import Warehouse

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
KEEP = 20  # added and removed sentences stored per section
_SCHEMA = {"doc_id": pl.String, "item": pl.String, "previous_doc_id": pl.String,
           "cosine": pl.Float64, "jaccard": pl.Float64, "sentences": pl.Int32,
           "added": pl.Int32, "removed": pl.Int32, "added_text": pl.String,
           "removed_text": pl.String}


def similarity(now: str, before: str) -> tuple[float, float]:
    """(cosine of word counts, Jaccard of word sets), each 1.0 for the same words."""
    return _similarity(_words(now), _words(before))


def sentence_changes(now: str, before: str) -> tuple[list[str], list[str], int]:
    """(sentences added, sentences removed, sentences now), in the order they appear."""
    return _sentence_changes(_sentences(now), _sentences(before))


def _words(text: str) -> Counter:
    return Counter(_WORD.findall(text.lower()))


def _sentences(text: str) -> list[str]:
    return [" ".join(text[a:b].split()) for a, b in sentences(text)]


def _similarity(a: Counter, b: Counter) -> tuple[float, float]:
    if not a or not b:
        return (1.0, 1.0) if a == b else (0.0, 0.0)
    dot = sum(count * b[word] for word, count in a.items())
    norm = math.sqrt(sum(c * c for c in a.values())) * math.sqrt(sum(c * c for c in b.values()))
    return dot / norm, len(a.keys() & b.keys()) / len(a.keys() | b.keys())


def _sentence_changes(current: list[str], previous: list[str]
                      ) -> tuple[list[str], list[str], int]:
    old, new = {s.lower() for s in previous}, {s.lower() for s in current}
    return ([s for s in current if s.lower() not in old],
            [s for s in previous if s.lower() not in new], len(current))


_COMPANIES = """
SELECT DISTINCT coalesce(cik, tickers[1]) AS company, form_type FROM documents
WHERE kind = 'filing' AND doc_id IN (SELECT unnest($docs)) AND coalesce(cik, tickers[1]) IS NOT NULL
"""
_SECTIONS = """
SELECT d.doc_id, s.item, s.text FROM documents d JOIN filing_sections s USING (doc_id)
WHERE d.kind = 'filing' AND coalesce(d.cik, d.tickers[1]) = $company
  AND d.form_type IS NOT DISTINCT FROM $form
ORDER BY d.published_at, d.doc_id
"""


def pending_changes(wh: Warehouse) -> list[str]:
    """Filings of a known company with sections that have no change rows yet."""
    return [doc_id for (doc_id,) in wh.con.execute("""
        SELECT DISTINCT s.doc_id FROM filing_sections s JOIN documents d USING (doc_id)
        WHERE d.kind = 'filing' AND coalesce(d.cik, d.tickers[1]) IS NOT NULL
          AND s.doc_id NOT IN (SELECT doc_id FROM filing_changes)""").fetchall()]


def refresh_changes(wh: Warehouse, doc_ids: list[str]) -> int:
    """Recompute the change rows of every company that filed one of `doc_ids`; returns how
    many rows were written."""
    written = 0
    for company, form in wh.con.execute(_COMPANIES, {"docs": doc_ids}).fetchall():
        rows = _changes(wh.con.execute(_SECTIONS, {"company": company, "form": form}).fetchall())
        with wh.transaction() as con:
            con.execute("DELETE FROM filing_changes WHERE doc_id IN (SELECT unnest(?))",
                        [sorted({r[0] for r in rows})])
            if rows:  # one insert of a frame: DuckDB's executemany goes row by row
                con.register("_changes_in", pl.DataFrame(rows, schema=_SCHEMA,
                                                         orient="row").to_arrow())
                con.execute("INSERT INTO filing_changes SELECT * FROM _changes_in")
                con.unregister("_changes_in")
        written += len(rows)
    return written


def _changes(sections: list[tuple[str, str, str]]) -> list[list]:
    """Change rows for one company's sections of one form, oldest filing first (each text is
    read into words and sentences once, then compared with the next filing's)."""
    latest: dict[str, tuple[str, Counter, list[str]]] = {}  # item -> the last filing's
    rows = []
    for doc_id, item, text in sections:
        words, said = _words(text), _sentences(text)
        previous = latest.get(item)
        if previous is None:
            rows.append([doc_id, item, None, None, None, len(said), None, None, None, None])
        else:
            cosine, jaccard = _similarity(words, previous[1])
            added, removed, count = _sentence_changes(said, previous[2])
            rows.append([doc_id, item, previous[0], cosine, jaccard, count, len(added),
                         len(removed), json.dumps(added[:KEEP]), json.dumps(removed[:KEEP])])
        latest[item] = (doc_id, words, said)
    return rows
