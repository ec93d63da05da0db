"""Performance statistics on daily returns, and the honest ones for sweeps: the deflated Sharpe
ratio (Bailey and Lopez de Prado, 2014) and the probability of backtest overfitting by
combinatorially symmetric cross-validation (Bailey, Borwein, Lopez de Prado and Zhu, 2015).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import stats as sps

PERIODS = 252
EULER = 0.5772156649015329


def sharpe(returns: np.ndarray, periods: int = PERIODS) -> float:
    r = returns[~np.isnan(returns)]
    if len(r) < 2 or r.std(ddof=1) == 0:
        return 0.0
    return float(r.mean() / r.std(ddof=1) * math.sqrt(periods))


def sortino(returns: np.ndarray, periods: int = PERIODS) -> float:
    r = returns[~np.isnan(returns)]
    downside = np.sqrt(np.mean(np.minimum(r, 0) ** 2)) if len(r) else 0.0
    return float(r.mean() / downside * math.sqrt(periods)) if downside > 0 else 0.0


def equity(returns: np.ndarray) -> np.ndarray:
    return np.cumprod(1 + np.nan_to_num(returns))


def max_drawdown(returns: np.ndarray) -> float:
    curve = equity(returns)
    peaks = np.maximum.accumulate(curve)
    return float((curve / peaks - 1).min()) if len(curve) else 0.0


def cagr(returns: np.ndarray, periods: int = PERIODS) -> float:
    n = int((~np.isnan(returns)).sum())
    if n == 0:
        return 0.0
    final = equity(returns)[-1]
    return float(final ** (periods / n) - 1) if final > 0 else -1.0


def summary(returns: np.ndarray, turnover: float | None = None,
            exposure: float | None = None) -> dict:
    """Sharpe, Sortino, CAGR, max drawdown, Calmar, hit rate, total return, turnover,
    exposure."""
    r = np.asarray(returns, dtype=float)
    dd = max_drawdown(r)
    growth = cagr(r)
    active = r[~np.isnan(r) & (r != 0)]
    return {
        "sharpe": sharpe(r), "sortino": sortino(r), "cagr": growth, "max_drawdown": dd,
        "calmar": growth / abs(dd) if dd < 0 else 0.0,
        "hit_rate": float((active > 0).mean()) if len(active) else 0.0,
        "total_return": float(equity(r)[-1] - 1) if len(r) else 0.0,
        "volatility": float(np.nanstd(r, ddof=1) * math.sqrt(PERIODS)) if len(r) > 1 else 0.0,
        "turnover": turnover, "exposure": exposure, "days": int((~np.isnan(r)).sum()),
    }


def deflated_sharpe(returns: np.ndarray, trial_sharpes: np.ndarray) -> dict:
    """Probability that the true Sharpe of `returns` exceeds what the best of N trials would
    show by luck alone. Sharpes here are per period (not annualised)."""
    r = returns[~np.isnan(returns)]
    n_trials = len(trial_sharpes)
    if len(r) < 3 or r.std(ddof=1) == 0:
        return {"dsr": 0.0, "sr0": None, "trials": n_trials}
    sr = r.mean() / r.std(ddof=1)
    var_trials = float(np.var(trial_sharpes, ddof=1)) if n_trials > 1 else 0.0
    if n_trials > 1:
        sr0 = math.sqrt(var_trials) * ((1 - EULER) * sps.norm.ppf(1 - 1 / n_trials)
                                      + EULER * sps.norm.ppf(1 - 1 / (n_trials * math.e)))
    else:
        sr0 = 0.0
    skew, kurt = float(sps.skew(r)), float(sps.kurtosis(r, fisher=False))
    denominator = math.sqrt(max(1 - skew * sr + (kurt - 1) / 4 * sr**2, 1e-12))
    dsr = float(sps.norm.cdf((sr - sr0) * math.sqrt(len(r) - 1) / denominator))
    return {"dsr": dsr, "sr0_annualised": sr0 * math.sqrt(PERIODS), "trials": n_trials,
            "sharpe_annualised": sr * math.sqrt(PERIODS)}


def probability_of_backtest_overfitting(returns: np.ndarray, splits: int = 10) -> dict:
    """CSCV: split the (periods x configurations) returns into `splits` blocks; for every half
    of the blocks as in-sample, take the best configuration and find its relative rank out of
    sample. PBO is the share of splits where it falls in the bottom half."""
    t, n = returns.shape
    if n < 2 or t < splits * 5:
        return {"pbo": None, "splits": 0, "reason": "needs at least 2 configurations and "
                f"{splits * 5} periods"}
    returns = np.nan_to_num(returns)
    blocks = np.array_split(np.arange(t), splits)
    means = np.stack([returns[b].mean(0) for b in blocks])
    sq = np.stack([(returns[b] ** 2).mean(0) for b in blocks])
    sizes = np.array([len(b) for b in blocks])[:, None]
    logits = []
    for chosen in itertools.combinations(range(splits), splits // 2):
        mask = np.zeros(splits, dtype=bool)
        mask[list(chosen)] = True
        scores = []
        for part in (mask, ~mask):
            w = sizes[part]
            mean = (means[part] * w).sum(0) / w.sum()
            var = (sq[part] * w).sum(0) / w.sum() - mean**2
            scores.append(mean / np.sqrt(np.maximum(var, 1e-18)))
        best = int(np.argmax(scores[0]))
        rank = sps.rankdata(scores[1])[best] / (n + 1)
        logits.append(math.log(rank / (1 - rank)))
    logits_arr = np.array(logits)
    return {"pbo": float((logits_arr <= 0).mean()), "splits": len(logits),
            "logit_mean": float(logits_arr.mean())}
