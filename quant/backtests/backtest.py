"""Backtests of strategy weights: one run, a vectorised sweep, a walk-forward test.

Execution: a weight at session t is traded at t's open (the panel's decision time, after the
signal became public), so prices are adjusted opens and portfolios are marked at the open.
Fees and slippage are in basis points of traded value; gross exposure is capped at
`max_leverage`. The portfolios are vectorbt's (`quant.backtests.simulation` runs its order logic for
every configuration in one compiled pass). A sweep takes its weights from the strategy's
`weights_grid` when it has one (every configuration in one frame), else from one `weights`
call per configuration; chunks of the grid, sized to the memory available, go through a
`ChunkMap` — a local loop, or `quant.text.distributed.ray_map` — and come back in grid order. Pure
computation: storing a run is `quant.reports.run_store`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import polars as pl

from quant.backtests import simulation, stats
from quant.errors import BacktestError
from quant.settings import BacktestSettings as Settings
from strategies.base import Strategy, check_params, combinations, missing_columns


@dataclass
class Result:
    """Daily returns of one or more configurations, with what produced them."""

    strategy: str
    kind: str
    params: list[dict]
    returns: pd.DataFrame                     # sessions x configurations
    turnover: pd.DataFrame                    # share of the book traded, sessions x configs
    exposure: np.ndarray
    metrics: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def best(self) -> int:
        return int(np.argmax([m["sharpe"] for m in self.metrics]))


def measure(returns: pd.DataFrame, turnover: pd.DataFrame | None = None,
            exposure: np.ndarray | None = None) -> list[dict]:
    """Per configuration: the performance statistics, annual turnover and mean exposure."""
    rows = stats.performance(returns).to_dict("records")
    if turnover is not None:
        yearly = (turnover.mean() * stats.PERIODS).to_numpy()
        for row, t, e in zip(rows, yearly, exposure, strict=True):
            row |= {"turnover": float(t), "exposure": float(e)}
    return rows


def price_frame(panel: pl.DataFrame) -> pd.DataFrame:
    """Adjusted opens, sessions x tickers (filled so vectorbt always has a price; weights are
    zero wherever a name has no real price)."""
    wide = panel.pivot(on="ticker", index="session", values="adj_open").sort("session")
    frame = wide.to_pandas().set_index("session")
    frame.index = pd.DatetimeIndex(frame.index)
    frame = frame.ffill().bfill()
    if frame.isna().all().any():
        raise BacktestError("a ticker has no price at all in the backtest period")
    return frame


def _tradable(panel: pl.DataFrame, prices: pd.DataFrame) -> np.ndarray:
    wide = panel.select("session", "ticker", pl.col("adj_open").is_not_null().alias("ok")
                        ).pivot(on="ticker", index="session", values="ok").sort("session")
    frame = wide.to_pandas().set_index("session")
    frame.index = pd.DatetimeIndex(frame.index)
    return frame.reindex(index=prices.index, columns=prices.columns).fillna(False).to_numpy(
        dtype=bool)


Outcome = tuple[pd.DataFrame, pd.DataFrame, np.ndarray]
ChunkMap = Callable[[Callable[[list[dict]], Outcome], list[list[dict]]], list[Outcome]]


def local_map(fn: Callable[[list[dict]], Outcome], chunks: list[list[dict]]) -> list[Outcome]:
    return [fn(chunk) for chunk in chunks]


@dataclass
class Simulation:
    """A panel's prices made ready for simulation, and a strategy to simulate on them."""

    panel: pl.DataFrame
    strategy: Strategy
    settings: Settings

    def __post_init__(self) -> None:
        self.prices = price_frame(self.panel)
        self.tradable = _tradable(self.panel, self.prices)
        self._keys = self.panel.select("session", "ticker")
        self._cells = self._cells_of(self._keys)
        sessions, names = self.prices.shape
        by_ticker = np.arange(sessions)[None, :] * names + np.arange(names)[:, None]
        self._ticker_major = np.array_equal(self._cells, by_ticker.ravel())

    def targets(self, param_sets: list[dict], use_grid: bool = True) -> np.ndarray:
        """Target weights, configurations x sessions x tickers (NaN = hold): from the
        strategy's `weights_grid` when it has one, else one `weights` call per configuration."""
        if use_grid and hasattr(self.strategy, "weights_grid"):
            return self._place(self.strategy.weights_grid(self.panel, param_sets),
                               len(param_sets))
        out = np.empty((len(param_sets), *self.prices.shape))
        for i, params in enumerate(param_sets):
            out[i] = self._place(self.strategy.weights(self.panel, **params), 1)[0]
        return out

    def _place(self, frame: pl.DataFrame, configs: int) -> np.ndarray:
        """A frame of (session, ticker, one weight column per configuration) as configurations
        x sessions x tickers; rows outside the price frame are dropped (as a reindex would)."""
        weights = [c for c in frame.columns if c not in ("session", "ticker")]
        if len(weights) != configs:
            raise BacktestError(f"{self.strategy.name} gave {len(weights)} weight columns for "
                                f"{configs} configurations")
        keys = frame.select("session", "ticker")
        same = keys.equals(self._keys)
        cells = self._cells if same else self._cells_of(keys)
        inside = cells[cells >= 0]
        if not same and len(np.unique(inside)) < len(inside):
            raise BacktestError(f"{self.strategy.name} gave two weights for the same ticker "
                                "and session: give one row per (session, ticker)")
        values = frame.select(pl.col(weights).cast(pl.Float64)).to_numpy()  # rows x configs
        sessions, names = self.prices.shape
        if same and self._ticker_major:  # every cell once, ticker by ticker: a view, no copy
            return values.T.reshape(configs, names, sessions).swapaxes(1, 2)
        out = np.full((configs, sessions * names), np.nan)
        out[:, inside] = values[cells >= 0].T
        return out.reshape(configs, sessions, names)

    def _cells_of(self, keys: pl.DataFrame) -> np.ndarray:
        """Each (session, ticker) row's flat position in the sessions x tickers frame; -1
        where the price frame has no such session or ticker."""
        rows = pl.DataFrame({"session": pl.Series(self.prices.index).cast(pl.Date),
                             "_row": np.arange(len(self.prices), dtype=np.int64)})
        columns = pl.DataFrame({"ticker": list(self.prices.columns),
                                "_column": np.arange(self.prices.shape[1], dtype=np.int64)})
        placed = (keys.with_columns(pl.col("session").cast(pl.Date))
                  .join(rows, on="session", how="left", maintain_order="left")
                  .join(columns, on="ticker", how="left", maintain_order="left"))
        cell = placed["_row"] * self.prices.shape[1] + placed["_column"]
        return cell.fill_null(-1).to_numpy()

    def __call__(self, param_sets: list[dict]) -> Outcome:
        s = self.settings
        return simulation.simulate(self.prices, self.targets(param_sets), self.tradable,
                                   fees=s.fees_bps / 1e4, slippage=s.slippage_bps / 1e4,
                                   init_cash=s.init_cash, max_leverage=s.max_leverage)


def chunked(param_sets: list[dict], panel: pl.DataFrame, chunk: int | None) -> list[list[dict]]:
    """The grid in chunks of `chunk` configurations (by default as many as a share of the
    available memory holds)."""
    if chunk is None:
        chunk = simulation.chunk_size(panel["session"].n_unique(), panel["ticker"].n_unique())
    return [param_sets[i:i + chunk] for i in range(0, len(param_sets), chunk)]


def require_columns(strategy: Strategy, panel: pl.DataFrame) -> None:
    """A column the strategy declares it needs (`requires`), missing: a BacktestError with the
    strategy's own word on how to get it."""
    problem = missing_columns(strategy, panel)
    if problem:
        raise BacktestError(problem)


def run(panel: pl.DataFrame, strategy: Strategy, param_sets: list[dict], settings: Settings,
        kind: str, chunk: int | None = None, chunk_map: ChunkMap = local_map) -> Result:
    """Every parameter set, simulated in chunks mapped by `chunk_map`."""
    require_columns(strategy, panel)
    outcomes = chunk_map(Simulation(panel, strategy, settings),
                         chunked(param_sets, panel, chunk))
    returns, turnover = (pd.concat([o[k] for o in outcomes], axis=1) for k in (0, 1))
    returns.columns = turnover.columns = range(returns.shape[1])
    exposure = np.concatenate([o[2] for o in outcomes])
    return Result(strategy.name, kind, param_sets, returns, turnover, exposure,
                  measure(returns, turnover, exposure))


def backtest(panel: pl.DataFrame, strategy: Strategy, params: dict | None = None,
             settings: Settings = Settings()) -> Result:
    """One configuration."""
    try:
        chosen = check_params(strategy, params or {})
    except ValueError as exc:
        raise BacktestError(str(exc)) from None
    return run(panel, strategy, [chosen], settings, "single")


def grid_of(strategy: Strategy, fixed: dict | None = None) -> list[dict]:
    """The strategy's grid with `fixed` parameters held (as a single backtest takes them)."""
    try:
        return combinations(strategy, fixed)
    except ValueError as exc:
        raise BacktestError(str(exc)) from None


def sweep(panel: pl.DataFrame, strategy: Strategy, settings: Settings = Settings(),
          grid: list[dict] | None = None, chunk: int | None = None,
          chunk_map: ChunkMap = local_map, fixed: dict | None = None) -> Result:
    """Every grid point in vectorised vectorbt runs, with the honest statistics of a sweep:
    the deflated Sharpe of the best configuration given how many were tried, and the PBO by
    CSCV. `fixed` parameters hold in every grid point (the grid varies the rest)."""
    param_sets = grid or grid_of(strategy, fixed)
    if len(param_sets) < 2:
        raise BacktestError(f"{strategy.name} has no parameter grid to sweep")
    result = run(panel, strategy, param_sets, settings, "sweep", chunk, chunk_map)
    best = result.best
    result.extra["deflated_sharpe"] = stats.deflated_sharpe(
        result.returns[best], np.array([m["sharpe"] for m in result.metrics]))
    result.extra["pbo"] = stats.probability_of_backtest_overfitting(result.returns.to_numpy())
    result.extra["best_params"] = result.params[best]
    return result


def window_metric(values: np.ndarray, starts: list[int], length: int, metric: str,
                  cells: int = 16_000_000) -> np.ndarray:
    """`metric` of every configuration (column of `values`) on every window of `length`
    sessions from `starts`: windows x configurations. The windows are stacked side by side so
    the statistics run once per batch of about `cells` values, not once per window."""
    per_batch = max(1, cells // max(1, length * values.shape[1]))
    scores = []
    for i in range(0, len(starts), per_batch):
        batch = starts[i:i + per_batch]
        stacked = np.concatenate([values[s:s + length] for s in batch], axis=1)
        score = stats.performance(pd.DataFrame(stacked), (metric,))[metric].to_numpy()
        scores.append(score.reshape(len(batch), values.shape[1]))
    return np.concatenate(scores)


def walk_forward(panel: pl.DataFrame, strategy: Strategy, settings: Settings = Settings(),
                 grid: list[dict] | None = None, chunk_map: ChunkMap = local_map,
                 swept: Result | None = None, fixed: dict | None = None) -> Result:
    """Rolling windows: the best parameters on each train window by `settings.metric`, then
    their returns on the next test window; the stitched out-of-sample returns are the
    headline. `swept`: the grid's sweep when it was already run (on the same panel and
    settings), so it is not run again."""
    train, test, metric = (settings.walk_forward_train, settings.walk_forward_test,
                           settings.metric)
    swept = swept or sweep(panel, strategy, settings, grid, chunk_map=chunk_map, fixed=fixed)
    returns = swept.returns
    if len(returns) < train + test:
        raise BacktestError(f"walk-forward needs at least {train + test} sessions, the panel "
                            f"has {len(returns)}: lower walk_forward_train / walk_forward_test in "
                            "quant.toml's [backtest], or widen the period")
    # Every window with a test session: the last one trades what is left (fewer sessions
    # than `test`), so the out-of-sample record runs to the end of the period.
    starts = list(range(0, len(returns) - train, test))
    values = returns.to_numpy()
    scores = window_metric(values, starts, train, metric)
    best = np.nanargmax(scores, axis=1)
    tests = [values[s + train:s + train + test, b] for s, b in zip(starts, best, strict=True)]
    # The full windows in one call (as many as there are, side by side), a short last one apart.
    full = [t for t in tests if len(t) == test]
    tested = list(stats.performance(pd.DataFrame(np.stack(full, axis=1)), (metric,))[metric])
    if len(full) < len(tests):
        tested += list(stats.performance(pd.DataFrame({0: tests[-1]}), (metric,))[metric])
    windows = []
    for w, (start, b) in enumerate(zip(starts, best, strict=True)):
        end = start + train + len(tests[w]) - 1
        dates = returns.index[[start, start + train - 1, start + train, end]]
        windows.append({
            "train_start": dates[0].date(), "train_end": dates[1].date(),
            "test_start": dates[2].date(), "test_end": dates[3].date(),
            "test_sessions": len(tests[w]),
            "params": swept.params[b], f"train_{metric}": float(scores[w, b]),
            f"test_{metric}": float(tested[w])})
    # The test windows follow each other: their returns, in order, are the stitch.
    oos = pd.DataFrame({0: np.concatenate(tests)}, index=returns.index[train:])
    result = Result(strategy.name, "walk_forward", [windows[-1]["params"]], oos,
                    pd.DataFrame(np.nan, index=oos.index, columns=[0]), np.array([np.nan]),
                    measure(oos))
    result.extra = {"windows": windows, "sweep": {"configurations": len(swept.params),
                                                  "pbo": swept.extra["pbo"],
                                                  "deflated_sharpe": swept.extra[
                                                      "deflated_sharpe"]}}
    return result
