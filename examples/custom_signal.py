"""A signal of your own, evaluated and backtested end to end, on the bundled sample prices.

The signal is a five-session reversal (the last five sessions' losers bought, winners sold),
an expression of the point-in-time panel checked like a feature; no model is involved. Run:

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
    panel = ws.panel(horizons=(1, 5), signals=False)
    # A row is decided at its session's open: the signal reads the closes of earlier sessions.
    # Given as an expression, it is checked point-in-time before anything is computed on it.
    reversal = -(pl.col("adj_close").shift(1) / pl.col("adj_close").shift(6) - 1).over(
        "ticker", order_by="session").alias("reversal")
    evaluation = ws.evaluate(panel, signal=reversal)
    run = ws.backtest("sentiment_long_short", {"quantile": 0.4}, panel=panel, signal=reversal)
    return {"evaluation": evaluation, "run": run, "report": ws.report(run)}


if __name__ == "__main__":
    out = main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))
    print(out["evaluation"].table())
    print(out["run"].metrics_frame())
    print(f"report: {out['report']}")
