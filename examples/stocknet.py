"""A walk through real data: StockNet's prices and tweets (2014), a spread-out sample scored
by the bundled model, the point-in-time panel, its evaluation and a backtest.

StockNet (Xu and Cohen, 2018) as two Parquet files: prices (ticker, date, open, high, low,
close, adj_close, volume) and tweets (ticker, created_at in UTC, text). Run:

    python examples/stocknet.py PRICES.parquet TWEETS.parquet [SAMPLE] [WORKSPACE]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import quant


def main(prices: Path, tweets: Path, sample: int, root: Path) -> dict:
    quant.init_workspace(root)
    ws = quant.open(root, write=True)
    ws.ingest("prices", [prices], source="stocknet")
    ws.ingest("news", [tweets], source="twitter")
    scored = ws.score(limit=sample, sample=True)          # the configured model (default)
    panel = ws.panel(horizons=(1, 5))                    # latest signals, look-ahead checked
    evaluation = ws.evaluate(panel)
    run = ws.backtest("sentiment_long_short")
    return {"scored": scored, "panel": panel, "evaluation": evaluation, "run": run}


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    out = main(Path(args[0]), Path(args[1]), int(args[2]) if len(args) > 2 else 400,
               Path(args[3]) if len(args) > 3 else Path(tempfile.mkdtemp()))
    print(f"scored {out['scored']['written']} posts at {out['scored']['docs_per_s']} docs/s")
    print(out["evaluation"].table())
    print(out["run"])
