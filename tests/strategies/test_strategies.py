from datetime import date, datetime, timedelta

import polars as pl
import pytest

from quant.pipeline import PanelParams, build_panel
from strategies import REGISTRY, get_strategy, register
from strategies.base import check_params, combinations
from tests.quant.helpers import UTC, calendar_prices, signals_frame

PRICES = calendar_prices(["AAA", "BBB", "CCC", "DDD"], date(2024, 1, 2), date(2024, 3, 29))


def _panel(signals):
    return build_panel(signals, PRICES, PanelParams(half_life=1, min_history=0))


def _daily_signals():
    rows = []
    for day in range(0, 60):
        for k, ticker in enumerate(["AAA", "BBB", "CCC", "DDD"]):
            rows.append({"ticker": ticker, "sentiment": (k - 1.5) / 2,
                         "published_at": datetime(2024, 1, 2, 12, tzinfo=UTC)
                         + timedelta(days=day)})
    return signals_frame(rows)


def test_registry_has_the_built_ins():
    get_strategy("buy_and_hold")
    assert {"sentiment_long_short", "event_drift", "sentiment_momentum",
            "buy_and_hold"} <= set(REGISTRY)
    with pytest.raises(KeyError, match="unknown strategy"):
        get_strategy("nope")


def test_long_short_is_dollar_neutral_on_rebalance_days_and_holds_between():
    panel = _panel(_daily_signals())
    weights = get_strategy("sentiment_long_short").weights(panel, quantile=0.25, rebalance=5)
    days = weights.filter(pl.col("weight").is_not_null()).group_by("session").agg(
        net=pl.col("weight").sum(), gross=pl.col("weight").abs().sum(),
        top=pl.col("ticker").filter(pl.col("weight") > 0).first(),
        bottom=pl.col("ticker").filter(pl.col("weight") < 0).first())
    idle = days.filter(pl.col("gross") == 0)["session"]  # before the news, and after it fades
    assert ((idle < date(2024, 1, 3)) | (idle > date(2024, 3, 1))).all()
    days = days.filter(pl.col("gross") > 0)
    assert days.height > 5
    assert days["net"].abs().max() < 1e-12 and (days["gross"] - 1).abs().max() < 1e-12
    assert set(days["top"]) == {"DDD"} and set(days["bottom"]) == {"AAA"}
    sessions = weights["session"].unique().sort()
    live = weights.filter(pl.col("weight").is_not_null())["session"].unique().sort()
    assert len(live) < len(sessions) / 4  # every fifth session only


def test_buy_and_hold_buys_once():
    panel = _panel(_daily_signals())
    weights = get_strategy("buy_and_hold").weights(panel)
    orders = weights.filter(pl.col("weight").is_not_null())
    assert orders["session"].n_unique() == 1 and orders["weight"].sum() == pytest.approx(1)


def test_event_drift_holds_and_exits_on_reversal():
    t = datetime(2024, 2, 5, 12, tzinfo=UTC)  # Monday before the open
    signals = signals_frame([
        {"ticker": "AAA", "published_at": t, "sentiment": 0.9, "event_type": "earnings"},
        {"ticker": "BBB", "published_at": t, "sentiment": -0.9, "event_type": "earnings"},
        {"ticker": "BBB", "published_at": t + timedelta(days=2), "sentiment": 0.8,
         "event_type": "analyst"},
    ])
    panel = _panel(signals)
    weights = get_strategy("event_drift").weights(panel, event="earnings", hold=3, slots=2)
    aaa = weights.filter(pl.col("ticker") == "AAA").sort("session")
    bbb = weights.filter(pl.col("ticker") == "BBB").sort("session")
    start = aaa["session"].to_list().index(date(2024, 2, 5))
    assert aaa["weight"].to_list()[start:start + 4] == [0.5, 0.5, 0.5, 0.0]
    # BBB short on Monday, closed by Wednesday's opposite signal (an analyst note).
    assert bbb["weight"].to_list()[start:start + 3] == [-0.5, -0.5, 0.0]


def test_params_and_grids():
    strategy = get_strategy("sentiment_long_short")
    assert len(combinations(strategy)) == 8
    with pytest.raises(ValueError, match="has no parameter 'quantil'"):
        check_params(strategy, {"quantil": 0.1})


def test_a_user_strategy_registers():
    class AllIn:
        name = "all_in_aaa"
        description = "everything in AAA"
        defaults: dict = {}
        grid: dict = {}

        def weights(self, panel):
            return panel.select("session", "ticker",
                                weight=pl.when(pl.col("ticker") == "AAA").then(1.0)
                                .otherwise(0.0))

    register(AllIn())
    assert get_strategy("all_in_aaa").name == "all_in_aaa"
    with pytest.raises(TypeError):
        register(object())
