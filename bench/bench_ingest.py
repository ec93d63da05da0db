"""Ingest one million generated news rows from Parquet; time a latest-1,000-for-one-ticker query.

Prints rows per second and query latency (the README's performance table). Run: `make bench`
or `python bench/bench_ingest.py [ROWS]`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.news_corpus import write_news_parquet  # noqa: E402
from data.ingest import ingest_news  # noqa: E402
from data.warehouse import Warehouse  # noqa: E402


def main(rows: int = 1_000_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        news = write_news_parquet(Path(tmp) / "news.parquet", rows)
        with Warehouse(Path(tmp) / "w.duckdb") as wh:
            started = time.perf_counter()
            result = ingest_news(wh, news, refresh_search=False)
            seconds = time.perf_counter() - started
            print(f"ingest: {result.read:,} rows read, {result.inserted:,} inserted in "
                  f"{seconds:.1f} s = {result.read / seconds:,.0f} rows/s")
            query = ("SELECT doc_id, published_at, title FROM documents "
                     "WHERE list_contains(tickers, 'T042') ORDER BY published_at DESC LIMIT 1000")
            wh.query(query)
            timings = []
            for _ in range(5):
                started = time.perf_counter()
                frame = wh.query(query)
                timings.append(time.perf_counter() - started)
            print(f"latest 1,000 documents for one ticker: {frame.height} rows, "
                  f"median {sorted(timings)[2] * 1000:.1f} ms over 5 runs")
            started = time.perf_counter()
            again = ingest_news(wh, news, refresh_search=False)
            print(f"re-ingest of the same file: skipped={again.skipped_file} in "
                  f"{(time.perf_counter() - started) * 1000:.0f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
