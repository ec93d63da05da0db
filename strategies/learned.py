"""Trade a learned model's out-of-sample predictions.

Every `rebalance` sessions, long the top `quantile` of names by the model's prediction and short
the bottom, equal weights, dollar neutral. The panel's `prediction` column is null outside the
model's test blocks (`quant.learned.Fitted.panel`), so the book is flat until the first session
the model predicted without having trained on it: nothing in-sample is ever traded.
"""

from __future__ import annotations

import polars as pl

from strategies.base import long_short, long_short_grid, missing_columns, with_defaults


class Learned:
    name = "learned"
    market_neutral = True             # long and short alike: measured against cash
    description = "long top / short bottom quantile of a learned model's out-of-sample prediction"
    signal = "prediction"             # what the run's factor evaluation reads
    requires = {"prediction": "fit a model and backtest its out-of-sample predictions with "
                "`quant model fit --backtest`, or from Python with ws.backtest('learned', "
                "panel=ws.predicted_panel(fitted))"}
    defaults = {"quantile": 0.25, "rebalance": 1, "gross": 1.0}
    grid = {"quantile": [0.1, 0.25, 0.5], "rebalance": [1, 5]}
    bounds = {"quantile": (0.01, 0.5), "rebalance": (1, None), "gross": (0.0, 10.0)}

    @with_defaults
    def weights(self, panel: pl.DataFrame, quantile: float, rebalance: int, gross: float
                ) -> pl.DataFrame:
        return long_short(_checked(panel), "prediction", quantile, rebalance, gross)

    def weights_grid(self, panel: pl.DataFrame, grid: list[dict]) -> pl.DataFrame:
        full = [{**self.defaults, **params} for params in grid]
        return long_short_grid(_checked(panel), [
            ("prediction", p["quantile"], p["rebalance"], p["gross"]) for p in full])


def _checked(panel: pl.DataFrame) -> pl.DataFrame:
    problem = missing_columns(LEARNED, panel)
    if problem:
        raise ValueError(problem)
    return panel


LEARNED = Learned()
