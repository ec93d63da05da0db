"""Sentences of English prose (filings, news), by their offsets."""

from __future__ import annotations

import re

# A sentence ends at . ! or ? (and any closing quote or bracket) before white space and a
# capital, digit or opening quote; a paragraph at a line break.
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*\s+(?=[A-Z0-9\"“‘(])|\n\s*")
# Words whose full stop does not end a sentence.
_ABBREVIATIONS = {"inc", "corp", "co", "ltd", "llc", "no", "nos", "mr", "mrs", "ms", "dr",
                  "vs", "st", "jr", "sr", "u.s", "e.g", "i.e", "etc", "approx", "fig", "sec",
                  "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
                  "dec", "a", "b", "c", "l.p", "n.a", "s.a"}


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence or paragraph of `text`, white space between them left
    out; together they hold every other character."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        end = match.start() + len(match.group().rstrip())
        # The word before the stop: a bounded look back, so a text of abbreviations stays
        # linear.
        word = text[max(start, match.start() - 16):match.start() + 1].split()[-1:]
        if word and match.group()[0] == "." and word[0].rstrip(".").lower() in _ABBREVIATIONS:
            continue
        spans.append((start, end))
        start = match.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in (trim(text, a, b) for a, b in spans) if b > a]


def trim(text: str, start: int, end: int) -> tuple[int, int]:
    """(start, end) moved inward past white space."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def section_text_sql(title: str = "title", text: str = "text") -> str:
    """The text a filing section offers a model, as a SQL expression: its title, then its
    text."""
    return f"coalesce({title} || '. ', '') || {text}"


def document_text_sql(title: str = "title", body: str = "body") -> str:
    """The text a news document offers a model, as a SQL expression over its columns: the
    title and the body, each once. Ingest stores a title-only item (a headline file, an RSS
    item without a description) with the title as its body, and many bodies open with their
    title; either way the title is not read twice."""
    t, b = f"trim(coalesce({title}, ''))", f"trim(coalesce({body}, ''))"
    return (f"CASE WHEN {t} = '' THEN {b} WHEN {b} = '' OR starts_with({b}, {t}) THEN "
            f"coalesce(nullif({b}, ''), {t}) ELSE {t} || '. ' || {b} END")
