"""Trading calendar: when can a timestamp first be acted on?

The rule (ARCHITECTURE.md, time semantics): a document published strictly before a session's open is
tradable at that session's open; one published at or after an open (during the session, at the
close, after it, on a weekend or a holiday) is tradable at the next session's open. With daily
bars that is one rule: *the first session whose open is strictly after the timestamp*. An
execution lag of N sessions moves that N sessions later.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from functools import lru_cache

import numpy as np
import polars as pl

from data.errors import DataError

CALENDAR_START = "1990-01-02"


class TradingCalendar:
    """Sessions and their opens/closes (UTC) for one exchange, default XNYS."""

    def __init__(self, name: str = "XNYS") -> None:
        import exchange_calendars as xcals  # with pandas, 0.4 s: only when a calendar is built

        try:
            end = (datetime.now(timezone.utc).year + 1, 12, 31)
            cal = xcals.get_calendar(name, start=CALENDAR_START, end="%04d-%02d-%02d" % end)
        except (xcals.errors.InvalidCalendarName, ValueError) as exc:
            raise DataError(f"unknown trading calendar {name!r}: {exc}") from None
        self.name = name
        self.sessions = cal.sessions.values.astype("datetime64[D]")
        self.opens = cal.opens.dt.tz_convert(None).to_numpy().astype("datetime64[us]")
        self.closes = cal.closes.dt.tz_convert(None).to_numpy().astype("datetime64[us]")

    def session_index(self, published_at: np.ndarray, lag: int = 0) -> np.ndarray:
        """Index of the first tradable session for each UTC timestamp (datetime64[us])."""
        index = np.searchsorted(self.opens, published_at.astype("datetime64[us]"), side="right")
        index = index + lag
        if len(index) and (index.max() >= len(self.opens) or index.min() < 0):
            raise DataError(
                f"timestamps fall outside the {self.name} calendar "
                f"({self.sessions[0]} .. {self.sessions[-1]})"
            )
        return index

    def first_session(self, published_at: datetime, lag: int = 0) -> tuple[date, datetime]:
        """(session date, decision time = that session's open in UTC) for one timestamp."""
        if published_at.tzinfo is None:
            raise DataError(f"timestamp {published_at} has no time zone; pass it in UTC")
        stamp = np.array([published_at.astimezone(timezone.utc).replace(tzinfo=None)],
                         dtype="datetime64[us]")
        i = self.session_index(stamp, lag)[0]
        session = self.sessions[i].astype(date)
        decision = self.opens[i].astype(datetime).replace(tzinfo=timezone.utc)
        return session, decision

    def align(self, published_at: pl.Series, lag: int = 0) -> pl.DataFrame:
        """Vectorised `first_session`: columns `session` (date) and `decision_at` (UTC)."""
        naive = published_at.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        index = self.session_index(naive.cast(pl.Datetime("us")).to_numpy(), lag)
        return pl.DataFrame({
            "session": pl.Series(self.sessions[index]).cast(pl.Date),
            "decision_at": pl.Series(self.opens[index]).dt.replace_time_zone("UTC"),
        })

    def position(self, day: date, after: bool = False) -> int:
        """Index of `day` among the sessions; a day that is no session: of the first session
        after it (`after`: always the first session strictly after `day`)."""
        return int(np.searchsorted(self.sessions, np.datetime64(day, "D"),
                                   side="right" if after else "left"))

    def shift(self, session: date, sessions: int) -> date:
        """The session `sessions` sessions after `session` (before it, when negative)."""
        index = self.position(session) + sessions
        if not 0 <= index < len(self.sessions):
            raise DataError(f"{session} shifted by {sessions} sessions falls outside the "
                            f"{self.name} calendar ({self.sessions[0]} .. {self.sessions[-1]})")
        return self.sessions[index].astype(date)

    def open_of(self, position: int) -> datetime:
        """The open (UTC) of the session at `position`."""
        return self.opens[position].astype(datetime).replace(tzinfo=timezone.utc)

    def sessions_between(self, start: date, end: date) -> list[date]:
        lo, hi = np.datetime64(start, "D"), np.datetime64(end, "D")
        chosen = self.sessions[(self.sessions >= lo) & (self.sessions <= hi)]
        return [d.astype(date) for d in chosen]


@lru_cache(maxsize=4)
def get_calendar(name: str = "XNYS") -> TradingCalendar:
    """A cached calendar: building one takes about a second."""
    return TradingCalendar(name)
