"""A signal's quantile portfolios, as alphalens builds and reads them: each session's names
cut into quantiles as `pandas.qcut` cuts them, the mean forward return of each quantile with
its standard error, the top-minus-bottom spread, each quantile's daily return (for the
cumulative returns by quantile), how often the top and bottom change, and the signal's rank
autocorrelation (how much of today's ranking was yesterday's).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from quant.hac import summary


def quantile_bins(rows: pl.DataFrame, quantiles: int) -> tuple[int, list[str]]:
    """(bins to use, notes): `quantiles`, or fewer when the median session has fewer names."""
    if rows.is_empty():
        return quantiles, []
    names = int(rows.group_by("session").len()["len"].median())
    if names >= quantiles:
        return quantiles, []
    return max(names, 2), [f"{quantiles} quantiles asked, but the median session has {names} "
                           f"names: {max(names, 2)} bins used"]


def quantile_labels(signal: str, quantiles: int) -> pl.Expr:
    """Each row's quantile (1 = lowest) within its session, as alphalens labels them
    (`pandas.qcut(values, quantiles)` over the session's values): a value at sorted position i
    of n falls in bin ceil(quantiles * i / (n - 1)), ties in the bin of their first position.
    A session with fewer names than quantiles skips labels (4 names of 5 quantiles: 1, 2, 4,
    5), so its lowest name is always bin 1 and its highest bin `quantiles`."""
    position = pl.col(signal).rank("min").over("session").cast(pl.Int64) - 1
    gaps = (pl.len().over("session") - 1).cast(pl.Int64).clip(lower_bound=1)
    return pl.max_horizontal((quantiles * position + gaps - 1) // gaps, pl.lit(1)).cast(pl.Int32)


def quantile_returns(rows: pl.DataFrame, signal: str, ret: str, quantiles: int,
                     horizon: int = 1) -> dict:
    """Mean forward return per signal quantile (1 = lowest, `quantile_labels`) and the
    top-minus-bottom spread (bin `quantiles` minus bin 1)."""
    ranked = rows.with_columns(q=quantile_labels(signal, quantiles))
    ranked = ranked.with_columns(
        side=pl.when(pl.col("q") == quantiles).then(pl.lit("top"))
        .when(pl.col("q") == 1).then(pl.lit("bottom")).otherwise(None))
    # Sessions in order before every sum: the same rows give the same bits, however polars
    # scheduled the groups.
    daily = ranked.group_by("session", "q").agg(pl.col(ret).mean()).sort("q", "session")
    by_q = daily.group_by("q", maintain_order=True).agg(mean=pl.col(ret).mean(),
                                   se=pl.col(ret).std() / pl.len().sqrt()).sort("q")
    sides = (ranked.filter(pl.col("side").is_not_null()).group_by("session", "side")
             .agg(pl.col(ret).mean()).pivot(on="side", index="session", values=ret)
             .sort("session"))  # in time order: the HAC t-statistic depends on it
    spread = (sides["top"] - sides["bottom"]).drop_nulls() if {"top", "bottom"} <= set(
        sides.columns) else pl.Series([], dtype=pl.Float64)
    return {
        "mean_return_by_quantile": dict(zip(by_q["q"].to_list(), by_q["mean"].to_list(),
                                            strict=True)),
        # the standard error of each mean over its sessions, as alphalens' error bars
        "return_by_quantile_se": dict(zip(by_q["q"].to_list(), by_q["se"].to_list(),
                                          strict=True)),
        "top_minus_bottom": summary(spread, horizon),
        "turnover": {**_turnover(ranked),
                     "rank_autocorrelation": rank_autocorrelation(rows, signal)},
    }


def quantile_daily(rows: pl.DataFrame, signal: str, ret: str, quantiles: int
                   ) -> pl.DataFrame:
    """Each session's mean forward return of each quantile: session, quantile, ret (what the
    cumulative returns by quantile compound)."""
    return (rows.with_columns(quantile=quantile_labels(signal, quantiles))
            .group_by("session", "quantile").agg(pl.col(ret).mean().alias("ret"))
            .sort("session", "quantile"))


def rank_autocorrelation(rows: pl.DataFrame, signal: str) -> float | None:
    """alphalens' factor rank autocorrelation, averaged: each session, the correlation across
    names of the signal's rank with the same names' rank the session before."""
    sessions = rows["session"].unique().sort()
    position = pl.DataFrame({"session": sessions, "pos": range(sessions.len())})
    ranked = rows.select("session", "ticker", rank=pl.col(signal).rank().over("session")).join(
        position, on="session")
    before = ranked.select("ticker", pos=pl.col("pos") + 1, before=pl.col("rank"))
    daily = (ranked.join(before, on=["ticker", "pos"]).group_by("session")
             .agg(corr=pl.corr("rank", "before")).drop_nans().drop_nulls().sort("session"))
    return float(daily["corr"].mean()) if daily.height else None


def _turnover(ranked: pl.DataFrame) -> dict:
    """Mean share of the top and bottom portfolios' names that were not in them the session
    before."""
    out = {}
    for side in ("bottom", "top"):
        members = (ranked.filter(pl.col("side") == side).group_by("session")
                   .agg(pl.col("ticker")).sort("session")["ticker"].to_list())
        changes = [len(set(today) - set(yesterday)) / len(today)
                   for yesterday, today in zip(members, members[1:], strict=False) if today]
        out[side] = float(np.mean(changes)) if changes else None
    return out


