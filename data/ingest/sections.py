"""A filing's item sections (Item 1A, Item 7, ...), found by their headings in the body.

A table of contents repeats every heading, a running page header repeats its item's heading
on every page, and a body's order need not be its contents' order: `item_spans` keeps, for
each item, the longest span from one of its headings to the next heading of another item, and
says what share of the text its spans hold, so a filing whose sections leave text out is
flagged instead of read as whole.
"""

from __future__ import annotations

import re

_ITEM = re.compile(r"^item\s*(\d{1,2}[a-c]?(?:\.\d{2})?)\s*(?:\([a-z0-9]\))*\s*[.:\-\u2014\u2013]?"
                   r"\s*(.*)$", re.I)
_PART = re.compile(r"^part\s+(iv|iii|ii|i)\b\.?", re.I)


# 10-Q items are numbered again in Part II; where a body has no PART line of its own, the title
# says which part an item belongs to.
_PART_OF_TITLE = (("I", re.compile(r"financial statements|management.s discussion|market risk|"
                                   r"controls and procedures", re.I)),
                  ("II", re.compile(r"legal proceedings|risk factors|unregistered sales|"
                                    r"defaults upon|mine safety|other information|exhibits",
                                    re.I)))
CONTENTS_LINE = 300   # a heading's span shorter than this is a table-of-contents line
MIN_COVERAGE = 0.8    # below this share of the body in its sections, a filing is flagged


def item_spans(lines: list[str], form_type: str | None
               ) -> tuple[list[tuple[str, str, int, int]], float]:
    """(item, title, first line, end line) per item, in document order, and the share of the
    text from the first heading on that is in a kept item or a contents line.

    A heading that repeats the item before it (a running page header) continues that item.
    Of an item's several spans (a table of contents repeats every heading) the longest is
    kept; the last line of a contents list, which runs on into the cover text, never counts.
    """
    headings = _headings(lines, form_type)
    if not headings:
        return [], 0.0
    stops = [h[0] for h in headings[1:]] + [len(lines)]
    sizes = [sum(len(x) + 1 for x in lines[start:stop])
             for (start, _, _), stop in zip(headings, stops, strict=True)]
    order = {item: rank for rank, item in enumerate(dict.fromkeys(h[1] for h in headings))}
    last = {item: i for i, (_, item, _) in enumerate(headings)}
    best: dict[str, int] = {}
    for i, (_, item, _) in enumerate(headings):
        contents_tail = (0 < i < len(headings) - 1 and sizes[i - 1] < CONTENTS_LINE
                         and order[headings[i + 1][1]] < order[item] and last[item] > i)
        size = 0 if contents_tail else sizes[i]
        if item not in best or size > (0 if best[item] < 0 else sizes[best[item]]):
            best[item] = i if not contents_tail else -1 - i
    kept = sorted(abs(i + 1) - 1 if i < 0 else i for i in best.values())
    # Left out: what lies in no kept span, but for contents lines (not body text).
    left_out = sum(size for i, size in enumerate(sizes)
                   if i not in kept and size >= CONTENTS_LINE)
    share = 1 - left_out / max(1, sum(sizes))
    return [(headings[i][1], headings[i][2], headings[i][0], stops[i]) for i in kept], share


def _headings(lines: list[str], form_type: str | None) -> list[tuple[int, str, str]]:
    """(line, item, title) of each item heading, running page headers merged."""
    headings: list[tuple[int, str, str]] = []
    quarterly = (form_type or "").startswith("10-Q")
    part = "I"
    for number, line in enumerate(lines):
        if len(line) > 200:
            continue
        part_match = _PART.match(line)
        if part_match:
            part = part_match.group(1).upper()
        match = _ITEM.match(line)
        if not match:
            continue
        title = match.group(2).strip(" .")
        if not title and number + 1 < len(lines):
            title = lines[number + 1][:120]
        item = match.group(1).upper()
        if quarterly:
            part = next((p for p, words in _PART_OF_TITLE if words.search(title)), part)
            item = f"{part}-{item}"
        if not headings or headings[-1][1] != item:
            headings.append((number, item, title))
    return headings
