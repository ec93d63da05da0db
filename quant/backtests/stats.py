"""Performance statistics of daily returns, computed once on a whole frame (sessions x
configurations) through vectorbt's returns accessor, and the one statistic no kept library
has: the probability of backtest overfitting by combinatorially symmetric cross-validation
(Bailey, Borwein, Lopez de Prado and Zhu, 2015).

Conventions (checked against empyrical-reloaded in the tests): 252 sessions a year; Sharpe and
volatility with ddof=1; Sortino's downside deviation is the root mean square of the negative
returns; CAGR compounds over the sessions present. The maximum drawdown is measured from the
starting capital (equity starts at 1 before the first return), as empyrical does; vectorbt's own
drawdown starts at the first session's equity and would miss a loss on day one. The deflated
Sharpe (Bailey and Lopez de Prado, 2014) is vectorbt's, which uses the non-excess (Pearson)
kurtosis in (kurtosis - 1) / 4, as the paper's formula needs.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from quant.backtests import vbt
from quant.settings import METRICS

PERIODS = 252


def accessor(returns: pd.DataFrame):
    """vectorbt's returns accessor with our annualisation (sessions, not calendar days)."""
    vbt.load()  # registers the .vbt accessor
    return returns.vbt.returns(freq="1D", year_freq=f"{PERIODS}D")


def _frame(returns: pd.DataFrame | pd.Series) -> pd.DataFrame:
    frame = returns.to_frame() if isinstance(returns, pd.Series) else returns
    if not isinstance(frame.index, pd.DatetimeIndex):
        frame = frame.set_axis(pd.date_range("2000-01-01", periods=len(frame), freq="D"))
    return frame.astype(float)


def drawdown(returns: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """Equity over its running peak minus one, the starting capital counting as a peak."""
    equity = (1 + returns.fillna(0.0)).cumprod()
    return equity / equity.cummax().clip(lower=1.0) - 1


def _hit_rate(active: pd.DataFrame) -> pd.Series:
    """The share of positive returns among the sessions with a return (not flat)."""
    return (active > 0).sum() / active.count().replace(0, np.nan)


_FORMULAS = {
    "sharpe": lambda frame, acc: acc.sharpe_ratio(),
    "sortino": lambda frame, acc: acc.sortino_ratio(),
    "cagr": lambda frame, acc: acc.annualized(),
    "max_drawdown": lambda frame, acc: drawdown(frame).min().clip(upper=0.0),
    "hit_rate": lambda frame, acc: _hit_rate(frame.where(frame != 0)),
    "total_return": lambda frame, acc: acc.total(),
    "volatility": lambda frame, acc: acc.annualized_volatility(),
    "days": lambda frame, acc: frame.count(),
}


def performance(returns: pd.DataFrame | pd.Series,
                metrics: tuple[str, ...] = METRICS) -> pd.DataFrame:
    """One row per configuration (column) of daily returns: the `metrics` (all of `METRICS`
    unless fewer are asked for; each is computed only when asked)."""
    frame = _frame(returns)
    if frame.empty:
        return pd.DataFrame(0.0, index=frame.columns, columns=list(metrics))
    acc = accessor(frame)
    needed = set(metrics) | ({"cagr", "max_drawdown"} if "calmar" in metrics else set())
    out = pd.DataFrame({name: formula(frame, acc) for name, formula in _FORMULAS.items()
                        if name in needed}, index=frame.columns)
    if "calmar" in needed:
        out["calmar"] = (out["cagr"] / out["max_drawdown"].abs()).where(out["max_drawdown"] < 0)
    return out[list(metrics)].replace([np.inf, -np.inf], np.nan).fillna(0.0)


def rolling_sharpe(returns: pd.Series, window: int) -> pd.Series:
    return accessor(_frame(returns)).rolling_sharpe_ratio(window).iloc[:, 0]


def deflated_sharpe(returns: pd.Series, trial_sharpes: np.ndarray) -> dict:
    """Probability that the true Sharpe of `returns` exceeds what the best of the trials
    (their annualised Sharpes) would show by luck alone."""
    from vectorbt.returns.metrics import approx_exp_max_sharpe

    trials = len(trial_sharpes)
    variance = float(np.var(trial_sharpes, ddof=1)) if trials > 1 else 0.0
    acc = accessor(_frame(returns))
    dsr = acc.deflated_sharpe_ratio(var_sharpe=variance, nb_trials=max(trials, 1))
    sr0 = approx_exp_max_sharpe(0.0, variance / PERIODS, trials) if trials > 1 else 0.0
    return {"dsr": float(np.nan_to_num(np.asarray(dsr)[0])),
            "sr0_annualised": float(sr0) * math.sqrt(PERIODS), "trials": trials,
            "sharpe_annualised": float(np.nan_to_num(np.asarray(acc.sharpe_ratio())[0]))}


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
        rank = pd.Series(scores[1]).rank().to_numpy()[best] / (n + 1)  # average ranks
        logits.append(math.log(rank / (1 - rank)))
    logits_arr = np.array(logits)
    return {"pbo": float((logits_arr <= 0).mean()), "splits": len(logits),
            "logit_mean": float(logits_arr.mean())}
