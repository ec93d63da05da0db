"""News sentiment blended with price momentum.

Score each name by `alpha` x standardised sentiment + (1 - `alpha`) x standardised momentum
(the return from `lookback` sessions ago to the previous close, known before today's open),
then long the top and short the bottom `quantile`, rebalanced every `rebalance` sessions. Why:
tone and trend are different, partly independent sources of drift; news that agrees with the
trend is the stronger bet.
"""

from __future__ import annotations

import polars as pl

from strategies.base import long_short_grid, with_defaults


def _zscore(column: str) -> pl.Expr:
    live = pl.col("in_universe") & pl.col(column).is_not_null()
    values = pl.col(column)
    return ((values - values.filter(live).mean().over("session"))
            / values.filter(live).std().over("session"))


class SentimentMomentum:
    name = "sentiment_momentum"
    market_neutral = True             # long and short alike: measured against cash
    description = "alpha x sentiment + (1 - alpha) x momentum, long-short quantiles"
    defaults = {"lookback": 20, "alpha": 0.5, "quantile": 0.25, "rebalance": 5}
    grid = {"lookback": [10, 20, 60], "alpha": [0.25, 0.5, 0.75]}
    bounds = {"lookback": (1, None), "alpha": (0.0, 1.0), "quantile": (0.01, 0.5),
              "rebalance": (1, None)}

    @with_defaults
    def weights(self, panel: pl.DataFrame, lookback: int, alpha: float, quantile: float,
                rebalance: int) -> pl.DataFrame:
        params = {"lookback": lookback, "alpha": alpha, "quantile": quantile,
                  "rebalance": rebalance}
        return self.weights_grid(panel, [params]).rename({"weight_0": "weight"})

    def weights_grid(self, panel: pl.DataFrame, grid: list[dict]) -> pl.DataFrame:
        """Every configuration at once: momentum and its z-score once per lookback, the blend
        once per (lookback, alpha)."""
        full = [{**self.defaults, **params} for params in grid]
        close = pl.col("adj_close").shift(1).over("ticker", order_by="session")
        frame = panel.with_columns(_sentiment_z=_zscore("sentiment").fill_null(0))
        for lookback in dict.fromkeys(p["lookback"] for p in full):
            past = pl.col("adj_close").shift(1 + lookback).over("ticker", order_by="session")
            frame = frame.with_columns(**{f"_momentum_{lookback}": close / past - 1})
            frame = frame.with_columns(**{f"_momentum_z_{lookback}":
                                          _zscore(f"_momentum_{lookback}")})
        blends = {}
        for p in full:
            key = f"_blend_{p['lookback']}_{p['alpha']}"
            blends[key] = (p["alpha"] * pl.col("_sentiment_z")
                           + (1 - p["alpha"]) * pl.col(f"_momentum_z_{p['lookback']}"))
        frame = frame.with_columns(**blends)
        return long_short_grid(frame, [(f"_blend_{p['lookback']}_{p['alpha']}", p["quantile"],
                                        p["rebalance"], 1.0) for p in full])
