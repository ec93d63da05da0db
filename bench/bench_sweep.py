"""A 1,000-configuration sweep of `sentiment_long_short` over 50 tickers and 10 years, three
ways in one process, with the same returns asserted:

- grid: `quant.backtests.backtest.sweep` (the strategy's `weights_grid`, the compiled simulation);
- vectorbt: the former sweep, per-configuration weights and one `Portfolio.from_orders` per
  chunk of 50 configurations (`quant.backtests.simulation.simulate_with_vectorbt`);
- loop: single-configuration `backtest` calls in a Python loop (timed on a sample, then
  extrapolated, printed as such).

Then the walk-forward over the same grid against the sweep, and each path's peak memory above
what the process held before it (sampled every few milliseconds). The two fast paths are timed
as the best of three runs (these machines are shared and noisy).

Run: `python bench/bench_sweep.py [CONFIGS] [LOOP_SAMPLE]`.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

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


class PeakMemory:
    """The most resident memory above the level at entry, sampled in a thread."""

    def __enter__(self):
        self.base = self.peak = _rss()
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while self._running:
            self.peak = max(self.peak, _rss())
            time.sleep(0.005)

    def __exit__(self, *exc):
        self._running = False
        self._thread.join()
        self.gb = (self.peak - self.base) / 1024**3


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def timed(fn, repeat: int = 1):
    """(result, best seconds of `repeat` runs, peak GB above the start)."""
    best = float("inf")
    with PeakMemory() as memory:
        for _ in range(repeat):
            started = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - started)
    return out, best, memory.gb


def vectorbt_sweep(panel, strategy, settings, grid, chunk: int = 50) -> pd.DataFrame:
    """The former sweep: per-configuration weights, one vectorbt run per chunk."""
    from quant.backtests.backtest import Simulation, measure
    from quant.backtests.simulation import simulate_with_vectorbt

    simulation = Simulation(panel, strategy, settings)
    parts = []
    for i in range(0, len(grid), chunk):
        targets = simulation.targets(grid[i:i + chunk], use_grid=False)
        parts.append(simulate_with_vectorbt(
            simulation.prices, targets, simulation.tradable, fees=settings.fees_bps / 1e4,
            slippage=settings.slippage_bps / 1e4, init_cash=settings.init_cash,
            max_leverage=settings.max_leverage))
    returns = pd.concat(parts, axis=1)
    returns.columns = range(len(grid))
    measure(returns)
    return returns


def main(configs: int, sample: int) -> None:
    import torch

    from quant.backtests.backtest import Settings, backtest, sweep, walk_forward
    from strategies import get_strategy

    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}")
    panel, grid = panel_and_grid(configs)
    strategy, settings = get_strategy("sentiment_long_short"), Settings()
    backtest(panel, strategy, grid[0], settings)  # compile outside the timing
    sweep(panel, strategy, settings, grid=grid[:2])
    vectorbt_sweep(panel, strategy, settings, grid[:2])

    swept, grid_s, grid_gb = timed(lambda: sweep(panel, strategy, settings, grid=grid), 3)
    _, wf_s, wf_gb = timed(lambda: walk_forward(panel, strategy, settings, grid), 3)
    # The walk-forward's own work, beside the sweep inside it (whose time varies run to run).
    _, own_s, _ = timed(lambda: walk_forward(panel, strategy, settings, swept=swept), 3)
    reference, vbt_s, vbt_gb = timed(lambda: vectorbt_sweep(panel, strategy, settings, grid))
    difference = float(np.abs(swept.returns.to_numpy() - reference.to_numpy()).max())
    assert difference < 1e-10, difference

    picks = list(range(0, len(grid), max(1, len(grid) // sample)))[:sample]
    singles, loop_s, loop_gb = timed(
        lambda: [backtest(panel, strategy, grid[i], settings) for i in picks])
    for i, single in zip(picks, singles, strict=True):
        assert np.abs(single.returns[0].to_numpy() - swept.returns[i].to_numpy()).max() < 1e-10
    loop_s *= len(grid) / len(picks)

    print(f"{configs} configurations x 50 tickers x {len(swept.returns)} sessions "
          f"(returns identical: max abs difference {difference:.1e})")
    for name, seconds, gb, note in (
            ("grid sweep", grid_s, grid_gb, ""), ("vectorbt sweep", vbt_s, vbt_gb, ""),
            ("loop", loop_s, loop_gb, f"  (extrapolated from {len(picks)} runs)"),
            ("walk-forward", wf_s, wf_gb, "")):
        print(f"  {name:15s} {seconds:8.2f} s  peak +{gb:.2f} GB{note}")
    print(f"grid sweep vs loop of single backtests: {loop_s / grid_s:.1f}x; vs the vectorbt "
          f"sweep: {vbt_s / grid_s:.1f}x; walk-forward / sweep: {wf_s / grid_s:.2f} "
          f"(its own work after the sweep: {own_s:.2f} s, {own_s / grid_s:.0%} of the sweep)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
         int(sys.argv[2]) if len(sys.argv) > 2 else 50)
