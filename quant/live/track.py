"""A deployment's paper record since go-live beside what its backtest before go-live expected.

`paper` simulates the stored targets with the backtest's own order simulation and costs, so
its figures (Sharpe, CAGR, drawdown, turnover, exposure) are measured exactly as a backtest's
are; `live_ic` correlates each session's traded signal with the return that followed;
`expectation` is the same strategy's backtest over the history before go-live, and the track
record says whether the live Sharpe falls where that backtest would put it.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from data.calendar import get_calendar
from data.errors import DataError
from data.warehouse import Warehouse
from quant.backtests import backtest as bt
from quant.backtests import stats
from quant.backtests.backtest import Simulation, measure
from quant.config import Config
from quant.live import book, deployments
from quant.pipeline import build_panel, load_prices, no_signals
from quant.reports.track_page import write_track as write_page
from quant.signals import traded_signal

# What the track record shows, live beside the backtest before go-live.
FIGURES = ("sharpe", "cagr", "max_drawdown", "volatility", "turnover", "exposure", "rank_ic")


def paper(config: Config, wh: Warehouse, deployment: deployments.Deployment
          ) -> tuple[pd.Series, pd.Series, float]:
    """Daily returns and turnover of the stored targets since go-live, and their mean gross
    exposure, through the backtest's own order simulation and costs, up to the last session
    with prices."""
    targets = deployments.read_targets(wh, deployment.name)
    if targets.is_empty():
        raise DataError(f"{deployment.name} has no targets yet: the daily job writes them, or "
                        "`quant replay` for past sessions")
    panel = _since_go_live(config, wh, deployment).filter(
        pl.col("session").is_in(targets["session"].unique().implode()))
    if panel.is_empty():  # only tomorrow's book so far: nothing has traded yet
        empty = pd.Series([], index=pd.DatetimeIndex([]), dtype=float)
        return empty.rename("paper"), empty.rename("turnover"), 0.0

    class Stored:  # the targets as a strategy, so the simulation places them as any other
        name = deployment.name

        def weights(self, frame: pl.DataFrame, **_: object) -> pl.DataFrame:
            return frame.select("session", "ticker").join(
                targets.select("session", "ticker", "weight"), on=["session", "ticker"],
                how="left")

    returns, turnover, exposure = Simulation(panel, Stored(), deployment.backtest_settings)([{}])
    return returns[0].rename("paper"), turnover[0].rename("turnover"), float(exposure[0])


def live_ic(config: Config, wh: Warehouse, deployment: deployments.Deployment,
            until: date | None = None) -> pl.DataFrame:
    """session, ic: each session's rank IC of the traded signal in the stored targets against
    the return that followed (open to next open)."""
    targets = deployments.read_targets(wh, deployment.name, until=until).filter(
        pl.col("signal").is_not_null())
    if targets.is_empty():
        return pl.DataFrame(schema={"session": pl.Date, "ic": pl.Float64})
    returns = _since_go_live(config, wh, deployment).select("session", "ticker", "fwd_ret_1")
    return daily_rank_ic(targets.join(returns, on=["session", "ticker"]), "signal")


def _since_go_live(config: Config, wh: Warehouse, deployment: deployments.Deployment
                   ) -> pl.DataFrame:
    """The deployment's names' prices and forward returns from go-live on."""
    prices = load_prices(wh, since=deployment.go_live).filter(
        pl.col("ticker").is_in(list(deployment.universe)))
    return build_panel(no_signals(), prices, config.pipeline,
                       get_calendar(config.data.calendar))


def daily_rank_ic(frame: pl.DataFrame, signal: str) -> pl.DataFrame:
    """session, ic: the Spearman correlation of `signal` and `fwd_ret_1` across names."""
    return (frame.drop_nulls([signal, "fwd_ret_1"]).group_by("session")
            .agg(ic=pl.corr(signal, "fwd_ret_1", method="spearman"))
            .drop_nans().drop_nulls().sort("session"))


def expectation(config: Config, wh: Warehouse, deployment: deployments.Deployment
                ) -> dict | None:
    """What a backtest of the deployment expected: its single run over the sessions with
    signals before go-live (sharpe, cagr, max_drawdown, ...); None without 20 of them. A
    learned deployment's is the walk-forward of its model over its history before go-live."""
    try:
        panel, strategy = book.backtest_panel(config, wh, deployment, date.min,
                                              deployment.go_live - timedelta(days=1))
    except DataError:
        return None
    if deployment.model is None and book.signal_set(deployment) is not None:
        live = panel.filter(pl.col("sentiment").is_not_null())  # from the first signal on
        panel = panel.filter(pl.col("session") >= live["session"].min()) if live.height else (
            panel.clear())
    if panel["session"].n_unique() < 20:
        return None
    result = bt.backtest(panel, strategy, deployment.params, deployment.backtest_settings)
    metrics = result.metrics[0]
    signal = traded_signal(strategy, deployment.params)
    ics = (daily_rank_ic(panel, signal)["ic"]
           if signal in panel.columns and "fwd_ret_1" in panel.columns else pl.Series([]))
    return {**{k: metrics[k] for k in FIGURES[:-1]},
            "rank_ic": float(ics.mean()) if ics.len() else None,
            "sessions": len(result.returns),
            "period": f"{panel['session'].min()} .. {panel['session'].max()}"}


def write_track(config: Config, deployment: deployments.Deployment, record: dict) -> Path:
    """The deployment's track record (`track_record`) beside its books
    (`quant.reports.track_page`)."""
    folder = book.folder_of(config, deployment.name)
    folder.mkdir(parents=True, exist_ok=True)
    return write_page(folder, config.reports_dir, record)


def track_record(config: Config, wh: Warehouse, deployment: deployments.Deployment) -> dict:
    """The paper record since go-live (`returns`; Sharpe, CAGR, worst drawdown, annual
    turnover and mean exposure as a backtest measures them; the traded signal's mean daily
    rank IC) beside the backtest's expectation, and the interval the live Sharpe would fall in
    95% of the time were the backtest right."""
    returns, turnover, exposure = paper(config, wh, deployment)
    expected = expectation(config, wh, deployment)
    live = measure(returns.to_frame(), turnover.to_frame(), np.array([exposure]))[0]
    ics = live_ic(config, wh, deployment)["ic"]
    record = {"deployment": deployment.name, "since": str(deployment.go_live),
              "sessions": len(returns), "returns": returns,
              "live": {**{k: live[k] for k in FIGURES[:-1]},
                       "rank_ic": float(ics.mean()) if ics.len() else None},
              "backtest": expected}
    if expected and expected.get("sharpe") is not None and len(returns) > 1:
        daily = expected["sharpe"] / math.sqrt(stats.PERIODS)
        half = 1.96 * math.sqrt((1 + daily ** 2 / 2) / len(returns)) * math.sqrt(stats.PERIODS)
        low, high = expected["sharpe"] - half, expected["sharpe"] + half
        record["interval"] = {"low": low, "high": high,
                              "inside": low <= record["live"]["sharpe"] <= high}
    return record
