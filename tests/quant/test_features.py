"""Features: every registered feature is point-in-time, and the guard catches one that is not."""

from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from quant import features
from quant.errors import ConfigError
from quant.pipeline import LookAheadError, PanelParams, build_panel
from tests.quant.helpers import calendar_prices, signals_frame

TICKERS = ["AAA", "BBB", "CCC", "DDD"]


def _panel(seed: int = 0) -> pl.DataFrame:
    """Prices with varying volume, and posts (with head probabilities and the dictionary's
    reading) on every session."""
    rng = np.random.default_rng(seed)
    prices = calendar_prices(TICKERS, date(2021, 1, 1), date(2021, 8, 31), seed=seed)
    prices = prices.with_columns(volume=pl.Series(rng.integers(10**5, 10**7, prices.height))
                                 .cast(pl.Float64))
    rows = []
    for ticker in TICKERS:
        for session in prices["session"].unique().to_list():
            for _ in range(int(rng.integers(1, 4))):
                hours = int(rng.integers(1, 40))
                rows.append({"ticker": ticker, "sentiment": float(rng.uniform(-1, 1)),
                             "confidence": float(rng.uniform(0, 1)),
                             "story": f"story {rng.integers(0, 500)}",
                             "published_at": datetime(session.year, session.month, session.day,
                                                      13, tzinfo=timezone.utc)
                             - timedelta(hours=hours)})
    signals = signals_frame(rows)
    bull = rng.uniform(0, 1, signals.height)
    signals = signals.with_columns(p_bullish=pl.Series(bull),
                                   p_bearish=pl.Series((1 - bull) * rng.uniform(0, 1, len(bull))),
                                   lexicon_tone=pl.Series(rng.choice([-1.0, 0.0, 0.5, 1.0],
                                                                     len(bull))),
                                   lexicon_uncertainty=pl.Series(rng.uniform(0, 0.05, len(bull))))
    return build_panel(signals, prices, PanelParams(min_history=0))


PANEL = _panel()


def test_every_feature_is_computed_and_passes_the_guard():
    out = features.with_features(PANEL)
    for name in features.names():
        values = out[name].drop_nulls()
        assert values.len() > PANEL.height // 2, name      # not all missing
        assert values.n_unique() > 1 or name == "has_event", name
    assert out.height == PANEL.height


def _next_row(name: str) -> pl.Expr:
    """An input accessor that injects the next session's row into every read."""
    return pl.col(name).shift(-1)


@pytest.mark.parametrize("name", features.names())
def test_a_future_row_injected_into_any_feature_trips_the_guard(name):
    if name == "has_event":  # constant under score mode's `other`: give it events to read
        events = pl.Series([["earnings"] if i % 3 else ["other"] for i in range(PANEL.height)])
        panel = PANEL.with_columns(event_types=events)
    else:
        panel = PANEL
    features.check_point_in_time(panel, [name])          # as registered: point-in-time
    with pytest.raises(LookAheadError, match=name):
        features.check_point_in_time(panel, [name], accessor=_next_row)


def test_a_feature_reading_the_sessions_own_close_trips_the_guard():
    @features.feature("price")
    def same_day_return(col):
        """Reads today's close, which is not known at today's open."""
        return col("adj_close") / features.past(col, "adj_close") - 1

    try:
        with pytest.raises(LookAheadError, match="same_day_return"):
            features.with_features(PANEL, ["same_day_return"])
    finally:
        del features.FEATURES["same_day_return"]


def test_price_features_match_a_hand_computation():
    out = features.with_features(PANEL, ["return_1", "return_5", "gap", "log_volume"]).filter(
        pl.col("ticker") == "BBB").sort("session")
    close, adj_open = out["adj_close"].to_numpy(), out["adj_open"].to_numpy()
    t = 30
    assert out["return_1"][t] == pytest.approx(close[t - 1] / close[t - 2] - 1)
    assert out["return_5"][t] == pytest.approx(close[t - 1] / close[t - 6] - 1)
    assert out["gap"][t] == pytest.approx(adj_open[t - 1] / close[t - 2] - 1)
    assert out["log_volume"][t] == pytest.approx(np.log1p(out["volume"][t - 1]))


def test_a_feature_named_like_a_panel_column_is_refused():
    @features.feature("price")
    def close(col):
        """Shadows the panel's own close."""
        return features.past(col, "close")

    try:
        with pytest.raises(ConfigError, match="'close' has the name of a panel column"):
            features.with_features(PANEL, ["close"])
    finally:
        del features.FEATURES["close"]


def test_unknown_feature_names_the_known_ones():
    with pytest.raises(ConfigError, match="tone"):
        features.with_features(PANEL, ["no_such_feature"])


def test_float_noise_of_the_order_of_parallel_sums_does_not_change_any_feature():
    rng = np.random.default_rng(1)
    noisy = PANEL.with_columns(pl.col("sentiment") * (1 + pl.Series(
        rng.uniform(-1e-15, 1e-15, PANEL.height))))
    assert features.compute(noisy).equals(features.compute(PANEL))
