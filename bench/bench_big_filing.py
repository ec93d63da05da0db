"""How ingest time grows with a filing's size: a synthetic 10-K of SMALL MB and one of BIG MB
(200-word paragraphs over 20,000 distinct words, a new item every 2,000 paragraphs), each
ingested into a fresh warehouse, its search index rebuilt. Prints both times and the ratio to
what linear growth would give (1.0 = linear).

Run: `python bench/bench_big_filing.py [BIG_MB] [SMALL_MB]` (default 50 and 10).
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def synthetic_10k(path: Path, megabytes: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(20_000)]
    parts, size, item = ["<html><body><p>Item 1. Business</p>"], 0, 1
    while size < megabytes * 2**20:
        paragraph = "<p>" + " ".join(rng.choice(words) for _ in range(200)) + "</p>"
        parts.append(paragraph)
        size += len(paragraph)
        if len(parts) % 2000 == 0:
            item = min(item + 1, 9)
            parts.append(f"<p>Item {item}. Section</p>")
    path.write_text("".join(parts) + "<p>Item 7. MD&amp;A</p><p>end</p></body></html>")
    return path


def ingest_seconds(folder: Path, megabytes: int) -> float:
    from data.ingest import ingest_files
    from data.warehouse import Warehouse

    path = synthetic_10k(folder / f"filing{megabytes}.htm", megabytes)
    with Warehouse(folder / f"w{megabytes}.duckdb") as wh:
        started = time.perf_counter()
        result = ingest_files(wh, "filings", [path], form_type="10-K", filed_date="2024-01-02")
        assert result[0].inserted == 1, result
        return time.perf_counter() - started


def main(big: int = 50, small: int = 10) -> None:
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        fast = ingest_seconds(Path(tmp), small)
        slow = ingest_seconds(Path(tmp), big)
    print(f"cpu: {torch.backends.cpu.get_cpu_capability()}")
    print(f"{small} MB filing: {fast:.1f} s; {big} MB: {slow:.1f} s -> "
          f"{slow / fast / (big / small):.1f}x what linear growth would take")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
