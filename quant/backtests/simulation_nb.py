"""The numba kernels of `quant.backtests.simulation` (vectorbt's style: `_nb` functions beside
their Python wrapper). Import through `quant.backtests.simulation`, which sets numba's cache
folder first."""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from vectorbt.portfolio import enums
from vectorbt.portfolio.nb import approx_order_value_nb, execute_order_nb, order_nb
from vectorbt.utils.array_ import insert_argsort_nb
from vectorbt.utils.math_ import add_nb, is_close_nb

FILLED = enums.OrderStatus.Filled
BUY = enums.OrderSide.Buy
TARGET_PERCENT = enums.SizeType.TargetPercent
BOTH = enums.Direction.Both
MIN_SIZE = 1e-8  # vectorbt's default smallest order, in shares
state_of = enums.ProcessOrderState


@njit(cache=True)
def any_order_nb(raw):
    for k in range(raw.shape[0]):
        if not np.isnan(raw[k]):
            return True
    return False


@njit(cache=True)
def targets_row_nb(raw, tradable, max_leverage, out):
    """One session's targets: NaN holds, an untradable name is closed, gross exposure
    capped at `max_leverage` (as `quant.backtests.backtest` has always prepared them)."""
    gross = 0.0
    for k in range(raw.shape[0]):
        w = raw[k]
        if not np.isnan(w) and not tradable[k]:
            w = 0.0
        out[k] = w
        if not np.isnan(w):
            gross += abs(w)
    scale = min(max_leverage / gross, 1.0) if gross > 0 else 1.0
    for k in range(raw.shape[0]):
        out[k] = out[k] * scale


@njit(cache=True)
def settle_nb(values):
    """Round each value within vectorbt's tolerance of 0 to 0, as its order execution and
    accounting do on every step."""
    for k in range(values.shape[0]):
        if is_close_nb(values[k], 0.0):
            values[k] = 0.0


@njit(cache=True)
def orders_row_nb(close, target, fees, slippage, cash, free_cash, position, debt,
                  order_value, call_seq, cash_flow, asset_flow):
    """One session of one configuration, as vectorbt's `simulate_from_orders_nb` runs it
    with cash sharing and an automatic call sequence; fills go to the flows."""
    n = close.shape[0]
    value = cash
    for k in range(n):
        if position[k] != 0:
            value += position[k] * close[k]
    for k in range(n):
        order_value[k] = approx_order_value_nb(target[k], TARGET_PERCENT, BOTH, cash,
                                               position[k], free_cash, close[k], value)
        call_seq[k] = k
    insert_argsort_nb(order_value, call_seq)
    for j in range(n):
        k = call_seq[j]
        order = order_nb(size=target[k], price=close[k], size_type=TARGET_PERCENT,
                         direction=BOTH, fees=fees, slippage=slippage, min_size=MIN_SIZE)
        state = state_of(cash, position[k], debt[k], free_cash, close[k], value, 0, 0)
        done, result = execute_order_nb(state, order)
        cash, free_cash = done.cash, done.free_cash
        position[k], debt[k] = done.position, done.debt
        if result.status == FILLED:
            signed = result.size if result.side == BUY else -result.size
            cash_flow[k] = add_nb(0.0, -signed * result.price - result.fees)
            asset_flow[k] = add_nb(0.0, signed)
    return cash, free_cash

@njit(cache=True)
def config_nb(close, raw, tradable, fees, slippage, init_cash, max_leverage, value_out,
              turnover_out):
    """Every session of one configuration: its portfolio value, and the share of the book
    its targets traded (turnover; NaN on the first session). Returns the mean gross
    exposure of the held targets."""
    rows, n = close.shape
    position, debt, assets = np.zeros(n), np.zeros(n), np.zeros(n)
    held, target = np.zeros(n), np.empty(n)
    order_value, call_seq = np.empty(n), np.empty(n, dtype=np.int64)
    cash_flow, asset_flow = np.zeros(n), np.zeros(n)
    cash = free_cash = book_cash = init_cash
    exposure, gross, settled = 0.0, 0.0, True
    for i in range(rows):
        traded = 0.0
        if any_order_nb(raw[i]):
            targets_row_nb(raw[i], tradable[i], max_leverage, target)
            cash_flow[:] = 0.0
            asset_flow[:] = 0.0
            cash, free_cash = orders_row_nb(close[i], target, fees, slippage, cash,
                                            free_cash, position, debt, order_value,
                                            call_seq, cash_flow, asset_flow)
            # Portfolio.value(): cash from the flows summed name by name.
            flow, gross = 0.0, 0.0
            for k in range(n):
                flow += cash_flow[k]
                assets[k] = add_nb(assets[k], asset_flow[k])
                if not np.isnan(target[k]):
                    traded += abs(target[k] - held[k])
                    held[k] = target[k]
                gross += abs(held[k])
            book_cash = add_nb(book_cash, flow)
            settled = False
        elif not settled:
            # A session without orders still passes every name through vectorbt's order
            # execution and accounting, which round balances within tolerance of 0 to 0.
            # Rounding twice changes nothing: once after each session with orders is enough.
            cash = 0.0 if is_close_nb(cash, 0.0) else cash
            free_cash = 0.0 if is_close_nb(free_cash, 0.0) else free_cash
            book_cash = add_nb(book_cash, 0.0)
            settle_nb(position)
            settle_nb(debt)
            settle_nb(assets)
            settled = True
        asset_value = 0.0
        for k in range(n):
            if assets[k] != 0:
                asset_value += close[i, k] * assets[k]
        value_out[i] = book_cash + asset_value
        turnover_out[i] = traded / 2 if i > 0 else np.nan
        exposure += gross
    return exposure / rows


@njit(cache=True, parallel=True)
def simulate_nb(close, raw, tradable, fees, slippage, init_cash, max_leverage):
    """All configurations of `raw` (configurations x sessions x names), in parallel."""
    configs, rows = raw.shape[0], raw.shape[1]
    value = np.empty((configs, rows))
    turnover = np.empty((configs, rows))
    exposure = np.empty(configs)
    for c in prange(configs):
        exposure[c] = config_nb(close, raw[c], tradable, fees, slippage, init_cash,
                                max_leverage, value[c], turnover[c])
    return value, turnover, exposure
