"""A 1,000-configuration sweep of `sentiment_long_short` over 50 tickers and 10 years:
our vectorised sweep (one vectorbt run per chunk of configurations) vs the same strategy run
as separate single-configuration backtests in a Python loop.

The loop is timed on a sample of configurations and extrapolated (printed as such). Each side
runs in its own subprocess so its peak memory (max RSS) is its own.

Run: `python bench/bench_sweep.py [CONFIGS] [LOOP_SAMPLE]`.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def panel_and_grid(configs: int):
    import polars as pl

    from data.calendar import get_calendar
    from quant.pipeline import PanelParams, build_panel

    cal = get_calendar("XNYS")
    sessions = cal.sessions_between(date(2014, 1, 2), date(2023, 12, 29))
    rng = np.random.default_rng(0)
    tickers = [f"T{i:02d}" for i in range(50)]
    k = len(sessions)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (k, 50)), axis=0))
    prices = pl.DataFrame({"ticker": np.repeat(tickers, k), "session": sessions * 50,
                           "open": close.T.ravel(), "close": close.T.ravel(),
                           "adj_close": close.T.ravel(), "volume": 1e6})
    n = 200_000
    start = np.datetime64("2014-01-01T00:00:00", "us").astype(np.int64)
    signals = pl.DataFrame({
        "doc_id": np.arange(n).astype(str), "section": "",
        "ticker": np.array(tickers)[rng.integers(0, 50, n)],
        "published_at": pl.Series(start + rng.integers(0, int(9.9 * 365 * 86400e6), n)).cast(
            pl.Datetime("us", "UTC")),
        "sentiment": rng.uniform(-1, 1, n), "confidence": 1.0, "event_type": "other",
        "story": np.arange(n).astype(str)})
    panel = build_panel(signals, prices, PanelParams(min_history=0), cal)
    quantiles = np.linspace(0.1, 0.5, 10)
    grid = [{"quantile": float(q), "rebalance": r, "signal": "sentiment_z", "gross": 1.0}
            for q in quantiles for r in range(1, 101)][:configs]
    return panel, grid


def child(kind: str, configs: int, sample: int) -> None:
    from quant.backtest import Settings, backtest, sweep
    from strategies import get_strategy

    panel, grid = panel_and_grid(configs)
    strategy = get_strategy("sentiment_long_short")
    backtest(panel, strategy, grid[0], Settings())  # compile numba outside the timing
    started = time.perf_counter()
    if kind == "sweep":
        result = sweep(panel, strategy, Settings(), grid=grid)
        seconds, timed = time.perf_counter() - started, len(grid)
        best = max(m["sharpe"] for m in result.metrics)
    else:
        picks = grid[:: max(1, len(grid) // sample)][:sample]
        best = max(backtest(panel, strategy, p, Settings()).metrics[0]["sharpe"] for p in picks)
        timed = len(picks)
        seconds = (time.perf_counter() - started) * len(grid) / timed
    print(json.dumps({"seconds": seconds, "timed": timed, "best_sharpe": best,
                      "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}))


def main(configs: int, sample: int) -> None:
    results = {}
    for kind in ("sweep", "loop"):
        done = subprocess.run([sys.executable, __file__, "--child", kind, str(configs),
                               str(sample)], capture_output=True, text=True, check=True)
        results[kind] = json.loads(done.stdout.strip().splitlines()[-1])
        r = results[kind]
        note = "" if r["timed"] == configs else f" (extrapolated from {r['timed']} runs)"
        print(f"{kind:6s} {r['seconds']:8.1f} s{note}  peak RSS {r['peak_rss_gb']:.2f} GB")
    ratio = results["loop"]["seconds"] / results["sweep"]["seconds"]
    print(f"{configs} configurations x 50 tickers x 10 years: the vectorised sweep is "
          f"{ratio:.1f}x the loop of single backtests")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
             int(sys.argv[2]) if len(sys.argv) > 2 else 50)
