from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from data.calendar import get_calendar

UTC = timezone.utc
cal = get_calendar("XNYS")


def test_before_the_open_trades_that_session():
    # 2024-03-05 is a Tuesday; the NYSE opens 14:30 UTC in winter.
    session, decision = cal.first_session(datetime(2024, 3, 5, 13, 0, tzinfo=UTC))
    assert session == date(2024, 3, 5)
    assert decision == datetime(2024, 3, 5, 14, 30, tzinfo=UTC)


def test_exactly_at_the_open_and_during_the_session_roll_to_the_next():
    assert cal.first_session(datetime(2024, 3, 5, 14, 30, tzinfo=UTC))[0] == date(2024, 3, 6)
    assert cal.first_session(datetime(2024, 3, 5, 17, 0, tzinfo=UTC))[0] == date(2024, 3, 6)


def test_after_the_close_weekend_and_holiday_roll_forward():
    assert cal.first_session(datetime(2024, 3, 5, 21, 0, tzinfo=UTC))[0] == date(2024, 3, 6)
    # Friday after the close and Saturday -> Monday.
    assert cal.first_session(datetime(2024, 3, 8, 22, 0, tzinfo=UTC))[0] == date(2024, 3, 11)
    assert cal.first_session(datetime(2024, 3, 9, 12, 0, tzinfo=UTC))[0] == date(2024, 3, 11)
    # Good Friday 2024-03-29 is a holiday; Thursday after the close -> Monday 04-01.
    assert cal.first_session(datetime(2024, 3, 28, 21, 0, tzinfo=UTC))[0] == date(2024, 4, 1)
    # Christmas Day.
    assert cal.first_session(datetime(2023, 12, 25, 15, 0, tzinfo=UTC))[0] == date(2023, 12, 26)


def test_half_day_close():
    # The day after Thanksgiving closes at 13:00 New York (18:00 UTC); 18:30 is after the close.
    assert cal.first_session(datetime(2023, 11, 24, 18, 30, tzinfo=UTC))[0] == date(2023, 11, 27)


def test_execution_lag_moves_sessions():
    assert cal.first_session(datetime(2024, 3, 5, 13, 0, tzinfo=UTC), lag=2)[0] == date(2024, 3, 7)


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(2005, 1, 1), max_value=datetime(2025, 12, 1),
                    timezones=st.just(UTC)))
def test_decision_is_the_first_open_strictly_after_publication(ts):
    frame = cal.align(pl.Series([ts], dtype=pl.Datetime("us", "UTC")))
    decision = frame["decision_at"][0]
    assert decision > ts                          # never acts on what is not yet public
    earlier = cal.opens[(cal.opens < np.datetime64(decision.replace(tzinfo=None), "us"))]
    # ... and no open between publication and the decision was skipped.
    assert earlier[-1].astype(datetime).replace(tzinfo=UTC) <= ts
    assert frame["session"][0] == cal.first_session(ts)[0]


def test_vectorised_matches_scalar():
    stamps = [datetime(2024, 1, 2, 0, 0, tzinfo=UTC) + timedelta(hours=7 * i) for i in range(50)]
    frame = cal.align(pl.Series(stamps, dtype=pl.Datetime("us", "UTC")))
    assert frame["session"].to_list() == [cal.first_session(s)[0] for s in stamps]
