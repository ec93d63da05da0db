"""Long the most positive news tone, short the most negative.

Every `rebalance` sessions, rank the universe by the sentiment signal (the decayed,
confidence-weighted, cross-sectionally standardised tone), go long the top `quantile` and short
the bottom `quantile` in equal weights, dollar neutral. Why: tone that the market has not yet
priced drifts into returns over the next sessions (the planted effect, and the literature on
news sentiment).
"""

from __future__ import annotations

import polars as pl

from strategies.base import long_short, long_short_grid, with_defaults


class SentimentLongShort:
    name = "sentiment_long_short"
    market_neutral = True             # long and short alike: measured against cash
    description = "long top / short bottom quantile of news sentiment, rebalanced every N"
    defaults = {"quantile": 0.25, "rebalance": 1, "signal": "sentiment_z", "gross": 1.0}
    grid = {"quantile": [0.25, 0.5], "rebalance": [1, 2, 5, 10]}
    bounds = {"quantile": (0.01, 0.5), "rebalance": (1, None), "gross": (0.0, 10.0)}

    @with_defaults
    def weights(self, panel: pl.DataFrame, quantile: float, rebalance: int, signal: str,
                gross: float) -> pl.DataFrame:
        return long_short(panel, signal, quantile, rebalance, gross)

    def weights_grid(self, panel: pl.DataFrame, grid: list[dict]) -> pl.DataFrame:
        """Every configuration at once: the signal is ranked once, not once per point."""
        full = [{**self.defaults, **params} for params in grid]
        return long_short_grid(panel, [(p["signal"], p["quantile"], p["rebalance"], p["gross"])
                                       for p in full])
