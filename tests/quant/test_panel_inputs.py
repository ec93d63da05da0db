"""A panel a user hands in is untrusted input: each broken invariant and each degenerate
signal is refused with a message that says what fell short, and no numpy warning escapes."""

import warnings
from datetime import date

import polars as pl
import pytest

from data.errors import DataError
from quant.evaluate import evaluate_signal
from quant.pipeline import PanelParams, build_panel, no_signals
from quant.signals import prepare
from tests.quant.helpers import calendar_prices

PANEL = build_panel(no_signals(), calendar_prices(["A", "B", "C", "D", "E"], date(2021, 1, 1),
                                                  date(2021, 6, 30), seed=1),
                    PanelParams(min_history=0, horizons=(1, 5)))
SIGNAL = (pl.col("adj_close").shift(1) / pl.col("adj_close").shift(2) - 1).over(
    "ticker", order_by="session").alias("momentum")


@pytest.mark.parametrize("broken, message", [
    (PANEL.vstack(PANEL.head(3)), "3 repeated \\(ticker, session\\) rows"),
    (PANEL.with_columns(pl.when(pl.col("ticker") == "A").then(None).otherwise(pl.col("ticker"))
                        .alias("ticker")), "'ticker' has .* missing values"),
    (PANEL.with_columns(pl.col("session").cast(pl.String)), "'session' is String, not Date"),
    (PANEL.with_columns(pl.col("in_universe").cast(pl.Int8)), "'in_universe' is Int8"),
    (PANEL.with_columns(pl.when(pl.col("ticker") == "B").then(float("inf"))
                        .otherwise(pl.col("fwd_ret_1")).alias("fwd_ret_1")),
     "'fwd_ret_1' has infinite values"),
    (PANEL.with_columns(pl.when(pl.col("ticker") == "C").then(-1.0)
                        .otherwise(pl.col("adj_close")).alias("adj_close")),
     "'adj_close' has .* prices at or below zero"),
])
def test_a_panel_that_breaks_an_invariant_is_refused(broken, message):
    with pytest.raises(DataError, match=message):
        prepare(broken, SIGNAL)


@pytest.mark.parametrize("values, message", [
    (pl.lit(0.5), "is constant \\(0.5 on all"),
    (pl.lit(None, pl.Float64), "has no finite value in the universe"),
    (pl.when(pl.col("ticker").is_in(["A", "B"])).then(
        pl.col("adj_close").shift(1).over("ticker", order_by="session")),
     "at most 2 names on any session .* at least 3"),
])
def test_a_degenerate_signal_is_refused_without_numpy_warnings(values, message):
    panel = PANEL.with_columns(values.alias("mine"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match=message):
            evaluate_signal(panel, "mine", (1,))
        with pytest.raises(DataError, match=message):
            prepare(PANEL, values.alias("mine"))


def test_a_good_panel_evaluates_without_warnings():
    panel, name = prepare(PANEL, SIGNAL)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert evaluate_signal(panel, name, (1, 5)).first.rows > 400
