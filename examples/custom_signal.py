"""A signal of your own, evaluated and backtested end to end, on the bundled sample prices.

The signal is a five-session reversal (yesterday's losers bought, winners sold), computed on the
point-in-time panel; no model is involved. Run:

    python examples/custom_signal.py [WORKSPACE]      # default: a new temporary folder
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import polars as pl

import quant
from data.samples import sample_prices_path


def main(root: Path) -> dict:
    quant.init_workspace(root)
    ws = quant.open(root, write=True)
    ws.ingest("prices", [sample_prices_path()])
    panel = ws.panel(horizons=(1, 5), signals=False).with_columns(
        reversal=-(pl.col("adj_open") / pl.col("adj_open").shift(5).over("ticker") - 1))
    evaluation = ws.evaluate(panel, signal="reversal")
    run = ws.backtest("sentiment_long_short", {"signal": "reversal", "quantile": 0.4},
                      panel=panel)
    return {"evaluation": evaluation, "run": run, "report": ws.report(run)}


if __name__ == "__main__":
    out = main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))
    print(out["evaluation"].table())
    print(out["run"].metrics_frame())
    print(f"report: {out['report']}")
