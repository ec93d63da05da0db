"""News sentiment blended with price momentum.

Score each name by `alpha` x standardised sentiment + (1 - `alpha`) x standardised momentum
(the return from `lookback` sessions ago to the previous close, known before today's open),
then long the top and short the bottom `quantile`, rebalanced every `rebalance` sessions. Why:
tone and trend are different, partly independent sources of drift; news that agrees with the
trend is the stronger bet.
"""

from __future__ import annotations

import polars as pl

from strategies.base import long_short


def _zscore(column: str) -> pl.Expr:
    live = pl.col("in_universe") & pl.col(column).is_not_null()
    values = pl.col(column)
    return ((values - values.filter(live).mean().over("session"))
            / values.filter(live).std().over("session"))


class SentimentMomentum:
    name = "sentiment_momentum"
    description = "alpha x sentiment + (1 - alpha) x momentum, long-short quantiles"
    defaults = {"lookback": 20, "alpha": 0.5, "quantile": 0.25, "rebalance": 5}
    grid = {"lookback": [10, 20, 60], "alpha": [0.25, 0.5, 0.75]}
    bounds = {"lookback": (1, None), "alpha": (0.0, 1.0), "quantile": (0.01, 0.5),
              "rebalance": (1, None)}

    def weights(self, panel: pl.DataFrame, lookback: int = 20, alpha: float = 0.5,
                quantile: float = 0.25, rebalance: int = 5) -> pl.DataFrame:
        close = pl.col("adj_close").shift(1).over("ticker", order_by="session")
        past = pl.col("adj_close").shift(1 + lookback).over("ticker", order_by="session")
        frame = panel.with_columns(momentum=close / past - 1)
        frame = frame.with_columns(
            blend=alpha * _zscore("sentiment").fill_null(0)
            + (1 - alpha) * _zscore("momentum"))
        return long_short(frame, "blend", quantile, rebalance, 1.0)
