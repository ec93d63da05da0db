"""Reading a whole 10-K: Apple's 2024 10-K ingested, then every section worth a signal (risk
factors, MD&A, market risk) scored in passages with the default model on the fast score path.
Prints passages, tokens, seconds and the CPU capability; and, in the same process, the seconds
the same sections took when only their first prompt-full was read (the old cut), as the ratio
the whole read costs; then every item of the filing (all of its text) read the same way.

Run: `python bench/bench_filing_score.py [FILING]` (a .htm(l)[.gz] 10-K; default: Apple's,
from the datasets folder beside the repository).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def main(filing: Path) -> None:
    import torch

    import llm
    from data.ingest import ingest_files
    from data.warehouse import Warehouse
    from llm.infer.engine import DocInput, Engine
    from quant.text.scoring import reading_units, score_pending

    engine = Engine(llm.load("default", "auto"))
    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}, "
          f"precision {engine.loaded.precision}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp, Warehouse(Path(tmp) / "w.duckdb") as wh:
        ingest_files(wh, "filings", [filing], index=filing.parent / "index.csv")
        started = time.perf_counter()
        summary = score_pending(wh, engine)
        whole = time.perf_counter() - started
        passages = wh.query("SELECT section, count(*) AS passages, sum(tokens) AS tokens "
                            "FROM signal_passages GROUP BY section ORDER BY section")
        signals = wh.query("SELECT section, ticker, sentiment, confidence, event_type "
                           "FROM signals ORDER BY section")
        sections = wh.query("SELECT s.item, s.text, d.tickers[1] AS ticker FROM "
                            "filing_sections s JOIN documents d USING (doc_id)")
        firsts = [DocInput(t, x) for item, x, t in sections.iter_rows()
                  if item in set(signals["section"])]
        started = time.perf_counter()
        engine.run(firsts, "score")
        first_page = time.perf_counter() - started
        tickers, texts = sections["ticker"].to_list(), sections["text"].to_list()
        units = reading_units(engine, tickers, texts, sections["item"].to_list(), "score")
        started = time.perf_counter()
        engine.run([DocInput(tickers[r], texts[r][a:b]) for r, a, b in units], "score")
        every_item = time.perf_counter() - started
    print(passages)
    print(signals)
    print(f"{filing.name}: {passages['passages'].sum()} passages, "
          f"{passages['tokens'].sum():,} tokens, scored in {whole:.1f} s "
          f"({summary['written']} section signals); the first prompt-full of each section "
          f"alone: {first_page:.1f} s ({whole / first_page:.0f}x); every item "
          f"({sections.height} items, {len(units)} passages): {every_item:.1f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1
         else DATASETS / "edgar" / "aapl-10-k-2024-11-01.html.gz")
