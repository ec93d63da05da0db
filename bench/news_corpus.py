"""A large synthetic news file for ingestion benchmarks and crash tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl


def write_news_parquet(path: Path, rows: int, seed: int = 0, tickers: int = 500) -> Path:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2015-01-01T00:00:00", "s").astype(np.int64)
    stamps = start + np.sort(rng.integers(0, 10 * 365 * 86400, rows))
    symbols = np.array([f"T{i:03d}" for i in range(tickers)])
    frame = pl.DataFrame({
        "published_at": pl.Series(stamps * 1_000_000).cast(pl.Datetime("us", "UTC")),
        "ticker": symbols[rng.integers(0, tickers, rows)],
        "title": "Headline number " + pl.Series(np.arange(rows)).cast(pl.String),
        "body": "Company reports results; shares move on the news.",
        "source": "bench-wire",
    })
    frame.write_parquet(path)
    return path
