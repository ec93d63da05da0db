from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import polars as pl
import pytest

from quant.backtests import stats
from quant.backtests.backtest import Settings, backtest, sweep, walk_forward
from quant.errors import BacktestError
from quant.pipeline import PanelParams, build_panel
from strategies import get_strategy
from tests.quant.helpers import calendar_prices, signals_frame

PRICES = calendar_prices(["AAA", "BBB", "CCC"], date(2022, 1, 3), date(2023, 12, 29), seed=3)
PANEL = build_panel(signals_frame([]), PRICES, PanelParams(min_history=0))
FREE = Settings(fees_bps=0, slippage_bps=0)


class Fixed:
    """Hold `weights` (ticker -> weight) every session; `oracle` trades on tomorrow's news."""

    name = "fixed"
    description = "test strategy"
    defaults = {"ticker": "AAA", "oracle": False, "scale": 1.0}
    grid = {"scale": [0.25, 0.5, 1.0]}

    def weights(self, panel, ticker="AAA", oracle=False, scale=1.0):
        if oracle:  # knows the next open-to-open return: must look impossibly good
            return panel.select("session", "ticker",
                                weight=pl.col("fwd_ret_1").sign().fill_null(0) / 3)
        return panel.select("session", "ticker",
                            weight=pl.when(pl.col("ticker") == ticker).then(scale)
                            .otherwise(0.0))


def test_fully_invested_without_costs_earns_the_open_to_open_returns():
    result = backtest(PANEL, Fixed(), {}, FREE)
    aaa = PANEL.filter(pl.col("ticker") == "AAA").sort("session")
    expected = aaa["adj_open"].pct_change().fill_null(0).to_numpy()
    assert np.allclose(result.returns[0].to_numpy()[1:], expected[1:], atol=1e-9)


def test_costs_reduce_returns_by_what_was_traded():
    free = backtest(PANEL, Fixed(), {}, FREE).returns[0]
    costly = backtest(PANEL, Fixed(), {}, Settings(fees_bps=10, slippage_bps=0)).returns[0]
    # One buy at the start (plus tiny rebalances as the weight drifts back to 100%).
    assert costly.sum() < free.sum()
    assert (free - costly).iloc[:3].sum() == pytest.approx(0.001, rel=0.2)


def test_execution_is_at_the_decision_session_open():
    """Trading on fwd_ret_1 is only profitable if the position is earned from that open."""
    oracle = backtest(PANEL, Fixed(), {"oracle": True}, FREE)
    assert oracle.metrics[0]["sharpe"] > 10


def test_leverage_is_capped():
    result = backtest(PANEL, Fixed(), {"scale": 3.0}, Settings(max_leverage=1.0))
    assert result.metrics[0]["exposure"] == pytest.approx(1.0)


def test_a_sweep_is_one_run_that_matches_separate_runs():
    swept = sweep(PANEL, Fixed(), FREE)
    assert swept.returns.shape[1] == 3
    for i, params in enumerate(swept.params):
        single = backtest(PANEL, Fixed(), params, FREE).returns[0]
        assert np.allclose(swept.returns[i].to_numpy(), single.to_numpy(), atol=1e-12)
    assert 0 <= swept.extra["deflated_sharpe"]["dsr"] <= 1
    assert swept.extra["pbo"]["pbo"] is not None


def test_walk_forward_uses_only_out_of_sample_windows():
    result = walk_forward(PANEL, Fixed(), replace(FREE, walk_forward_train=120,
                                                  walk_forward_test=60))
    windows = result.extra["windows"]
    assert len(windows) >= 4
    for previous, window in zip(windows, windows[1:], strict=False):
        assert window["test_start"] > previous["test_end"]
    for window in windows:
        assert window["train_end"] < window["test_start"]
    # Out of sample from the end of the first train window to the last session: the last
    # window trades what is left rather than being dropped.
    sessions = PANEL["session"].n_unique()
    assert len(result.returns) == sessions - 120 == sum(w["test_sessions"] for w in windows)
    assert windows[-1]["test_end"] == PANEL["session"].max()
    assert all(w["test_sessions"] == 60 for w in windows[:-1])
    assert 0 < windows[-1]["test_sessions"] <= 60
    with pytest.raises(BacktestError, match="walk-forward needs"):
        walk_forward(PANEL, Fixed(), replace(FREE, walk_forward_train=400,
                                             walk_forward_test=200))


def test_unknown_parameters_are_refused():
    with pytest.raises(BacktestError, match="has no parameter"):
        backtest(PANEL, get_strategy("sentiment_long_short"), {"quantil": 0.1})


def test_statistics_on_known_series():
    r = np.array([0.01, -0.02, 0.03, 0.0])
    assert _stat(r, "sharpe") == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252))
    assert _stat(np.array([0.1, -0.5, 0.2]), "max_drawdown") == pytest.approx(-0.5)
    assert _stat(np.full(252, 0.001), "cagr") == pytest.approx(1.001**252 - 1)
    # Pure noise: the in-sample winner is a coin flip out of sample (PBO about 1/2 on average;
    # a single matrix varies a lot, so average a few).
    pbos = [stats.probability_of_backtest_overfitting(
        np.random.default_rng(seed).normal(0, 0.01, (600, 20)))["pbo"] for seed in range(8)]
    assert 0.3 < np.mean(pbos) < 0.7
    noise = np.random.default_rng(0).normal(0, 0.01, (600, 20))
    edge = noise.copy()
    edge[:, 3] += 0.004  # one configuration is truly better
    assert stats.probability_of_backtest_overfitting(edge)["pbo"] < 0.1
    best = pd.Series(noise[:, int(np.argmax(noise.mean(0)))])
    annual = np.sqrt(252)
    few = stats.deflated_sharpe(best, np.array([0.0, 0.01]) * annual)
    many = stats.deflated_sharpe(best, noise.mean(0) / noise.std(0) * annual)
    assert many["dsr"] <= few["dsr"]  # more trials, less impressive


def _stat(returns: np.ndarray, name: str) -> float:
    return float(stats.performance(pd.Series(returns))[name].iloc[0])


def test_a_walk_forward_reuses_a_sweep_already_run():
    settings = replace(FREE, walk_forward_train=120, walk_forward_test=60)
    swept = sweep(PANEL, Fixed(), settings)
    again = walk_forward(PANEL, Fixed(), settings, swept=swept)
    fresh = walk_forward(PANEL, Fixed(), settings)
    assert np.array_equal(again.returns.to_numpy(), fresh.returns.to_numpy())
    assert again.extra["windows"] == fresh.extra["windows"]
