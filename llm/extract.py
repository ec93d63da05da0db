"""Score every document not yet scored by this model and prompt, into the `signals` table.

Work is one row per (document, section, ticker): a news item per ticker it names; a filing per
section that carries news (risk factors, MD&A, 8-K items other than exhibits) per ticker. Rows
already in `signals` for the same model fingerprint, prompt version and mode are skipped, so
running twice writes nothing. Results are committed batch by batch: a killed run keeps what it
finished and the next run does the rest, never a row twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone

import polars as pl

from data.warehouse import Warehouse
from llm.engine import DocInput, Engine, Scored
from llm.prompts import prompt_version

# Filing items worth reading for a trading signal (10-K, 10-Q, 8-K).
SIGNAL_ITEMS = ("1A", "7", "7A", "I-2", "II-1A", "1.01", "1.02", "1.03", "2.01", "2.02", "2.03",
                "2.05", "2.06", "3.01", "4.01", "4.02", "5.01", "5.02", "5.07", "7.01", "8.01")

_PENDING = """
WITH work AS (
    SELECT d.doc_id, '' AS section, t.ticker, d.published_at,
           coalesce(d.title || '. ', '') || d.body AS text
    FROM documents d, unnest(d.tickers) AS t(ticker)
    WHERE d.kind = 'news'
    UNION ALL
    SELECT d.doc_id, s.item AS section, t.ticker, d.published_at,
           coalesce(s.title || '. ', '') || s.text AS text
    FROM documents d JOIN filing_sections s USING (doc_id), unnest(d.tickers) AS t(ticker)
    WHERE d.kind = 'filing' AND list_contains($items, s.item)
)
SELECT w.* FROM work w
ANTI JOIN (SELECT doc_id, section, ticker FROM signals
           WHERE model_fingerprint = $fp AND prompt_version = $pv AND mode = $mode) s
    USING (doc_id, section, ticker)
WHERE ($since IS NULL OR w.published_at >= $since)
ORDER BY w.published_at, w.doc_id, w.section, w.ticker
LIMIT $limit
"""


def pending(wh: Warehouse, engine: Engine, mode: str, since: datetime | None = None,
            limit: int | None = None) -> pl.DataFrame:
    return wh.con.execute(_PENDING, {
        "items": list(SIGNAL_ITEMS), "fp": engine.loaded.fingerprint,
        "pv": prompt_version(mode), "mode": mode, "since": since,
        "limit": limit if limit is not None else 2**62}).pl()


def _rows(work: pl.DataFrame, results: list[Scored], engine: Engine, mode: str,
          decoding: dict) -> pl.DataFrame:
    now = datetime.now(timezone.utc)
    loaded = engine.loaded
    records = []
    for row, result in zip(work.iter_rows(named=True), results, strict=True):
        fields = result.fields
        records.append({
            "doc_id": row["doc_id"], "section": row["section"], "ticker": row["ticker"],
            "model_id": loaded.model_id, "model_fingerprint": loaded.fingerprint,
            "prompt_version": prompt_version(mode), "mode": mode, "status": result.status,
            "reason": result.reason,
            "sentiment": fields.sentiment if fields else None,
            "confidence": fields.confidence if fields else None,
            "event_type": fields.event_type.value if fields else None,
            "horizon_days": fields.horizon_days if fields else None,
            "rationale": fields.rationale if fields else None,
            "published_at": row["published_at"], "created_at": now,
            "latency_ms": result.latency_ms, "tokens": result.tokens,
            "decoding": json.dumps({**decoding, **result.decoding}),
        })
    return pl.DataFrame(records, schema_overrides={"horizon_days": pl.Int32,
                                                   "tokens": pl.Int32})


def extract(wh: Warehouse, engine: Engine, mode: str = "score", since: datetime | None = None,
            limit: int | None = None, chunk: int = 256,
            progress: Callable[[int, int], None] | None = None) -> dict:
    """Score pending work and write signals; returns counts and throughput."""
    if mode not in ("score", "reason"):
        raise ValueError(f"mode must be score or reason, not {mode!r}")
    work = pending(wh, engine, mode, since, limit)
    decoding = {"precision": engine.loaded.precision, "batch_size": engine.batch_size,
                "max_input_tokens": engine.max_input_tokens}
    if mode == "reason":
        decoding |= {"max_new_tokens": engine.max_new_tokens, "greedy": True}
    counts = {"pending": work.height, "ok": 0, "abstain": 0, "failed": 0, "written": 0,
              "tokens": 0, "seconds": 0.0}
    done = 0
    for start in range(0, work.height, chunk):
        part = work.slice(start, chunk)
        docs = [DocInput(t, x) for t, x in zip(part["ticker"], part["text"], strict=True)]
        step = (lambda n: progress(done + n, work.height)) if progress else None
        results = engine.score(docs, step) if mode == "score" else engine.reason(docs, step)
        rows = _rows(part, results, engine, mode, decoding)
        with wh.transaction() as con:
            before = con.execute("SELECT count(*) FROM signals").fetchone()[0]
            con.register("_signals_in", rows.to_arrow())
            con.execute("INSERT INTO signals BY NAME SELECT * FROM _signals_in "
                        "ON CONFLICT DO NOTHING")
            con.unregister("_signals_in")
            counts["written"] += con.execute("SELECT count(*) FROM signals").fetchone()[0] - before
        for result in results:
            counts[result.status] += 1
        counts["tokens"] += engine.stats["tokens"]
        counts["seconds"] += engine.stats["seconds"]
        done += part.height
    counts["docs_per_s"] = round(work.height / counts["seconds"], 2) if counts["seconds"] else 0
    counts["tokens_per_s"] = round(counts["tokens"] / counts["seconds"], 1) if counts[
        "seconds"] else 0
    counts["seconds"] = round(counts["seconds"], 2)
    counts |= {"model_id": engine.loaded.model_id, "fingerprint": engine.loaded.fingerprint,
               "prompt_version": prompt_version(mode), "mode": mode}
    return counts
