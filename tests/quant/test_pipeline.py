from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from data.calendar import get_calendar
from quant.pipeline import LookAheadError, PanelParams, build_panel, check_no_lookahead
from tests.quant.helpers import UTC, calendar_prices, signals_frame

CAL = get_calendar("XNYS")
PRICES = calendar_prices(["AAA", "BBB", "CCC"], date(2023, 10, 2), date(2024, 4, 30))
NO_CARRY = PanelParams(half_life=0, min_history=0)


def _row(panel, ticker, session):
    return panel.filter((pl.col("ticker") == ticker) & (pl.col("session") == session)).row(
        0, named=True)


@pytest.mark.parametrize("published,session", [
    (datetime(2024, 3, 5, 13, 0, tzinfo=UTC), date(2024, 3, 5)),     # before the open
    (datetime(2024, 3, 5, 14, 30, tzinfo=UTC), date(2024, 3, 6)),    # exactly at the open
    (datetime(2024, 3, 5, 21, 0, tzinfo=UTC), date(2024, 3, 6)),     # exactly at the close
    (datetime(2024, 3, 9, 12, 0, tzinfo=UTC), date(2024, 3, 11)),    # Saturday
    (datetime(2024, 3, 29, 15, 0, tzinfo=UTC), date(2024, 4, 1)),    # Good Friday holiday
])
def test_alignment_rules(published, session):
    panel = build_panel(signals_frame([{"ticker": "AAA", "published_at": published}]), PRICES,
                        NO_CARRY, CAL)
    hits = panel.filter(pl.col("n_docs") > 0)
    assert hits["session"].to_list() == [session]
    row = hits.row(0, named=True)
    assert row["latest_published_at"] < row["decision_at"]


def test_execution_lag_moves_the_signal_and_its_returns():
    signal = signals_frame([{"ticker": "AAA", "published_at": datetime(2024, 3, 5, 13, 0,
                                                                        tzinfo=UTC)}])
    lagged = build_panel(signal, PRICES, PanelParams(half_life=0, min_history=0,
                                                     execution_lag=1), CAL)
    assert lagged.filter(pl.col("n_docs") > 0)["session"].to_list() == [date(2024, 3, 6)]


def test_forward_returns_run_open_to_open():
    panel = build_panel(signals_frame([]), PRICES, PanelParams(horizons=(1, 5), min_history=0),
                        CAL)
    aaa = panel.filter(pl.col("ticker") == "AAA").sort("session")
    opens = aaa["adj_open"].to_numpy()
    assert np.allclose(aaa["fwd_ret_1"].to_numpy()[:-1], opens[1:] / opens[:-1] - 1)
    assert np.allclose(aaa["fwd_ret_5"].to_numpy()[:-5], opens[5:] / opens[:-5] - 1)
    assert aaa["fwd_ret_5"].tail(5).is_null().all()


def test_confidence_weighting_and_decay_half_life():
    t0 = datetime(2024, 3, 4, 13, 0, tzinfo=UTC)  # Monday before the open
    signals = signals_frame([
        {"ticker": "AAA", "published_at": t0, "sentiment": 1.0, "confidence": 0.75},
        {"ticker": "AAA", "published_at": t0 + timedelta(minutes=5), "sentiment": -1.0,
         "confidence": 0.25},
    ])
    panel = build_panel(signals, PRICES, PanelParams(half_life=2, min_history=0,
                                                     stale_after=4), CAL)
    aaa = panel.filter(pl.col("ticker") == "AAA").sort("session")
    monday = aaa.filter(pl.col("session") == date(2024, 3, 4)).row(0, named=True)
    assert monday["sentiment"] == pytest.approx(0.5)          # (0.75 - 0.25) / 1.0
    assert monday["n_docs"] == 2 and monday["novelty"] == 2
    later = aaa.filter(pl.col("session") > date(2024, 3, 4)).head(6)
    # The tone is carried unchanged while its weight halves every two sessions ...
    assert later["decayed_weight"].to_list()[:4] == pytest.approx(
        [0.5 ** (k / 2) for k in range(1, 5)])
    assert later["sentiment"].drop_nulls().to_list() == pytest.approx([0.5] * 4)
    # ... and goes stale (null) after `stale_after` sessions without news.
    assert later["sentiment"].to_list()[4:] == [None, None]


def test_novelty_counts_a_story_once_across_tickers():
    t = datetime(2024, 3, 4, 13, 0, tzinfo=UTC)
    signals = signals_frame([
        {"ticker": "AAA", "published_at": t, "story": "merger talk", "doc_id": "x"},
        {"ticker": "BBB", "published_at": t + timedelta(hours=3), "story": "merger talk",
         "doc_id": "y"},
        {"ticker": "BBB", "published_at": t + timedelta(hours=4), "story": "fresh news",
         "doc_id": "z"},
    ])
    panel = build_panel(signals, PRICES, NO_CARRY, CAL)
    assert _row(panel, "AAA", date(2024, 3, 4))["novelty"] == 1
    bbb = _row(panel, "BBB", date(2024, 3, 5))
    assert bbb["n_docs"] == 2 and bbb["novelty"] == 1  # the repeat is not novel


def test_cross_sectional_transforms():
    t = datetime(2024, 3, 4, 13, 0, tzinfo=UTC)
    signals = signals_frame([{"ticker": k, "published_at": t, "sentiment": s}
                             for k, s in (("AAA", -0.5), ("BBB", 0.1), ("CCC", 0.9))])
    day = build_panel(signals, PRICES, NO_CARRY, CAL).filter(
        pl.col("session") == date(2024, 3, 4)).sort("ticker")
    assert day["sentiment_rank"].to_list() == [0.0, 0.5, 1.0]
    assert day["sentiment_z"].mean() == pytest.approx(0, abs=1e-12)
    assert day["sentiment_z"].std() == pytest.approx(1)


def test_universe_needs_history_and_the_last_sessions_volume():
    prices = PRICES.with_columns(volume=pl.when((pl.col("ticker") == "BBB")
                                                & (pl.col("session") == date(2024, 3, 4)))
                                 .then(0.0).otherwise("volume"))
    panel = build_panel(signals_frame([]), prices, PanelParams(min_history=20), CAL)
    first = panel.filter(pl.col("ticker") == "AAA").sort("session")
    assert not first["in_universe"].head(20).any() and first["in_universe"][20]
    # A session's universe is decided at its open: a name that did not trade on 4 March
    # drops out on the 5th; on the 4th itself its volume was not yet known.
    assert _row(panel, "BBB", date(2024, 3, 4))["in_universe"]
    assert not _row(panel, "BBB", date(2024, 3, 5))["in_universe"]


def test_the_guard_fails_loudly():
    panel = pl.DataFrame({"ticker": ["AAA"], "session": [date(2024, 3, 5)],
                          "latest_published_at": [datetime(2024, 3, 5, 14, 30, tzinfo=UTC)],
                          "decision_at": [datetime(2024, 3, 5, 14, 30, tzinfo=UTC)]})
    with pytest.raises(LookAheadError, match="AAA 2024-03-05"):
        check_no_lookahead(panel)


def test_a_leaky_alignment_is_caught(monkeypatch):
    """Map each signal to its own calendar day's session (the classic bug): the guard trips."""
    import quant.pipeline as pipeline

    def same_day(signals, calendar, lag=0):
        day = signals["published_at"].dt.date()
        frame = pl.DataFrame({"session": day}).join(
            pl.DataFrame({"session": pl.Series(calendar.sessions).cast(pl.Date),
                          "decision_at": pl.Series(calendar.opens).dt.replace_time_zone("UTC")}),
            on="session", how="left")
        return signals.with_columns(frame)

    monkeypatch.setattr(pipeline, "align", same_day)
    intraday = signals_frame([{"ticker": "AAA",
                               "published_at": datetime(2024, 3, 5, 17, 0, tzinfo=UTC)}])
    with pytest.raises(LookAheadError):
        build_panel(intraday, PRICES, NO_CARRY, CAL)


def _stamp_strategy():
    opens = [o.astype(datetime).replace(tzinfo=UTC) for o in CAL.opens
             if np.datetime64("2023-11-01") <= o <= np.datetime64("2024-04-20")]
    closes = [c.astype(datetime).replace(tzinfo=UTC) for c in CAL.closes
              if np.datetime64("2023-11-01") <= c <= np.datetime64("2024-04-20")]
    holidays = [datetime(2023, 11, 23, 15, tzinfo=UTC), datetime(2023, 12, 25, 12, tzinfo=UTC),
                datetime(2024, 1, 1, 16, tzinfo=UTC), datetime(2024, 3, 29, 14, tzinfo=UTC)]
    anytime = st.datetimes(min_value=datetime(2023, 11, 1), max_value=datetime(2024, 4, 20),
                           timezones=st.just(UTC))
    return st.one_of(anytime, st.sampled_from(opens), st.sampled_from(closes),
                     st.sampled_from(holidays))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["AAA", "BBB", "CCC"]), _stamp_strategy(),
                          st.floats(-1, 1), st.floats(0.01, 1)), min_size=1, max_size=25),
       st.integers(0, 2), st.sampled_from([0.0, 1.0, 3.0]))
def test_property_no_lookahead_and_first_tradable_session(docs, lag, half_life):
    signals = signals_frame([{"ticker": t, "published_at": p, "sentiment": s, "confidence": c}
                             for t, p, s, c in docs])
    panel = build_panel(signals, PRICES, PanelParams(execution_lag=lag, half_life=half_life,
                                                     min_history=0), CAL)
    assert panel.height == PRICES.height                      # one row per price row, always
    used = panel.filter(pl.col("latest_published_at").is_not_null())
    assert (used["latest_published_at"] < used["decision_at"]).all()
    for ticker, published, _, _ in docs:
        session, decision = CAL.first_session(published, lag)
        assert decision > published
        row = _row(panel, ticker, session)
        assert row["n_docs"] >= 1
        # No earlier session saw this document.
        earlier = panel.filter((pl.col("ticker") == ticker) & (pl.col("session") < session)
                               & (pl.col("latest_published_at") >= published))
        assert earlier.is_empty()
    again = build_panel(signals, PRICES, PanelParams(execution_lag=lag, half_life=half_life,
                                                     min_history=0), CAL)
    assert_frame_equal(again, panel)                          # idempotent
