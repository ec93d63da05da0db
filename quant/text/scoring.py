"""Score every document not yet scored by this model and prompt, into the `signals` table.

Work is one row per (document, section, ticker): a news item per ticker it names; a filing per
section that carries news (risk factors, MD&A, 8-K items other than exhibits) per ticker. Rows
already in `signals` for the same model fingerprint, prompt version and mode are skipped, so
running twice writes nothing.

A filing section is read whole: cut into passages the prompt reads in full (`quant.text.passages`),
every passage scored, the section's signal their aggregate; the passages and their readings go
to `signal_passages`. An 8-K item whose event type its number says (2.02 results: earnings)
gets that type, not the model's guess; `decoding.event_source` records which.

One driver serves every engine: the pending work is cut into parts and a *scorer* turns parts
into signal rows — `local_scorer` in this process, `quant.text.distributed.ray_scorer` on a Ray
actor pool. The driver alone writes the warehouse (DuckDB has one writer), part by part: a
killed run keeps what it finished and the next run does the rest, never a row twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import polars as pl

from data.warehouse import Warehouse
from llm.schema import EventType, SignalFields
from llm.scored import DocInput, Scored
from llm.settings import MODES
from quant import signal_store
from quant.signal_store import SignalSet
from quant.text import passages as passages_

if TYPE_CHECKING:
    from llm.infer.engine import Engine

# Filing items worth reading for a trading signal (10-K, 10-Q, 8-K).
SIGNAL_ITEMS = ("1A", "7", "7A", "I-2", "II-1A", "1.01", "1.02", "1.03", "2.01", "2.02", "2.03",
                "2.05", "2.06", "3.01", "4.01", "4.02", "5.01", "5.02", "5.07", "7.01", "8.01")

# 8-K items whose number says what happened; other items' type is the model's reading.
ITEM_EVENTS = {"1.01": "mna", "1.02": "mna", "2.01": "mna", "5.01": "mna",
               "2.02": "earnings", "1.03": "legal_regulatory", "3.01": "legal_regulatory",
               "4.02": "legal_regulatory", "5.02": "management", "8.01": "other"}

PASSAGE = pl.Struct({"passage": pl.Int32, "start_char": pl.Int32, "end_char": pl.Int32,
                     "status": pl.String, "sentiment": pl.Float64, "confidence": pl.Float64,
                     "tokens": pl.Int32})

# parts of pending work, a callback taking how many documents were just done -> signal rows
Scorer = Callable[[list[pl.DataFrame], Callable[[int], None]], Iterator[pl.DataFrame]]

def pending(wh: Warehouse, engine: Engine, mode: str, since: datetime | None = None,
            limit: int | None = None, sample: bool = False) -> pl.DataFrame:
    """Work the engine has not scored yet (`quant.signal_store.unscored_work`)."""
    which = SignalSet(engine.loaded.fingerprint, engine.prompt_version(mode), mode)
    return signal_store.unscored_work(wh, which, SIGNAL_ITEMS, since, limit, sample)


def signal_rows(work: pl.DataFrame, results: list[Scored], engine: Engine, mode: str
                ) -> pl.DataFrame:
    """`signals` rows: each result with the work row it answers and its provenance."""
    now, loaded = datetime.now(timezone.utc), engine.loaded
    settings = engine.settings(mode)
    records = []
    for row, result in zip(work.iter_rows(named=True), results, strict=True):
        fields = result.fields
        records.append({
            "doc_id": row["doc_id"], "section": row["section"], "ticker": row["ticker"],
            "model_id": loaded.model_id, "model_fingerprint": loaded.fingerprint,
            "prompt_version": engine.prompt_version(mode), "mode": mode, "status": result.status,
            "reason": result.reason,
            "sentiment": fields.sentiment if fields else None,
            "confidence": fields.confidence if fields else None,
            "event_type": fields.event_type.value if fields else None,
            "horizon_days": fields.horizon_days if fields else None,
            "rationale": fields.rationale if fields else None,
            "published_at": row["published_at"], "created_at": now,
            "latency_ms": result.latency_ms, "tokens": result.tokens,
            "decoding": json.dumps({**settings, **result.decoding}),
        })
    return pl.DataFrame(records, schema_overrides={"horizon_days": pl.Int32,
                                                   "tokens": pl.Int32})


def score_part(engine: Engine, part: pl.DataFrame, mode: str,
               progress: Callable[[int], None] | None = None) -> pl.DataFrame:
    """Signal rows for a part of the pending work (what every scorer runs); a filing
    section's passages and their readings travel in a `passages` column."""
    texts, tickers = part["text"].to_list(), part["ticker"].to_list()
    sections = part["section"].to_list()
    units = reading_units(engine, tickers, texts, sections, mode)
    docs = [DocInput(tickers[row], texts[row][a:b]) for row, a, b in units]
    filings = any(sections)
    scored = engine.run(docs, mode, None if filings else progress)
    if filings and progress:
        progress(part.height)
    read: list[list[tuple[int, int, Scored]]] = [[] for _ in range(part.height)]
    for (row, a, b), result in zip(units, scored, strict=True):
        read[row].append((a, b, result))
    results, passages = [], []
    for row, readings in enumerate(read):
        if not sections[row]:  # news: one reading, as the prompt read it
            results.append(readings[0][2])
            passages.append(None)
            continue
        prefix = part["prefix"][row]  # offsets are the section text's, after its title
        readings = [(max(0, a - prefix), max(0, b - prefix), r) for a, b, r in readings]
        results.append(section_signal(readings, texts[row][prefix:], tickers[row],
                                      sections[row]))
        passages.append([_passage_row(i, a, b, r) for i, (a, b, r) in enumerate(readings)])
    rows = signal_rows(part, results, engine, mode)
    return rows.with_columns(passages=pl.Series(passages, dtype=pl.List(PASSAGE)))


def reading_units(engine: Engine, tickers: list[str], texts: list[str], sections: list[str],
                  mode: str) -> list[tuple[int, int, int]]:
    """(row, start, end) of every text the engine reads: a news item whole (the prompt cuts
    what does not fit), a filing section in passages that fit."""
    room: dict[str, int] = {}
    units = []
    for row, (ticker, text, section) in enumerate(zip(tickers, texts, sections, strict=True)):
        if not section:
            units.append((row, 0, len(text)))
            continue
        if ticker not in room:
            room[ticker] = max(8, engine.room(ticker, mode))
        spans = passages_.split(text, room[ticker], engine.count_tokens) or [(0, len(text))]
        units.extend((row, a, b) for a, b in spans)
    return units


def section_signal(readings: list[tuple[int, int, Scored]], text: str, ticker: str,
                   section: str) -> Scored:
    """One section's signal from its passages' readings (`quant.text.passages.aggregate`)."""
    scores = [passages_.PassageScore(
        a, b, r.status, r.fields.sentiment if r.fields else None,
        r.fields.confidence if r.fields else None, r.tokens,
        r.fields.event_type.value if r.fields else None) for a, b, r in readings]
    total = passages_.aggregate(scores, text)
    decoding = {"truncated": any(r.decoding.get("truncated") for *_, r in readings),
                **total.details, "event_source": "item" if section in ITEM_EVENTS else "model"}
    latency = sum(r.latency_ms for *_, r in readings)
    tokens = sum(r.tokens for *_, r in readings)
    if total.status != "ok":
        reasons = {r.reason for *_, r in readings if r.reason}
        return Scored(total.status, None, "; ".join(sorted(reasons))[:400] or None, latency,
                      tokens, decoding=decoding)
    horizon = max((r.fields.horizon_days for *_, r in readings if r.fields), default=5)
    event = ITEM_EVENTS.get(section, total.event_type or "other")
    fields = SignalFields(ticker=ticker, sentiment=total.sentiment, confidence=total.confidence,
                          event_type=EventType(event), horizon_days=horizon,
                          rationale=(total.rationale or "")[:400])
    return Scored("ok", fields, None, latency, tokens, decoding=decoding)


def _passage_row(index: int, start: int, end: int, result: Scored) -> dict:
    return {"passage": index, "start_char": start, "end_char": end, "status": result.status,
            "sentiment": result.fields.sentiment if result.fields else None,
            "confidence": result.fields.confidence if result.fields else None,
            "tokens": result.tokens}


def local_scorer(engine: Engine, mode: str) -> Scorer:
    """Score the parts one after another in this process."""
    def run(parts: list[pl.DataFrame], done: Callable[[int], None]) -> Iterator[pl.DataFrame]:
        for part in parts:
            yield score_part(engine, part, mode, done)
    return run


def summarise(statuses: pl.DataFrame, pending_rows: int, written: int, seconds: float,
              engine: Engine, mode: str) -> dict:
    """Counts by status, throughput and what scored them."""
    counts = {"pending": pending_rows, "ok": 0, "abstain": 0, "failed": 0, "written": written}
    counts |= dict(statuses.group_by("status").len().iter_rows())
    tokens = int(statuses["tokens"].sum() or 0)
    return counts | {
        "tokens": tokens, "seconds": round(seconds, 2),
        "docs_per_s": round(pending_rows / seconds, 2) if seconds else 0,
        "tokens_per_s": round(tokens / seconds, 1) if seconds else 0,
        "model_id": engine.loaded.model_id, "fingerprint": engine.loaded.fingerprint,
        "prompt_version": engine.prompt_version(mode), "mode": mode}


def score_pending(wh: Warehouse, engine: Engine, mode: str = "score",
                  since: datetime | None = None, limit: int | None = None, chunk: int = 256,
                  progress: Callable[[int, int], None] | None = None, sample: bool = False,
                  scorer: Scorer | None = None) -> dict:
    """Score pending work and write signals part by part; returns counts and throughput."""
    if mode not in MODES:
        raise ValueError(f"mode must be score or reason, not {mode!r}")
    work = pending(wh, engine, mode, since, limit, sample)
    scorer = scorer or local_scorer(engine, mode)
    started, written, done = time.perf_counter(), 0, [0]
    statuses = [pl.DataFrame(schema={"status": pl.String, "tokens": pl.Int32})]

    def advance(n: int) -> None:
        done[0] += n
        if progress:
            progress(min(done[0], work.height), work.height)

    parts = [work.slice(start, chunk) for start in range(0, work.height, chunk)]
    for rows in scorer(parts, advance):
        rows = rows.unique(["doc_id", "section", "ticker"], keep="first")  # a retried batch
        written += signal_store.write_signals(wh, rows)
        statuses.append(rows.select("status", pl.col("tokens").cast(pl.Int32)))
    return summarise(pl.concat(statuses), work.height, written, time.perf_counter() - started,
                     engine, mode)
