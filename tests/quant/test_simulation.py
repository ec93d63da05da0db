"""The compiled simulation against vectorbt itself, and the grid path against the
per-configuration path on every built-in strategy."""

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import polars as pl
import pytest

from quant.backtests.backtest import Settings, Simulation, backtest, sweep
from quant.backtests.simulation import chunk_size, simulate, simulate_with_vectorbt
from quant.errors import BacktestError
from quant.pipeline import PanelParams, build_panel
from strategies import get_strategy
from strategies.base import combinations
from tests.quant.helpers import UTC, calendar_prices, signals_frame

TICKERS = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]
PRICES = calendar_prices(TICKERS, date(2022, 1, 3), date(2022, 12, 30), seed=5)


def _signals(seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [{"ticker": TICKERS[int(rng.integers(len(TICKERS)))],
             "sentiment": float(rng.uniform(-1, 1)), "confidence": float(rng.uniform(0.2, 1)),
             "event_type": ["earnings", "guidance", "other"][int(rng.integers(3))],
             "published_at": datetime(2022, 1, 3, 13, tzinfo=UTC)
             + timedelta(hours=int(rng.integers(0, 360 * 24)))} for _ in range(900)]
    return signals_frame(rows)


# Gaps in one name's prices make it untradable on some sessions.
PANEL = build_panel(_signals(), PRICES.filter(
    ~((pl.col("ticker") == "EEE") & pl.col("session").dt.month().is_in([3, 7]))),
    PanelParams(min_history=0, half_life=2))
SETTINGS = Settings(fees_bps=7, slippage_bps=3, max_leverage=1.5)


def _costs(settings: Settings) -> dict:
    return {"fees": settings.fees_bps / 1e4, "slippage": settings.slippage_bps / 1e4,
            "init_cash": settings.init_cash, "max_leverage": settings.max_leverage}


def test_random_targets_match_vectorbt_bit_for_bit():
    rng = np.random.default_rng(1)
    rows, names, configs = 260, 7, 5
    prices = pd.DataFrame(50 * np.exp(np.cumsum(rng.normal(0, 0.02, (rows, names)), 0)),
                          index=pd.date_range("2021-01-01", periods=rows))
    targets = rng.normal(0, 0.4, (configs, rows, names))
    targets[rng.random(targets.shape) < 0.6] = np.nan     # holds between orders
    targets[1][rng.random((rows, names)) < 0.9] = np.nan  # a sparse trader
    targets[2, :, 0] = 3.0                                # leverage capped every session
    targets[3, 100:] = 0.0                                # goes flat
    tradable = rng.random((rows, names)) > 0.05
    for settings in (SETTINGS, Settings(fees_bps=0, slippage_bps=0, max_leverage=1.0)):
        returns, turnover, exposure = simulate(prices, targets, tradable, **_costs(settings))
        expected = simulate_with_vectorbt(prices, targets, tradable, **_costs(settings))
        assert np.array_equal(returns.to_numpy(), expected.to_numpy())
        assert np.isnan(turnover.to_numpy()[0]).all()
    # Exposure: the mean gross of the held (forward-filled, capped) targets.
    closed = np.where(tradable | np.isnan(targets), targets, 0.0)
    gross = np.nansum(np.abs(closed), axis=2, keepdims=True)
    capped = closed * np.minimum(settings.max_leverage / np.where(gross > 0, gross, 1), 1)
    held = [pd.DataFrame(c).ffill().fillna(0).abs().sum(axis=1).mean() for c in capped]
    np.testing.assert_allclose(exposure, held, rtol=1e-12)


@pytest.mark.parametrize("name", ["sentiment_long_short", "sentiment_momentum", "event_drift",
                                  "buy_and_hold"])
def test_every_built_in_strategy_grid_path_equals_per_configuration_and_vectorbt(name):
    strategy = get_strategy(name)
    grid = combinations(strategy)
    simulation = Simulation(PANEL, strategy, SETTINGS)
    grid_targets = simulation.targets(grid)
    one_by_one = simulation.targets(grid, use_grid=False)
    np.testing.assert_array_equal(grid_targets, one_by_one)  # NaN where NaN
    assert not np.isnan(grid_targets).all()
    returns, _, _ = simulation(grid)
    expected = simulate_with_vectorbt(simulation.prices, one_by_one, simulation.tradable,
                                      **_costs(SETTINGS))
    assert np.array_equal(returns.to_numpy(), expected.to_numpy())


def test_chunks_of_any_size_and_any_row_order_give_the_same_sweep():
    strategy = get_strategy("sentiment_long_short")
    whole = sweep(PANEL, strategy, SETTINGS)
    pieces = sweep(PANEL, strategy, SETTINGS, chunk=3)
    assert np.array_equal(whole.returns.to_numpy(), pieces.returns.to_numpy())
    assert whole.metrics == pieces.metrics
    shuffled = sweep(PANEL, Shuffled(strategy), SETTINGS)
    assert np.array_equal(whole.returns.to_numpy(), shuffled.returns.to_numpy())
    single = backtest(PANEL, strategy, whole.params[5], SETTINGS)
    assert np.array_equal(single.returns[0].to_numpy(), whole.returns[5].to_numpy())


class Shuffled:
    """A strategy whose weight rows come in any order, some of them missing."""

    def __init__(self, strategy):
        self.inner = strategy
        self.name, self.description = strategy.name, strategy.description
        self.defaults, self.grid = strategy.defaults, strategy.grid

    def weights_grid(self, panel, grid):
        frame = self.inner.weights_grid(panel, grid)
        return frame.sample(fraction=1.0, shuffle=True, seed=1).filter(
            pl.col("session") != pl.col("session").min())  # the first session: hold (NaN)


def test_turnover_and_exposure_follow_the_held_weights():
    strategy = get_strategy("sentiment_long_short")
    result = backtest(PANEL, strategy, {"rebalance": 5}, SETTINGS)
    simulation = Simulation(PANEL, strategy, SETTINGS)
    held = pd.DataFrame(simulation.targets([strategy.defaults | {"rebalance": 5}])[0])
    held = held.where(pd.DataFrame(simulation.tradable) | held.isna(), 0.0).ffill().fillna(0)
    turnover = held.diff().abs().sum(axis=1, min_count=1) / 2
    np.testing.assert_allclose(result.turnover[0].to_numpy(), turnover.to_numpy(), atol=1e-12)
    assert result.metrics[0]["exposure"] == pytest.approx(held.abs().sum(axis=1).mean())
    assert 0 < result.turnover[0].iloc[1:].gt(0).sum() <= len(held) / 5  # rebalance days only


def test_a_strategy_that_gives_two_weights_for_one_cell_is_refused():
    class Doubled:
        name, description, defaults, grid = "doubled", "test", {}, {}

        def weights(self, panel):
            once = panel.select("session", "ticker", weight=pl.lit(0.1))
            return pl.concat([once, once])

    with pytest.raises(BacktestError, match="two weights for the same ticker"):
        backtest(PANEL, Doubled(), {}, SETTINGS)


def test_chunks_are_sized_from_the_memory_available():
    small, large = chunk_size(2520, 50), chunk_size(252, 5)
    assert 1 <= small < large
