"""The tear sheet agrees with empyrical-reloaded, an independent implementation."""

import math

import numpy as np
import pandas as pd
import pytest

from quant.backtests.tearsheet import calendar_returns, drawdown_periods, monthly_grid, tear_sheet

ep = pytest.importorskip("empyrical")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_tear_sheet_agrees_with_empyrical(seed):
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2019-01-01", periods=700)
    bench = pd.Series(rng.normal(0.0004, 0.011, 700), index=index)
    returns = 0.4 * bench + pd.Series(rng.standard_t(4, 700) * 0.004, index=index)
    sheet = tear_sheet(returns, bench)
    vs, dist = sheet["against_market"], sheet["distribution"]
    assert sheet["against_benchmark"]["information_ratio"] == pytest.approx(
        ep.excess_sharpe(returns, bench) * math.sqrt(252), rel=1e-9)
    assert vs["alpha"] == pytest.approx(ep.alpha(returns, bench), rel=1e-9)
    assert vs["beta"] == pytest.approx(ep.beta(returns, bench), rel=1e-9)
    assert vs["up_capture"] == pytest.approx(ep.up_capture(returns, bench), rel=1e-9)
    assert vs["down_capture"] == pytest.approx(ep.down_capture(returns, bench), rel=1e-9)
    assert vs["information_ratio"] == pytest.approx(
        ep.excess_sharpe(returns, bench) * math.sqrt(252), rel=1e-9)
    assert vs["tracking_error"] == pytest.approx(
        (returns - bench).std(ddof=1) * math.sqrt(252), rel=1e-12)
    assert dist["tail_ratio"] == pytest.approx(ep.tail_ratio(returns), rel=1e-9)
    assert dist["var_95"] == pytest.approx(ep.value_at_risk(returns), rel=1e-9)
    assert dist["cvar_95"] == pytest.approx(ep.conditional_value_at_risk(returns), rel=1e-9)
    assert sheet["drawdowns"][0]["depth"] == pytest.approx(ep.max_drawdown(returns), rel=1e-9)
    yearly = ep.aggregate_returns(returns, "yearly")
    assert list(sheet["yearly"].values()) == pytest.approx(list(yearly), rel=1e-9)
    assert len(sheet["monthly"]) == len(ep.aggregate_returns(returns, "monthly"))


def test_drawdown_periods_from_the_starting_capital():
    index = pd.bdate_range("2024-01-01", periods=8)
    returns = pd.Series([-0.1, 0.05, 0.07, 0.01, -0.2, 0.1, 0.0, 0.0], index=index)
    periods = drawdown_periods(returns)
    deepest, first = periods
    assert deepest["depth"] == pytest.approx(-0.2) and deepest["recovery"] is None
    assert deepest["sessions"] == 4 and deepest["peak"] == "2024-01-04"
    assert first["peak"] == "start" and first["valley"] == "2024-01-01"   # a loss on day one
    assert first["recovery"] == "2024-01-03" and first["sessions"] == 2


def test_monthly_grid_compounds_each_year():
    index = pd.bdate_range("2023-11-01", "2024-02-28")
    monthly = {k.strftime("%Y-%m"): float(v) for k, v in
               calendar_returns(pd.Series(0.001, index=index), "ME").items()}
    grid = monthly_grid(monthly)
    assert [row["year"] for row in grid] == ["2023", "2024"] and grid[0]["Jan"] == ""
    assert grid[1]["year total"] == f"{(1.001 ** len(index[index.year == 2024])) - 1:.1%}"


def test_against_cash_the_market_still_gives_beta():
    rng = np.random.default_rng(5)
    index = pd.bdate_range("2019-01-01", periods=500)
    market = pd.Series(rng.normal(0.0004, 0.011, 500), index=index)
    returns = 0.2 * market + pd.Series(rng.normal(0.0003, 0.005, 500), index=index)
    sheet = tear_sheet(returns, market * 0.0, market)
    assert sheet["against_market"]["beta"] == pytest.approx(ep.beta(returns, market), rel=1e-9)
    assert sheet["against_benchmark"]["excess_cagr"] == pytest.approx(
        ep.annual_return(returns), rel=1e-9)   # against cash, the excess is the return itself
    assert sheet["against_benchmark"]["information_ratio"] == pytest.approx(
        ep.sharpe_ratio(returns), rel=1e-9)
