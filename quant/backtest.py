"""vectorbt backtests of strategy weights: one run, a vectorised sweep, a walk-forward test.

Execution: a weight at session t is traded at t's open (the panel's decision time, after the
signal became public), so prices are adjusted opens and portfolios are marked at the open.
Fees and slippage are in basis points of traded value; gross exposure is capped at
`max_leverage`. A sweep is one vectorbt call per chunk of parameter combinations (columns
grouped by combination, cash shared within a group); the chunks go through a `ChunkMap` — a
local loop, or `quant.distributed.ray_map` — and come back in grid order. Pure computation:
storing a run is `quant.run_store`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import polars as pl

from quant import stats
from quant.errors import BacktestError, ConfigError
from strategies.base import Strategy, check_params, combinations


@dataclass(frozen=True)
class Settings:
    """Costs, sizing and walk-forward windows (quant.toml's [backtest] section)."""

    fees_bps: float = 5.0
    slippage_bps: float = 5.0
    init_cash: float = 1_000_000.0
    max_leverage: float = 1.0
    walk_forward_train: int = 252     # sessions a window chooses its parameters on
    walk_forward_test: int = 63       # sessions it then trades them
    metric: str = "sharpe"            # what the walk-forward chooses by

    def __post_init__(self) -> None:
        if min(self.fees_bps, self.slippage_bps) < 0 or self.init_cash <= 0 or (
                self.max_leverage <= 0):
            raise ConfigError("fees_bps and slippage_bps must not be negative, init_cash and "
                              "max_leverage must be positive")
        if min(self.walk_forward_train, self.walk_forward_test) < 1:
            raise ConfigError("walk_forward_train and walk_forward_test must be at least 1")
        if self.metric not in stats.METRICS:
            raise ConfigError(f"metric must be one of {', '.join(stats.METRICS)}, "
                              f"not {self.metric!r}")


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


def weight_frame(weights: pl.DataFrame, prices: pd.DataFrame, tradable: pd.DataFrame,
                 max_leverage: float) -> pd.DataFrame:
    """Target weights aligned to the price frame; NaN = hold. Untradable names are closed."""
    wide = weights.pivot(on="ticker", index="session", values="weight").sort("session")
    frame = wide.to_pandas().set_index("session")
    frame.index = pd.DatetimeIndex(frame.index)
    frame = frame.reindex(index=prices.index, columns=prices.columns)
    frame = frame.where(tradable | frame.isna(), 0.0)  # never hold a name that cannot trade
    gross = frame.abs().sum(axis=1)
    scale = (max_leverage / gross).clip(upper=1.0).where(gross > 0, 1.0)
    return frame.mul(scale, axis=0)


def _tradable(panel: pl.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
    wide = panel.select("session", "ticker", pl.col("adj_open").is_not_null().alias("ok")
                        ).pivot(on="ticker", index="session", values="ok").sort("session")
    frame = wide.to_pandas().set_index("session")
    frame.index = pd.DatetimeIndex(frame.index)
    return frame.reindex(index=prices.index, columns=prices.columns).fillna(False).astype(bool)


def simulate(prices: pd.DataFrame, weights: list[pd.DataFrame], settings: Settings
             ) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """One vectorbt run for all weight sets: (returns, daily turnover, mean exposure)."""
    from quant import vbt as loader

    vbt = loader.load()

    n = len(weights)
    columns = pd.MultiIndex.from_tuples([(c, t) for c in range(n) for t in prices.columns],
                                        names=["config", "ticker"])
    size = pd.DataFrame(np.hstack([w.to_numpy() for w in weights]), index=prices.index,
                        columns=columns)
    close = pd.DataFrame(np.tile(prices.to_numpy(), n), index=prices.index, columns=columns)
    portfolio = vbt.Portfolio.from_orders(
        close=close, size=size, size_type="targetpercent", direction="both",
        fees=settings.fees_bps / 1e4, slippage=settings.slippage_bps / 1e4,
        init_cash=settings.init_cash, cash_sharing=True, group_by="config", call_seq="auto",
        freq="1D")
    value = portfolio.value()
    # The first session's return is against the starting cash, so its costs count.
    returns = value.div(value.shift(1).fillna(settings.init_cash)) - 1
    returns.columns = range(n)
    held = [w.ffill().fillna(0.0) for w in weights]
    # The traded share of the book each session (the first session has no "before").
    turnover = pd.concat([h.diff().abs().sum(axis=1, min_count=1) / 2 for h in held], axis=1)
    turnover.columns = range(n)
    exposure = np.array([h.abs().sum(axis=1).mean() for h in held])
    return returns, turnover, exposure


Outcome = tuple[pd.DataFrame, pd.DataFrame, np.ndarray]
ChunkMap = Callable[[Callable[[list[dict]], Outcome], list[list[dict]]], list[Outcome]]


def local_map(fn: Callable[[list[dict]], Outcome], chunks: list[list[dict]]) -> list[Outcome]:
    return [fn(chunk) for chunk in chunks]


@dataclass
class Simulation:
    """A panel's prices made ready for vectorbt, and a strategy to simulate on them."""

    panel: pl.DataFrame
    strategy: Strategy
    settings: Settings

    def __post_init__(self) -> None:
        self.prices = price_frame(self.panel)
        self.tradable = _tradable(self.panel, self.prices)

    def __call__(self, param_sets: list[dict]) -> Outcome:
        weights = [weight_frame(self.strategy.weights(self.panel, **p), self.prices,
                                self.tradable, self.settings.max_leverage) for p in param_sets]
        return simulate(self.prices, weights, self.settings)


def run(panel: pl.DataFrame, strategy: Strategy, param_sets: list[dict], settings: Settings,
        kind: str, chunk: int = 50, chunk_map: ChunkMap = local_map) -> Result:
    """Every parameter set, `chunk` of them per vectorbt call, mapped by `chunk_map`."""
    chunks = [param_sets[i:i + chunk] for i in range(0, len(param_sets), chunk)]
    outcomes = chunk_map(Simulation(panel, strategy, settings), chunks)
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


def sweep(panel: pl.DataFrame, strategy: Strategy, settings: Settings = Settings(),
          grid: list[dict] | None = None, chunk: int = 50, chunk_map: ChunkMap = local_map
          ) -> Result:
    """Every grid point in vectorised vectorbt runs, with the honest statistics of a sweep:
    the deflated Sharpe of the best configuration given how many were tried, and the PBO by
    CSCV."""
    param_sets = grid or combinations(strategy)
    if len(param_sets) < 2:
        raise BacktestError(f"{strategy.name} has no parameter grid to sweep")
    result = run(panel, strategy, param_sets, settings, "sweep", chunk, chunk_map)
    best = result.best
    result.extra["deflated_sharpe"] = stats.deflated_sharpe(
        result.returns[best], np.array([m["sharpe"] for m in result.metrics]))
    result.extra["pbo"] = stats.probability_of_backtest_overfitting(result.returns.to_numpy())
    result.extra["best_params"] = result.params[best]
    return result


def walk_forward(panel: pl.DataFrame, strategy: Strategy, settings: Settings = Settings(),
                 grid: list[dict] | None = None, chunk_map: ChunkMap = local_map) -> Result:
    """Rolling windows: the best parameters on each train window by `settings.metric`, then
    their returns on the next test window; the stitched out-of-sample returns are the
    headline."""
    train, test, metric = (settings.walk_forward_train, settings.walk_forward_test,
                           settings.metric)
    swept = sweep(panel, strategy, settings, grid, chunk_map=chunk_map)
    returns = swept.returns
    if len(returns) < train + test:
        raise BacktestError(f"walk-forward needs at least {train + test} sessions, the panel "
                            f"has {len(returns)}: lower walk_forward_train / walk_forward_test in "
                            "quant.toml's [backtest], or widen the period")
    stitched, windows = [], []
    for start in range(0, len(returns) - train - test + 1, test):
        in_sample = returns.iloc[start:start + train]
        scores = stats.performance(in_sample)[metric].to_numpy()
        best = int(np.nanargmax(scores))
        out = returns.iloc[start + train:start + train + test][best]
        stitched.append(out)
        windows.append({
            "train_start": in_sample.index[0].date(), "train_end": in_sample.index[-1].date(),
            "test_start": out.index[0].date(), "test_end": out.index[-1].date(),
            "params": swept.params[best], f"train_{metric}": float(scores[best]),
            f"test_{metric}": float(stats.performance(out)[metric].iloc[0])})
    oos = pd.concat(stitched).to_frame(0)
    result = Result(strategy.name, "walk_forward", [windows[-1]["params"]], oos,
                    pd.DataFrame(np.nan, index=oos.index, columns=[0]), np.array([np.nan]),
                    measure(oos))
    result.extra = {"windows": windows, "sweep": {"configurations": len(swept.params),
                                                  "pbo": swept.extra["pbo"],
                                                  "deflated_sharpe": swept.extra[
                                                      "deflated_sharpe"]}}
    return result
