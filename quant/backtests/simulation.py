"""Target weights to daily portfolio values, for many configurations in one compiled pass.

What each configuration gets is exactly vectorbt's `Portfolio.from_orders(size_type=
"targetpercent", direction="both", cash_sharing=True, call_seq="auto", price=close)` followed
by `.value()`: the orders go through vectorbt's own `execute_order_nb` in the order its
automatic call sequence gives (sells first, by `approx_order_value_nb` and `insert_argsort_nb`),
and the value is rebuilt from the fills the way `Portfolio.value()` rebuilds it. What is left
out is what a sweep does not need: prices tiled once per configuration, order records, pandas
frames of every intermediate. Configurations run in parallel threads, each holding only one
row of state; the tests hold the result equal to vectorbt's, bit for bit.

The `_nb` functions are numba kernels in vectorbt's style; `simulate` is their wrapper.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from quant.backtests import vbt


def _kernels():
    vbt.load()  # sets numba's cache folder before the kernels compile
    from quant.backtests import simulation_nb  # vectorbt and numba: when a backtest runs

    return simulation_nb.simulate_nb


def simulate(prices: pd.DataFrame, targets: np.ndarray, tradable: np.ndarray, *, fees: float,
             slippage: float, init_cash: float, max_leverage: float
             ) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Daily returns, daily turnover (sessions x configurations) and mean gross exposure of
    every configuration's target weights.

    `targets` is configurations x sessions x names aligned to `prices` (adjusted opens, no
    gaps); NaN means no order. `tradable` (sessions x names) closes a name that cannot trade.
    Costs are fractions of traded value. The first session's return is against the starting
    cash, so its costs count.
    """
    close = np.ascontiguousarray(prices.to_numpy(dtype=np.float64))
    if not np.isfinite(close).all() or (close <= 0).any():
        raise ValueError("prices must be finite and positive everywhere (fill gaps first)")
    value, turnover, exposure = _kernels()(
        close, np.asarray(targets, dtype=np.float64),
        np.ascontiguousarray(tradable, dtype=np.bool_), float(fees), float(slippage),
        float(init_cash), float(max_leverage))
    before = np.concatenate([np.full((value.shape[0], 1), init_cash), value[:, :-1]], axis=1)
    returns = pd.DataFrame((value / before - 1).T, index=prices.index)
    return returns, pd.DataFrame(turnover.T, index=prices.index), exposure


def simulate_with_vectorbt(prices: pd.DataFrame, targets: np.ndarray, tradable: np.ndarray, *,
                           fees: float, slippage: float, init_cash: float, max_leverage: float
                           ) -> pd.DataFrame:
    """The reference `simulate` answers to: daily returns from vectorbt's own
    `Portfolio.from_orders` on prices tiled once per configuration (slow and memory-hungry;
    kept as the oracle the tests and the benchmark check against)."""
    portfolio = vectorbt_portfolio(prices, targets, tradable, fees=fees, slippage=slippage,
                                   init_cash=init_cash, max_leverage=max_leverage)
    value = portfolio.value()
    value = value.to_frame() if isinstance(value, pd.Series) else value  # one configuration
    returns = value.div(value.shift(1).fillna(init_cash)) - 1
    returns.columns = range(targets.shape[0])
    return returns


def vectorbt_portfolio(prices: pd.DataFrame, targets: np.ndarray, tradable: np.ndarray, *,
                       fees: float, slippage: float, init_cash: float, max_leverage: float):
    """vectorbt's `Portfolio` of every configuration (grouped by `config`; columns are
    (config, name)): the orders `simulate` places, as vectorbt places them, with its records
    of fills and holdings."""
    vectorbt = vbt.load()
    configs, names = targets.shape[0], prices.shape[1]
    closed = np.where(tradable[None] | np.isnan(targets), targets, 0.0)
    gross = np.zeros((configs, len(prices), 1))
    for k in range(names):  # name by name, the order a session's gross is summed in everywhere
        gross[..., 0] += np.nan_to_num(np.abs(closed[..., k]))
    scale = np.where(gross > 0, np.minimum(max_leverage / np.where(gross > 0, gross, 1.0), 1.0),
                     1.0)
    columns = pd.MultiIndex.from_product([range(configs), list(prices.columns)],
                                         names=["config", "ticker"])
    size = pd.DataFrame(np.hstack(list(closed * scale)), index=prices.index, columns=columns)
    close = pd.DataFrame(np.tile(prices.to_numpy(), configs), index=prices.index,
                         columns=columns)
    return vectorbt.Portfolio.from_orders(
        close=close, size=size, size_type="targetpercent", direction="both", fees=fees,
        slippage=slippage, init_cash=init_cash, cash_sharing=True, group_by="config",
        call_seq="auto", freq="1D")


def chunk_size(sessions: int, names: int, budget_share: float = 0.125) -> int:
    """How many configurations' targets to hold at once: a share of the memory available now
    (each configuration's targets are built twice over, as a frame and as an array)."""
    per_config = sessions * names * 8 * 3
    return max(1, int(available_memory() * budget_share // per_config))


def available_memory() -> int:
    """Bytes of memory the system can give without swapping (Linux's MemAvailable; the free
    pages elsewhere)."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
