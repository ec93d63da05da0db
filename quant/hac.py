"""Summaries of a daily series (an IC, a spread): mean, spread, t-statistics, ICIR, with the
Newey-West t-statistic for overlapping multi-session returns."""

from __future__ import annotations

import math

import numpy as np
import polars as pl


def summary(series: pl.Series, horizon: int = 1) -> dict:
    """Mean, std, t-statistic and ICIR of a daily series; `t_stat_hac` is the Newey-West
    t-statistic with `horizon - 1` lags, because the h-session returns of consecutive
    sessions overlap and the plain t-statistic overstates."""
    values = series.drop_nulls().to_numpy()
    n = len(values)
    if n < 2:
        return {"mean": None, "std": None, "t_stat": None, "t_stat_hac": None, "icir": None,
                "n": n}
    mean, std = float(values.mean()), float(values.std(ddof=1))
    return {"mean": mean, "std": std, "t_stat": mean / std * math.sqrt(n) if std else None,
            "t_stat_hac": newey_west_t(values, horizon - 1),
            "icir": mean / std if std else None, "n": n}


def newey_west_t(values: np.ndarray, lags: int) -> float | None:
    """t-statistic of the mean of `values` with Newey-West (Bartlett kernel) standard errors
    over `lags` lags, as statsmodels' OLS on a constant with cov_type="HAC" gives it."""
    n = len(values)
    u = values - values.mean()
    variance = float(u @ u) / n
    for j in range(1, min(lags, n - 1) + 1):
        variance += 2 * (1 - j / (lags + 1)) * float(u[j:] @ u[:-j]) / n
    return float(values.mean() / math.sqrt(variance / n)) if variance > 0 else None
