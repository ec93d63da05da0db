"""The statistics agree with empyrical-reloaded, an independent implementation."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from quant.backtests import stats

empyrical = pytest.importorskip("empyrical", reason="pip install .[dev] (empyrical-reloaded)")


def _frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(0.0004, 0.012, (600, 6)),
                         index=pd.bdate_range("2015-01-01", periods=600))
    frame.iloc[:4, 0] = [-0.05, 0.01, -0.02, 0.005]   # a loss on day one
    frame.iloc[:, 1] = frame.iloc[:, 1].abs() * 0.1   # never below the starting capital
    return frame


@pytest.mark.parametrize("seed", [0, 1])
def test_performance_agrees_with_empyrical(seed):
    frame = _frame(seed)
    ours = stats.performance(frame)
    for column in frame.columns:
        r = frame[column]
        theirs = {"sharpe": empyrical.sharpe_ratio(r), "sortino": empyrical.sortino_ratio(r),
                  "cagr": empyrical.annual_return(r), "max_drawdown": empyrical.max_drawdown(r),
                  "volatility": empyrical.annual_volatility(r),
                  "total_return": empyrical.cum_returns_final(r)}
        if theirs["max_drawdown"] < 0:
            theirs["calmar"] = empyrical.calmar_ratio(r)
        for name, value in theirs.items():
            if math.isinf(value):  # no downside at all: undefined, reported as 0 (JSON has no inf)
                assert ours.loc[column, name] == 0.0, name
                continue
            assert ours.loc[column, name] == pytest.approx(value, rel=1e-10, abs=1e-12), name


def test_drawdown_counts_the_starting_capital():
    r = pd.Series([-0.05, 0.01, -0.02, 0.005])
    worst = float(stats.performance(r)["max_drawdown"].iloc[0])
    assert worst == pytest.approx((0.95 * 1.01 * 0.98) - 1)   # -5.97%, not -2.0%
    assert worst == pytest.approx(empyrical.max_drawdown(r))


def test_deflated_sharpe_uses_the_pearson_kurtosis():
    frame = _frame()
    sharpes = stats.performance(frame)["sharpe"].to_numpy()
    best = int(np.argmax(sharpes))
    r = frame[best].to_numpy()
    got = stats.deflated_sharpe(frame[best], sharpes)
    # Bailey and Lopez de Prado (2014), eq. 9-10, written out independently.
    sr = r.mean() / r.std(ddof=1)
    var = np.var(sharpes / math.sqrt(252), ddof=1)
    n, gamma = len(sharpes), 0.5772156649015329
    sr0 = math.sqrt(var) * ((1 - gamma) * sps.norm.ppf(1 - 1 / n)
                            + gamma * sps.norm.ppf(1 - 1 / (n * math.e)))
    skew, kurt = sps.skew(r), sps.kurtosis(r, fisher=False)
    want = sps.norm.cdf((sr - sr0) * math.sqrt(len(r) - 1)
                        / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2))
    assert got["dsr"] == pytest.approx(want, rel=1e-9)
    assert got["sr0_annualised"] == pytest.approx(sr0 * math.sqrt(252), rel=1e-9)
