"""Long texts read whole: cut into passages the model reads in full, and the passages' scores
aggregated into one signal.

A filing section (an MD&A, the risk factors) runs to tens of thousands of tokens; the model
reads a few hundred. `split` cuts a text at paragraph and sentence boundaries into passages of
at most `budget` tokens that together cover every character of it (only a sentence longer than
a whole passage is cut, at spaces). `aggregate` turns the passages' scores into the section's
signal: the tone weighted by confidence and length, the shares of positive and negative
passages, and the most negative passages with their offsets as the rationale.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from data.text import sentences, trim

POSITIVE, NEGATIVE = 0.2, -0.2   # a passage's tone beyond these counts as positive / negative


def split(text: str, budget: int, count: Callable[[Sequence[str]], list[int]]
          ) -> list[tuple[int, int]]:
    """(start, end) of passages of at most about `budget` tokens (`count` gives texts' token
    lengths) that cover `text`: whole sentences packed in order; a sentence over the budget on
    its own is cut at spaces."""
    spans = sentences(text)
    sizes = count([text[a:b] for a, b in spans]) if spans else []
    pieces: list[tuple[int, int, int]] = []
    for (start, end), size in zip(spans, sizes, strict=True):
        pieces.extend(_cut(text, start, end, size, budget))
    passages: list[tuple[int, int]] = []
    used = budget + 1
    for start, end, size in pieces:
        if used + size + 1 > budget:  # +1: the boundary between sentences may cost a token
            passages.append((start, end))
            used = size
        else:
            passages[-1] = (passages[-1][0], end)
            used += size + 1
    return passages


def _cut(text: str, start: int, end: int, size: int, budget: int) -> list[tuple[int, int, int]]:
    """A sentence as pieces of at most about `budget` tokens, cut at spaces (by its average
    characters per token, with a margin)."""
    if size <= budget:
        return [(start, end, size)]
    width = max(1, int((end - start) / size * budget * 0.8))
    out = []
    while start < end:
        stop = min(end, start + width)
        if stop < end:
            space = text.rfind(" ", start + 1, stop)
            stop = space if space > start else stop
        a, b = trim(text, start, stop)
        if b > a:
            out.append((a, b, max(1, round((b - a) / (end - start) * size))))
        start = stop
    return out


@dataclass
class PassageScore:
    """One passage's reading: status (ok, abstain, failed), tone, confidence, length."""

    start: int
    end: int
    status: str
    sentiment: float | None
    confidence: float | None
    tokens: int
    event_type: str | None = None


@dataclass
class Aggregate:
    status: str
    sentiment: float | None
    confidence: float | None
    event_type: str | None
    rationale: str | None
    details: dict


def aggregate(passages: Sequence[PassageScore], text: str, keep: int = 2) -> Aggregate:
    """The section's signal from its passages: tone = sum(c * s * n) / sum(c * n) over the
    passages read (c confidence, s tone, n tokens), confidence = sum(c * n) / sum(n); the
    `keep` most negative passages (by c * s) as the rationale, with their offsets."""
    read = [p for p in passages if p.status == "ok" and p.sentiment is not None]
    details = {"passages": len(passages), "passages_ok": len(read),
               "share_positive": _share(read, lambda s: s > POSITIVE),
               "share_negative": _share(read, lambda s: s < NEGATIVE)}
    if not read:
        statuses = {p.status for p in passages}
        return Aggregate("abstain" if "abstain" in statuses else "failed", None, None, None,
                         None, details)
    weight = sum((p.confidence or 0.0) * p.tokens for p in read)
    tokens = sum(p.tokens for p in read)
    sentiment = (sum((p.confidence or 0.0) * p.sentiment * p.tokens for p in read) / weight
                 if weight > 0 else 0.0)
    strongest = max(read, key=lambda p: abs(p.sentiment) * (p.confidence or 0.0))
    worst = sorted(read, key=lambda p: p.sentiment * (p.confidence or 0.0))[:keep]
    rationale = " | ".join(f"[{p.start}:{p.end}] {_excerpt(text[p.start:p.end])}"
                           for p in worst)
    return Aggregate("ok", max(-1.0, min(1.0, sentiment)), weight / tokens if tokens else 0.0,
                     strongest.event_type, rationale, details)


def _share(read: Sequence[PassageScore], test: Callable[[float], bool]) -> float:
    return sum(test(p.sentiment) for p in read) / len(read) if read else 0.0


def _excerpt(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"
