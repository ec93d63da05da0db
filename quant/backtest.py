"""vectorbt backtests of strategy weights: one run, a vectorised sweep, a walk-forward test.

Execution: a weight at session t is traded at t's open (the panel's decision time, after the
signal became public), so prices are adjusted opens and portfolios are marked at the open.
Fees and slippage are in basis points of traded value; gross exposure is capped at
`max_leverage`. A sweep is one vectorbt call over every parameter combination (columns grouped
by combination, cash shared within a group), in chunks to bound memory.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "numba"))

from quant import stats  # noqa: E402
from quant.errors import BacktestError  # noqa: E402
from strategies.base import Strategy, check_params, combinations  # noqa: E402


@dataclass(frozen=True)
class Settings:
    fees_bps: float = 5.0
    slippage_bps: float = 5.0
    init_cash: float = 1_000_000.0
    max_leverage: float = 1.0


@dataclass
class Result:
    """Daily returns of one or more configurations, with what produced them."""

    strategy: str
    kind: str
    params: list[dict]
    returns: pd.DataFrame                     # sessions x configurations
    turnover: np.ndarray
    exposure: np.ndarray
    metrics: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def best(self) -> int:
        return int(np.argmax([m["sharpe"] for m in self.metrics]))


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
             ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """One vectorbt run for all weight sets: (returns per set, turnover, exposure)."""
    import vectorbt as vbt

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
    held = [w.ffill().fillna(0.0).to_numpy() for w in weights]
    turnover = np.array([np.abs(np.diff(h, axis=0)).sum(1).mean() / 2 * stats.PERIODS
                         for h in held])
    exposure = np.array([np.abs(h).sum(1).mean() for h in held])
    return returns, turnover, exposure


def _run(panel: pl.DataFrame, strategy: Strategy, param_sets: list[dict], settings: Settings,
         kind: str, chunk: int = 50) -> Result:
    prices = price_frame(panel)
    tradable = _tradable(panel, prices)
    returns, turnover, exposure = [], [], []
    for start in range(0, len(param_sets), chunk):
        batch = param_sets[start:start + chunk]
        weights = [weight_frame(strategy.weights(panel, **p), prices, tradable,
                                settings.max_leverage) for p in batch]
        r, t, e = simulate(prices, weights, settings)
        returns.append(r)
        turnover.append(t)
        exposure.append(e)
    frame = pd.concat(returns, axis=1)
    frame.columns = range(frame.shape[1])
    result = Result(strategy.name, kind, param_sets, frame, np.concatenate(turnover),
                    np.concatenate(exposure))
    result.metrics = [stats.summary(frame[i].to_numpy(), float(result.turnover[i]),
                                    float(result.exposure[i])) for i in frame.columns]
    if len(param_sets) == 1:  # the daily traded share of the book, for the report
        held = weights[0].ffill().fillna(0.0)
        result.extra["daily_turnover"] = (held.diff().abs().sum(axis=1) / 2).fillna(0.0)
    return result


def backtest(panel: pl.DataFrame, strategy: Strategy, params: dict | None = None,
             settings: Settings = Settings()) -> Result:
    """One configuration."""
    try:
        chosen = check_params(strategy, params or {})
    except ValueError as exc:
        raise BacktestError(str(exc)) from None
    return _run(panel, strategy, [chosen], settings, "single")


def sweep(panel: pl.DataFrame, strategy: Strategy, settings: Settings = Settings(),
          grid: list[dict] | None = None, chunk: int = 50, engine: str = "local",
          ray_address: str | None = None) -> Result:
    """Every grid point in vectorised vectorbt runs; adds the deflated Sharpe of the best
    configuration given the number tried, and the PBO by CSCV."""
    param_sets = grid or combinations(strategy)
    if len(param_sets) < 2:
        raise BacktestError(f"{strategy.name} has no parameter grid to sweep")
    if engine == "ray":
        from quant.distributed import sweep_on_ray

        return sweep_on_ray(panel, strategy.name, settings, param_sets, address=ray_address)
    return finish_sweep(_run(panel, strategy, param_sets, settings, "sweep", chunk))


def finish_sweep(result: Result) -> Result:
    """The honest statistics of a sweep: the deflated Sharpe of the best configuration given
    how many were tried, and the PBO by CSCV."""
    per_period = np.array([m["sharpe"] for m in result.metrics]) / np.sqrt(stats.PERIODS)
    best = result.best
    result.extra["deflated_sharpe"] = stats.deflated_sharpe(
        result.returns[best].to_numpy(), per_period)
    result.extra["pbo"] = stats.probability_of_backtest_overfitting(result.returns.to_numpy())
    result.extra["best_params"] = result.params[best]
    return result


def walk_forward(panel: pl.DataFrame, strategy: Strategy, settings: Settings = Settings(),
                 train: int = 252, test: int = 63, metric: str = "sharpe",
                 grid: list[dict] | None = None, engine: str = "local",
                 ray_address: str | None = None) -> Result:
    """Rolling windows: the best parameters on each train window by `metric`, then their
    returns on the next test window; the stitched out-of-sample returns are the headline."""
    swept = sweep(panel, strategy, settings, grid, engine=engine, ray_address=ray_address)
    returns = swept.returns
    if len(returns) < train + test:
        raise BacktestError(f"walk-forward needs at least {train + test} sessions, the panel "
                            f"has {len(returns)}: shorten --train/--test or widen the period")
    stitched, windows = [], []
    for start in range(0, len(returns) - train - test + 1, test):
        in_sample = returns.iloc[start:start + train]
        scores = [stats.summary(in_sample[c].to_numpy())[metric] for c in returns.columns]
        best = int(np.nanargmax(scores))
        out = returns.iloc[start + train:start + train + test][best]
        stitched.append(out)
        windows.append({
            "train_start": in_sample.index[0].date(), "train_end": in_sample.index[-1].date(),
            "test_start": out.index[0].date(), "test_end": out.index[-1].date(),
            "params": swept.params[best], f"train_{metric}": float(scores[best]),
            f"test_{metric}": stats.summary(out.to_numpy())[metric]})
    oos = pd.concat(stitched)
    result = Result(strategy.name, "walk_forward", [windows[-1]["params"]],
                    oos.to_frame(0), np.array([np.nan]), np.array([np.nan]))
    result.metrics = [stats.summary(oos.to_numpy())]
    result.extra = {"windows": windows, "sweep": {"configurations": len(swept.params),
                                                  "pbo": swept.extra["pbo"],
                                                  "deflated_sharpe": swept.extra[
                                                      "deflated_sharpe"]}}
    return result


def run_id(strategy: str, kind: str, key: object) -> str:
    """Deterministic: the same strategy, parameters, period, signals and costs give the same id,
    so running a backtest again reuses its stored result."""
    digest = hashlib.sha256(json.dumps([strategy, kind, key], default=str, sort_keys=True)
                            .encode()).hexdigest()[:10]
    return f"{strategy}-{kind}-{digest}"


def save(wh, result: Result, settings: Settings, rid: str, signals: dict | None = None) -> str:
    """Record the run in `backtests` under `rid`."""
    index = result.returns.index
    period = (index[0].date(), index[-1].date())
    chosen = result.best if result.kind == "sweep" else 0
    params = result.params[chosen]
    metrics = dict(result.metrics[chosen])
    metrics |= {k: v for k, v in result.extra.items() if k in ("deflated_sharpe", "pbo")}
    if result.kind == "sweep":
        metrics["configurations"] = len(result.params)
    if result.kind == "walk_forward":
        metrics["windows"] = len(result.extra["windows"])
        metrics |= result.extra["sweep"]
    wh.con.execute(
        "INSERT INTO backtests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [rid, result.strategy, result.kind, json.dumps(params, default=str), period[0],
         period[1], json.dumps(metrics, default=_jsonable), json.dumps(signals or {}),
         json.dumps(asdict(settings)), datetime.now(timezone.utc)])
    return rid


def _jsonable(value: object) -> object:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)
