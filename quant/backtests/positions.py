"""A run's book: the weights it targeted, the shares it held and the trades that moved them.

Rebuilt from the orders the simulation placed, by vectorbt's own `Portfolio` on the chosen
configuration (`quant.backtests.simulation.vectorbt_portfolio`, the oracle the compiled
simulation is held equal to), so the book is exactly consistent with the stored returns: the
account's value each session (cash plus the positions at that session's open) gives back the
returns. A walk-forward stitches windows of several configurations and has no single book.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl

from quant.backtests import simulation
from quant.backtests.backtest import Settings, Simulation
from strategies.base import Strategy


def book(panel: pl.DataFrame, strategy: Strategy, params: dict, settings: Settings
         ) -> dict[str, pl.DataFrame]:
    """`positions` (session, ticker, weight targeted, shares, price, value, weight held),
    `trades` (session, ticker, side, shares, price, fees) and `account` (session, value, cash,
    fees, long, short, gross, net as shares of the value)."""
    sim = Simulation(panel, strategy, settings)
    targets = sim.targets([params])
    portfolio = simulation.vectorbt_portfolio(
        sim.prices, targets, sim.tradable, fees=settings.fees_bps / 1e4,
        slippage=settings.slippage_bps / 1e4, init_cash=settings.init_cash,
        max_leverage=settings.max_leverage)
    tickers = list(sim.prices.columns)
    sessions = pl.Series("session", sim.prices.index.to_numpy()).cast(pl.Date)
    value = portfolio.value().to_numpy()
    shares = portfolio.assets().to_numpy()
    held = portfolio.asset_value(group_by=False).to_numpy()
    fills = portfolio.orders.records_readable
    fees = fills.groupby("Timestamp")["Fees"].sum().reindex(sim.prices.index).fillna(0.0)
    weight = held / value[:, None]
    positions = pl.DataFrame({
        "session": np.repeat(sessions.to_numpy(), len(tickers)),
        "ticker": pl.Series(np.tile(np.asarray(tickers, dtype=str), len(sessions)),
                            dtype=pl.String),
        "target": targets[0].ravel(), "shares": shares.ravel(),
        "price": sim.prices.to_numpy(dtype=float).ravel(), "value": held.ravel(),
        "weight": weight.ravel()}).filter(
        (pl.col("shares") != 0) | pl.col("target").is_not_nan())
    trades = pl.DataFrame({
        "session": pl.Series(pd.DatetimeIndex(fills["Timestamp"]).to_numpy()).cast(pl.Date),
        "ticker": pl.Series([str(column[1]) for column in fills["Column"]], dtype=pl.String),
        "side": pl.Series([str(side).lower() for side in fills["Side"]], dtype=pl.String),
        "shares": fills["Size"].to_numpy(dtype=float),
        "price": fills["Price"].to_numpy(dtype=float),
        "fees": fills["Fees"].to_numpy(dtype=float)})
    account = pl.DataFrame({
        "session": sessions, "value": value, "cash": portfolio.cash().to_numpy(),
        "fees": fees.to_numpy(),
        "long": np.where(weight > 0, weight, 0.0).sum(axis=1),
        "short": np.where(weight < 0, weight, 0.0).sum(axis=1)}).with_columns(
        gross=pl.col("long") - pl.col("short"), net=pl.col("long") + pl.col("short"))
    return {"positions": positions, "trades": trades, "account": account}


def returns_of(account: pl.DataFrame, init_cash: float) -> pd.Series:
    """Daily returns from the account's value (the first against the starting cash)."""
    value = account["value"].to_numpy()
    before = np.concatenate([[init_cash], value[:-1]])
    return pd.Series(value / before - 1, index=pd.DatetimeIndex(account["session"]))


def costs(account: pl.DataFrame, init_cash: float, periods: int) -> dict:
    """What trading cost: fees paid in all, as a share of the starting capital, and the
    yearly drag (mean daily gross return less the net, annualised)."""
    value = account["value"].to_numpy()
    before = np.concatenate([[init_cash], value[:-1]])
    drag = account["fees"].to_numpy() / before
    return {"fees_paid": float(account["fees"].sum()),
            "fees_share_of_capital": float(account["fees"].sum() / init_cash),
            "yearly_drag": float(drag.mean() * periods) if len(drag) else 0.0}
