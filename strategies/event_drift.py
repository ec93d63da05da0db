"""Trade the drift after strong, confident news of one event type.

On a session with fresh news of `event` (`any` for every type, the default; a type such as
`earnings` needs signals that read the event type: `[model] events = true`) whose confidence-
weighted tone is at least `min_sentiment` in size with confidence at least `min_confidence`,
take a position in the tone's direction and hold it `hold` sessions; an opposite strong signal
of any type closes it early. Each open position gets an equal slot of the book (1 / `slots`).
Why: post-event drift, the slow absorption of earnings and guidance news.
"""

from __future__ import annotations

import numpy as np
import polars as pl


class EventDrift:
    name = "event_drift"
    description = "enter on a strong confident event signal, hold H sessions, exit on reversal"
    defaults = {"event": "any", "min_sentiment": 0.3, "min_confidence": 0.3, "hold": 5,
                "slots": 4}
    grid = {"hold": [1, 3, 5, 10], "min_sentiment": [0.2, 0.5], "event": ["earnings", "any"]}

    def weights(self, panel: pl.DataFrame, event: str = "any", min_sentiment: float = 0.3,
                min_confidence: float = 0.3, hold: int = 5, slots: int = 4) -> pl.DataFrame:
        frame = panel.sort("ticker", "session").with_columns(
            strong=pl.col("sentiment_today").abs() >= min_sentiment,
            sure=pl.col("confidence_mean") >= min_confidence,
            has_event=(pl.col("n_docs") > 0) if event == "any"
            else pl.col("event_types").list.contains(event).fill_null(False),
        )
        entry = (frame["strong"] & frame["sure"] & frame["has_event"] & frame["in_universe"]
                 ).fill_null(False).to_numpy()
        direction = np.sign(frame["sentiment_today"].fill_null(0).to_numpy())
        strong = frame["strong"].fill_null(False).to_numpy()
        tickers = frame["ticker"].to_numpy()
        position = np.zeros(frame.height)
        held, left = 0.0, 0
        for i in range(frame.height):  # a short state machine per ticker, in session order
            if i and tickers[i] != tickers[i - 1]:
                held, left = 0.0, 0
            if held and strong[i] and direction[i] == -held:
                held, left = 0.0, 0          # an opposite strong signal closes it
            if entry[i]:
                held, left = direction[i], hold
            position[i] = held
            left -= 1
            if left <= 0:
                held = 0.0
        return frame.select("session", "ticker").with_columns(
            weight=pl.Series(position / slots))
