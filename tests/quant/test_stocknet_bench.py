"""The StockNet benchmark's labels, windows and splits, checked by hand on real rows."""

from datetime import date, datetime, timezone

import polars as pl
import pytest

from data.calendar import get_calendar
from quant.text import stocknet
from tests.conftest import dataset
from tests.quant.helpers import signals_frame

CAL = get_calendar("XNYS")


def test_labels_thresholds_and_split_boundaries_on_real_prices():
    prices = pl.read_parquet(dataset("stocknet", "prices.parquet")).rename({"date": "session"})
    aapl = prices.filter((pl.col("ticker") == "AAPL")
                         & pl.col("session").is_between(date(2015, 7, 28), date(2015, 8, 5)))
    labels = stocknet.movement_labels(aapl).sort("session")
    close = dict(zip(aapl["session"], aapl["adj_close"], strict=True))
    days = sorted(close)
    for row in labels.iter_rows(named=True):
        previous = days[days.index(row["session"]) - 1]
        move = close[row["session"]] / close[previous] - 1
        assert row["movement"] == pytest.approx(move)
        expected = 1 if move > 0.0055 else 0 if move <= -0.005 else None
        assert row["label"] == expected
        assert row["split"] == ("train" if row["session"] < date(2015, 8, 1) else "dev")
    assert labels["session"].min() == date(2015, 7, 29)   # the first day has no previous close
    assert set(labels["split"]) == {"train", "dev"}


def test_thresholds_are_strict_above_and_inclusive_below():
    moves = [0.005501, 0.005499, -0.005, -0.004999]
    closes = [100.0]
    for move in moves:
        closes += [closes[-1] * (1 + move), closes[-1]]     # each move, then back
    sessions = CAL.sessions_between(date(2014, 3, 3), date(2014, 4, 30))[:len(closes)]
    prices = pl.DataFrame({"ticker": "X", "session": sessions, "adj_close": closes})
    labels = stocknet.movement_labels(prices).sort("session")["label"].to_list()
    assert labels[0::2] == [1, None, 0, None]


def test_a_post_counts_for_the_five_sessions_after_the_close_it_precedes():
    # Friday 2014-03-07, 15:00 New York (20:00 UTC): before that day's close.
    before_close = datetime(2014, 3, 7, 20, 0, tzinfo=timezone.utc)
    after_close = datetime(2014, 3, 7, 21, 30, tzinfo=timezone.utc)   # 16:30 New York
    signals = signals_frame([{"ticker": "X", "published_at": before_close, "sentiment": 0.8},
                             {"ticker": "X", "published_at": after_close, "sentiment": -0.4}]
                            ).with_columns(p_bullish=pl.lit(0.5), p_bearish=pl.lit(0.1))
    windows = stocknet.window_text(signals, CAL).sort("session")
    first = windows.row(0, named=True)
    assert first["session"] == date(2014, 3, 10) and first["posts"] == 1   # Monday: only the
    assert first["tone"] == pytest.approx(0.8)                            # pre-close post
    second = windows.row(1, named=True)
    assert second["session"] == date(2014, 3, 11) and second["posts"] == 2
    assert second["posts_last"] == 1 and second["tone_last"] == pytest.approx(-0.4)
    assert windows["session"].to_list() == CAL.sessions_between(date(2014, 3, 10),
                                                                date(2014, 3, 17))
    assert windows.filter(pl.col("session") == date(2014, 3, 17))["posts"][0] == 1


def _planted(hour_utc: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Prices for 2014 - Sep 2015 and, for every target session, one post on the session
    before at `hour_utc` whose tone is the sign of the target session's move."""
    from tests.quant.helpers import calendar_prices

    prices = calendar_prices(["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"], date(2014, 1, 1),
                             date(2015, 9, 30), seed=5).with_columns(volume=pl.lit(1e6))
    labels = stocknet.movement_labels(prices)
    sessions = CAL.sessions_between(date(2013, 12, 1), date(2015, 10, 1))
    previous = dict(zip(sessions[1:], sessions[:-1], strict=False))
    rows = [{"ticker": r["ticker"], "sentiment": 1.0 if r["movement"] > 0 else -1.0,
             "published_at": datetime(*previous[r["session"]].timetuple()[:3], hour_utc,
                                      tzinfo=timezone.utc)}
            for r in labels.iter_rows(named=True)]
    return signals_frame(rows), prices


@pytest.mark.parametrize("hour_utc,expect_skill", [(19, True), (22, False)])
def test_posts_before_the_close_predict_and_posts_after_it_cannot(hour_utc, expect_skill):
    # 19:00 UTC is 14:00/15:00 in New York (before the close); 22:00 UTC is after it, when
    # the move the post describes has already happened.
    signals, prices = _planted(hour_utc)
    scores = {(s.model, s.inputs): s for s in stocknet.benchmark(
        stocknet.examples(signals, prices, CAL), "dev")}
    text = scores[("logistic", "text")]
    assert text.examples == scores[("majority class", "-")].examples > 100
    if expect_skill:
        assert text.accuracy > 0.9 and text.mcc > 0.8
    else:
        assert abs(text.mcc) < 0.2
