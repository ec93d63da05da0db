"""Trade the drift after strong, confident news of one event type.

On a session with fresh news of `event` (`any` for every type, the default; a type such as
`earnings` needs signals that read the event type: `[model] events = true`) whose confidence-
weighted tone is at least `min_sentiment` in size with confidence at least `min_confidence`,
take a position in the tone's direction and hold it `hold` sessions; an opposite strong signal
of any type closes it early. Each open position gets an equal slot of the book (1 / `slots`).
Why: post-event drift, the slow absorption of earnings and guidance news.
"""

from __future__ import annotations

import polars as pl

from strategies.base import with_defaults


class EventDrift:
    name = "event_drift"
    description = "enter on a strong confident event signal, hold H sessions, exit on reversal"
    defaults = {"event": "any", "min_sentiment": 0.3, "min_confidence": 0.3, "hold": 5,
                "slots": 4}
    grid = {"hold": [1, 3, 5, 10], "min_sentiment": [0.2, 0.5], "event": ["earnings", "any"]}
    bounds = {"min_sentiment": (0.0, 1.0), "min_confidence": (0.0, 1.0), "hold": (1, None),
              "slots": (1, None)}

    @with_defaults
    def weights(self, panel: pl.DataFrame, event: str, min_sentiment: float,
                min_confidence: float, hold: int, slots: int) -> pl.DataFrame:
        frame = panel.sort("ticker", "session").with_columns(
            strong=pl.col("sentiment_today").abs() >= min_sentiment,
            sure=pl.col("confidence_mean") >= min_confidence,
            has_event=(pl.col("n_docs") > 0) if event == "any"
            else pl.col("event_types").list.contains(event).fill_null(False),
        )
        entry = (pl.col("strong") & pl.col("sure") & pl.col("has_event")
                 & pl.col("in_universe")).fill_null(False)
        direction = pl.col("sentiment_today").fill_null(0).sign()
        row = pl.int_range(pl.len()).over("ticker")
        # Each row belongs to the latest entry of its ticker (or none yet): the position is
        # that entry's direction for `hold` sessions, unless a strong signal of the opposite
        # direction came after the entry and closed it.
        frame = frame.with_columns(
            since=pl.when(entry).then(row).forward_fill().over("ticker"),
            entry_direction=pl.when(entry).then(direction).forward_fill().over("ticker"),
            row=row, direction=direction)
        opposite = (pl.col("strong").fill_null(False) & (pl.col("row") > pl.col("since"))
                    & (pl.col("entry_direction") != 0)
                    & (pl.col("direction") == -pl.col("entry_direction")))
        frame = frame.with_columns(
            closed=opposite.cast(pl.Int32).cum_sum().over("ticker", "since") > 0)
        held = ((pl.col("row") - pl.col("since") < hold) & ~pl.col("closed")).fill_null(False)
        return frame.select("session", "ticker", weight=pl.when(held).then(
            pl.col("entry_direction") / slots).otherwise(0.0))
