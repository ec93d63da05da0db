"""The benchmark: equal weights in every universe name, bought once and held.

Orders go in on the first session and whenever the universe changes (a name enters or leaves);
otherwise positions drift with prices. Why: any news strategy must beat simply owning the
same names.
"""

from __future__ import annotations

import polars as pl


class BuyAndHold:
    name = "buy_and_hold"
    description = "equal-weight the universe, rebalance only when it changes"
    defaults: dict = {}
    grid: dict = {}

    def weights(self, panel: pl.DataFrame) -> pl.DataFrame:
        names = (panel.filter(pl.col("in_universe")).group_by("session")
                 .agg(pl.col("ticker").sort()).sort("session"))
        changed = names["ticker"] != names["ticker"].shift(1)
        rebalance = names.filter(changed.fill_null(True))["session"].implode()
        n = pl.col("in_universe").sum().over("session")
        return panel.select(
            "session", "ticker",
            weight=pl.when(pl.col("session").is_in(rebalance))
            .then(pl.when(pl.col("in_universe")).then(1.0 / n).otherwise(0.0))
            .otherwise(None))
