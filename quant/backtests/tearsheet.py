"""The tear sheet of a run's daily returns, as pyfolio and quantstats users read one: risk and
return against the market (alpha, beta, information ratio, tracking error, correlation, up
and down capture), the excess over the benchmark the run is measured against (cash for a
market-neutral book), rolling beta and volatility, costs paid, the shape of the distribution
(skew, kurtosis, VaR and CVaR at 95%, tail ratio, best and worst day and month, the share of
winning months), yearly and monthly returns, and the worst drawdown periods.

Through vectorbt's returns accessor where it has the statistic (alpha, beta, information ratio,
captures, tail ratio, VaR, CVaR; checked against empyrical-reloaded in the tests); by hand only
what no kept library gives as a pyfolio user expects it: drawdown periods from the starting
capital (`quant.backtests.stats.drawdown`), calendar returns by compounding.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from quant.backtests import stats

TOP_DRAWDOWNS = 5


ROLLING = 63  # sessions in the rolling beta and volatility (a quarter)


def tear_sheet(returns: pd.Series, benchmark: pd.Series, market: pd.Series | None = None,
               costs: dict | None = None) -> dict:
    """The tear sheet as plain data: `against_market` (alpha, beta, ... against the market;
    the benchmark where no market series is given), `against_benchmark` (the excess over what
    the run is measured against: the market, or cash for a market-neutral book),
    `distribution`, `yearly`, `monthly`, `drawdowns`, and `costs` where the run kept its book."""
    returns, benchmark = returns.fillna(0.0), benchmark.reindex(returns.index).fillna(0.0)
    market = benchmark if market is None else market.reindex(returns.index).fillna(0.0)
    acc = stats.accessor(returns.to_frame())
    months = calendar_returns(returns, "ME")
    sheet = {
        "against_market": _against(acc, returns, market),
        "against_benchmark": {
            "excess_cagr": _finite(_cagr(returns) - _cagr(benchmark)),
            "tracking_error": _finite((returns - benchmark).std(ddof=1)
                                      * math.sqrt(stats.PERIODS)),
            "information_ratio": _ratio(returns - benchmark)},
        "distribution": {
            "skew": _finite(returns.skew()), "kurtosis": _finite(returns.kurt()),
            "var_95": _one(acc.value_at_risk(cutoff=0.05)),
            "cvar_95": _one(acc.cond_value_at_risk(cutoff=0.05)),
            "tail_ratio": _one(acc.tail_ratio()),
            "best_day": _finite(returns.max()), "worst_day": _finite(returns.min()),
            "best_month": _finite(months.max()), "worst_month": _finite(months.min()),
            "winning_months": _finite((months > 0).mean()) if len(months) else None,
        },
        "yearly": {str(k.year): float(v) for k, v in calendar_returns(returns, "YE").items()},
        "monthly": {k.strftime("%Y-%m"): float(v) for k, v in months.items()},
        "drawdowns": drawdown_periods(returns),
    }
    if costs is not None:
        sheet["costs"] = costs
    return sheet


def _against(acc, returns: pd.Series, market: pd.Series) -> dict:
    """Alpha, beta, information ratio, tracking error, correlation and captures against the
    market, through vectorbt's returns accessor."""
    bench = market.to_frame()
    return {
        "alpha": _one(acc.alpha(benchmark_rets=bench)),
        "beta": _one(acc.beta(benchmark_rets=bench)),
        # vectorbt's is per session; annualised as the Sharpe ratio is
        "information_ratio": _finite((_one(acc.information_ratio(benchmark_rets=bench))
                                      or math.nan) * math.sqrt(stats.PERIODS)),
        "tracking_error": _finite((returns - market).std(ddof=1) * math.sqrt(stats.PERIODS)),
        "correlation": _finite(returns.corr(market)),
        "up_capture": _one(acc.up_capture(benchmark_rets=bench)),
        "down_capture": _one(acc.down_capture(benchmark_rets=bench)),
    }


def _cagr(returns: pd.Series) -> float:
    return float(stats.performance(returns, ("cagr",))["cagr"].iloc[0])


def _ratio(active: pd.Series) -> float | None:
    """The annualised mean over the annualised volatility of a daily series."""
    std = active.std(ddof=1)
    return _finite(active.mean() / std * math.sqrt(stats.PERIODS)) if std > 0 else None


def rolling(returns: pd.Series, market: pd.Series, window: int = ROLLING) -> pd.DataFrame:
    """Rolling beta to the market and annualised volatility over `window` sessions."""
    market = market.reindex(returns.index).fillna(0.0)
    beta = returns.rolling(window).cov(market) / market.rolling(window).var()
    volatility = returns.rolling(window).std() * math.sqrt(stats.PERIODS)
    return pd.DataFrame({"beta": beta.replace([np.inf, -np.inf], np.nan),
                         "volatility": volatility})


def monthly_grid(monthly: dict[str, float]) -> list[dict]:
    """Monthly returns as a year x month table (percent), with each year's compounded total."""
    years: dict[str, dict] = {}
    for key, value in monthly.items():
        year, month = key.split("-")
        years.setdefault(year, {})[int(month)] = value
    names = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return [{"year": year, **{name: (f"{months[m + 1]:.1%}" if m + 1 in months else "")
                              for m, name in enumerate(names)},
             "year total": f"{np.prod([1 + v for v in months.values()]) - 1:.1%}"}
            for year, months in years.items()]


def calendar_returns(returns: pd.Series, rule: str) -> pd.Series:
    """Compounded returns per calendar period ("ME": month, "YE": year)."""
    if returns.empty:
        return returns
    return (1 + returns).resample(rule).prod() - 1


def drawdown_periods(returns: pd.Series, top: int = TOP_DRAWDOWNS) -> list[dict]:
    """The `top` deepest drawdowns: peak, valley, recovery (None while still under water),
    depth and length in sessions, measured from the starting capital."""
    under = stats.drawdown(returns).to_numpy()
    index = returns.index
    periods, start = [], None
    for i, value in enumerate(np.append(under, 0.0)):  # a last 0 closes an open period
        if value < 0 and start is None:
            start = i
        elif value >= 0 and start is not None:
            valley = start + int(np.argmin(under[start:i]))
            recovered = i < len(under)
            periods.append({
                "peak": str(index[start - 1].date()) if start else "start",
                "valley": str(index[valley].date()),
                "recovery": str(index[i].date()) if recovered else None,
                "depth": float(under[valley]),
                "sessions": (i if recovered else len(under)) - start})
            start = None
    return sorted(periods, key=lambda p: p["depth"])[:top]


def _one(value) -> float | None:
    """A one-column vectorbt result as a float (None when it is not finite)."""
    if isinstance(value, pd.Series | pd.DataFrame):
        value = np.asarray(value).ravel()[0]
    return _finite(value)


def _finite(value) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None
