"""Small, fresh fixtures for the quant tests: prices on the real calendar, fixture signals."""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import polars as pl

from data.calendar import get_calendar
from quant.pipeline import SIGNALS_SCHEMA

UTC = timezone.utc


def calendar_prices(tickers: list[str], start: date, end: date, seed: int = 0,
                    drift: float = 0.0) -> pl.DataFrame:
    """Random-walk prices on every XNYS session between start and end."""
    sessions = get_calendar("XNYS").sessions_between(start, end)
    rng = np.random.default_rng(seed)
    frames = []
    for ticker in tickers:
        steps = rng.normal(drift, 0.01, len(sessions))
        close = 100 * np.exp(np.cumsum(steps))
        open_ = close * np.exp(rng.normal(0, 0.002, len(sessions)))
        frames.append(pl.DataFrame({"ticker": ticker, "session": sessions, "open": open_,
                                    "close": close, "adj_close": close,
                                    "volume": np.full(len(sessions), 1e6)}))
    return pl.concat(frames)


def signals_frame(rows: list[dict]) -> pl.DataFrame:
    """Signals as `load_signals` returns them (defaults for what a row leaves out)."""
    filled = []
    for i, row in enumerate(rows):
        filled.append({"doc_id": row.get("doc_id", f"d{i}"), "section": "",
                       "ticker": row["ticker"], "published_at": row["published_at"],
                       "sentiment": row.get("sentiment", 0.5),
                       "confidence": row.get("confidence", 1.0),
                       "event_type": row.get("event_type", "other"),
                       "story": row.get("story", f"story {i}")})
    return pl.DataFrame(filled, schema=SIGNALS_SCHEMA)


def write_signals(wh, frame: pl.DataFrame, fingerprint: str = "fixture",
                  prompt_version: str = "fixture-v1", mode: str = "score") -> None:
    """Insert fixture signals (doc_id, ticker, published_at, sentiment, confidence,
    event_type) as if a model had written them."""
    rows = frame.select(
        "doc_id", pl.lit("").alias("section"), "ticker",
        pl.lit("fixture").alias("model_id"), pl.lit(fingerprint).alias("model_fingerprint"),
        pl.lit(prompt_version).alias("prompt_version"), pl.lit(mode).alias("mode"),
        pl.lit("ok").alias("status"), "sentiment", "confidence", "event_type",
        pl.lit(5, pl.Int32).alias("horizon_days"), "published_at",
        pl.lit(datetime.now(UTC)).alias("created_at"))
    wh.con.register("_fixture", rows.to_arrow())
    wh.con.execute("INSERT INTO signals BY NAME SELECT * FROM _fixture ON CONFLICT DO NOTHING")
    wh.con.unregister("_fixture")


def sample_workspace(path):
    """A workspace with the bundled prices, the generated news and fixture signals whose tone
    is each story's planted tone (what a perfect reader would say), built through the API."""
    import quant
    from data.samples import sample_prices_path, write_sample_news

    quant.init_workspace(path)
    ws = quant.open(path, write=True)
    ws.ingest("prices", [sample_prices_path()])
    prices = ws.panel(signals=False).select("ticker", "session", "open", "close", "adj_close")
    ws.ingest("news", [write_sample_news(path / "news.parquet", prices)])
    with ws.warehouse(write=True) as wh:
        write_signals(wh, wh.query("""
            SELECT doc_id, tickers[1] AS ticker, published_at, 0.8 AS confidence,
                   meta->>'event_type' AS event_type,
                   least(greatest((meta->>'planted_tone')::DOUBLE / 2, -1), 1) AS sentiment
            FROM documents"""))
    return path
