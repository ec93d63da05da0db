"""The point-in-time daily panel: signals aligned to the first session they can be traded in,
aggregated per (ticker, session), carried with exponential decay, standardised across tickers,
and joined to forward returns measured from that session's execution price.

Time rules (ARCHITECTURE.md): a signal is tradable at the open of the first session whose open is
strictly after its `published_at`, plus `execution_lag` sessions. Every panel row carries the
latest `published_at` it used and its decision time (that session's open); `build_panel` fails
loudly if any row used a document published at or after its decision time.

Forward returns run open to open in adjusted terms (adj_open = open * adj_close / close): enter
at the decision session's open, exit at the open h sessions later.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from data.calendar import TradingCalendar, get_calendar
from data.errors import DataError
from data.warehouse import Warehouse
from llm.schema import EventType
from quant.settings import PanelParams
from quant.signal_store import SIGNALS_SCHEMA, SignalSet, choose_signal_set, load_signals


class LookAheadError(DataError):
    """A panel row used information published after its decision time."""


def with_tone(signals: pl.DataFrame) -> pl.DataFrame:
    """The signals with the head's label probabilities and the dictionary's tone and
    uncertainty, null where a frame has none."""
    return signals.with_columns(pl.lit(None, pl.Float64).alias(c) for c in
                                ("p_bullish", "p_bearish", "lexicon_tone", "lexicon_uncertainty")
                                if c not in signals.columns)


def no_signals() -> pl.DataFrame:
    """An empty frame shaped like `load_signals`: a panel of prices and returns alone."""
    return pl.DataFrame(schema=SIGNALS_SCHEMA)


def load_prices(wh: Warehouse, since: date | None = None, until: date | None = None
                ) -> pl.DataFrame:
    return wh.con.execute("""
        SELECT ticker, session, open, close, adj_close, volume FROM prices
        WHERE ($since IS NULL OR session >= $since::DATE)
          AND ($until IS NULL OR session <= $until::DATE)
        ORDER BY ticker, session
    """, {"since": since, "until": until}).pl()


def align(signals: pl.DataFrame, calendar: TradingCalendar, lag: int = 0) -> pl.DataFrame:
    """Add `session` and `decision_at` (that session's open) to every signal."""
    if signals.is_empty():
        return signals.with_columns(session=pl.lit(None, pl.Date),
                                    decision_at=pl.lit(None, pl.Datetime("us", "UTC")))
    aligned = calendar.align(signals["published_at"], lag)
    return signals.with_columns(aligned)


def _decay(half_life: float) -> float:
    return 0.0 if half_life <= 0 else 0.5 ** (1.0 / half_life)


EVENT_BITS = {event.value: 1 << i for i, event in enumerate(EventType)}


def aggregate(aligned: pl.DataFrame) -> pl.DataFrame:
    """Per (ticker, session): confidence-weighted sentiment inputs, counts, novelty, events.

    A story (its normalised title) is novel only where it first appeared, across all tickers
    and sources. Tone is kept beyond its net value: the mean label probabilities (null where
    the signals carry none) and the spread of sentiment across the session's documents. For
    speed at 10^7 signals, keys are hashed to integers and the event types
    of a session are OR-ed as bits, decoded to a list once per panel row."""
    per_day = (
        with_tone(aligned).lazy()
        .with_columns(story_key=pl.col("story").hash(), doc_key=pl.col("doc_id").hash(),
                      event_bit=pl.col("event_type").replace_strict(
                          EVENT_BITS, default=EVENT_BITS["other"], return_dtype=pl.UInt16))
        .with_columns(novel=pl.col("published_at") == pl.col("published_at").min().over(
            "story_key"), key=pl.struct("ticker", "session").hash())
        .group_by("key")
        .agg(
            pl.col("ticker").first(), pl.col("session").first(),
            weighted=(pl.col("sentiment") * pl.col("confidence")).sum(),
            weight=pl.col("confidence").sum(),
            confidence_mean=pl.col("confidence").mean(),
            p_bullish=pl.col("p_bullish").mean(), p_bearish=pl.col("p_bearish").mean(),
            lexicon_tone=pl.col("lexicon_tone").mean(),
            lexicon_uncertainty=pl.col("lexicon_uncertainty").mean(),
            sentiment_std=pl.col("sentiment").std(),
            n_docs=pl.col("doc_key").n_unique(),
            novelty=pl.col("story_key").filter(pl.col("novel")).n_unique(),
            event_bits=pl.col("event_bit").bitwise_or(),
            latest_published_at=pl.col("published_at").max(),
        )
    )
    events = pl.concat_list([pl.when(pl.col("event_bits") & bit > 0).then(pl.lit(name))
                             for name, bit in EVENT_BITS.items()]).list.drop_nulls()
    # One integer key and the streaming engine: several times faster than two string keys.
    return per_day.with_columns(event_types=events).drop("event_bits", "key").collect(
        engine="streaming")


def build_panel(signals: pl.DataFrame, prices: pl.DataFrame, params: PanelParams = PanelParams(),
                calendar: TradingCalendar | None = None) -> pl.DataFrame:
    """The daily panel for every (ticker, session) with a price."""
    calendar = calendar or get_calendar("XNYS")
    opens = pl.DataFrame({
        "session": pl.Series(calendar.sessions).cast(pl.Date),
        "decision_at": pl.Series(calendar.opens).dt.replace_time_zone("UTC"),
        "session_idx": np.arange(len(calendar.sessions)),
    })
    base = (
        prices.lazy()
        .join(opens.lazy(), on="session", how="left")
        .with_columns(adj_open=pl.col("open") * pl.col("adj_close") / pl.col("close"))
        .sort("ticker", "session")
        .with_columns(adj_open=pl.coalesce("adj_open", pl.col("adj_close").shift(1)
                                           .over("ticker")))
    )
    per_day = aggregate(align(signals, calendar, params.execution_lag)).lazy()
    # Sorted once by (ticker, session): every window below runs in that order.
    panel = base.join(per_day, on=["ticker", "session"], how="left").sort(
        "ticker", "session").with_columns(
        pl.col("weighted").fill_null(0.0), pl.col("weight").fill_null(0.0),
        pl.col("n_docs").fill_null(0), pl.col("novelty").fill_null(0),
        row_in_ticker=pl.int_range(pl.len()).over("ticker"),
    )
    panel = _cross_section(_forward_returns(_carry(panel, params), params), params)
    out = panel.drop("weighted", "weight", "row_in_ticker", "flow", "age").collect()
    check_no_lookahead(out)
    return out


def _carry(panel: pl.LazyFrame, params: PanelParams) -> pl.LazyFrame:
    """Sentiment carried across sessions with exponential decay, null once stale."""
    decay = _decay(params.half_life)
    stale_after = (params.stale_after if params.stale_after is not None
                   else round(4 * max(params.half_life, 0)))
    last_news = pl.when(pl.col("n_docs") > 0).then(pl.col("row_in_ticker"))
    panel = panel.with_columns(
        age=pl.col("row_in_ticker") - last_news.forward_fill().over("ticker"))
    # Exponentially decayed sums, exactly: ewm_mean * sum of the weights decay**k.
    norm = (1 - decay ** (pl.col("row_in_ticker") + 1)) / (1 - decay) if decay > 0 else 1.0
    alpha = 1.0 - decay
    panel = panel.with_columns(
        flow=pl.col("weighted").ewm_mean(alpha=alpha, adjust=True).over("ticker") * norm,
        decayed_weight=pl.col("weight").ewm_mean(alpha=alpha, adjust=True).over("ticker") * norm,
        latest_published_at=pl.col("latest_published_at").cum_max().over("ticker")
        if decay > 0 else pl.col("latest_published_at"),
    ).with_columns(
        sentiment_today=pl.when(pl.col("weight") > 0)
        .then(pl.col("weighted") / pl.col("weight")).otherwise(None),
        sentiment=pl.when((pl.col("age") <= stale_after) & (pl.col("decayed_weight") > 0))
        .then(pl.col("flow") / pl.col("decayed_weight")).otherwise(None),
    )
    if decay > 0:  # a stale carried value still names the document it came from
        panel = panel.with_columns(latest_published_at=pl.when(pl.col("sentiment").is_not_null())
                                   .then("latest_published_at").otherwise(None))
    return panel


def _forward_returns(panel: pl.LazyFrame, params: PanelParams) -> pl.LazyFrame:
    """Open to open, h sessions later on the exchange calendar (null across a gap)."""
    for h in params.horizons:
        later = pl.col("adj_open").shift(-h).over("ticker")
        contiguous = pl.col("session_idx").shift(-h).over("ticker") == pl.col("session_idx") + h
        panel = panel.with_columns(
            pl.when(contiguous).then(later / pl.col("adj_open") - 1).otherwise(None)
            .alias(f"fwd_ret_{h}"))
    return panel


def _cross_section(panel: pl.LazyFrame, params: PanelParams) -> pl.LazyFrame:
    """The universe, and the signal standardised and ranked across its names each session."""
    # Universe: what is known at the session's open — an open to trade at, and the last
    # session's close and volume (traded, not a penny stock) — and enough history. Today's
    # close and volume are not known when today's book is decided.
    last_close = pl.col("close").shift(1).over("ticker")
    panel = panel.with_columns(
        in_universe=pl.col("adj_open").is_not_null() & last_close.is_not_null()
        & (pl.col("volume").shift(1).over("ticker").fill_null(0) > 0)
        & (pl.col("row_in_ticker") >= params.min_history) & (last_close >= params.min_price))
    live = pl.col("in_universe") & pl.col("sentiment").is_not_null()
    mean = pl.col("sentiment").filter(live).mean().over("session")
    std = pl.col("sentiment").filter(live).std().over("session")
    z = (pl.col("sentiment") - mean) / std
    if params.winsorize > 0:
        z = z.clip(-params.winsorize, params.winsorize)
    return panel.with_columns(
        sentiment_z=pl.when(live & (std > 0)).then(z).otherwise(None),
        sentiment_rank=pl.when(live).then(
            (pl.col("sentiment").rank("average").over(pl.col("session"), live) - 1)
            / (live.sum().over("session") - 1).clip(lower_bound=1)).otherwise(None),
    )


def check_no_lookahead(panel: pl.DataFrame) -> None:
    """Fail loudly if any row used a document published at or after its decision time."""
    bad = panel.filter(pl.col("latest_published_at") >= pl.col("decision_at"))
    if bad.height:
        row = bad.row(0, named=True)
        raise LookAheadError(
            f"look-ahead: {bad.height} panel rows use documents published at or after their "
            f"decision time; first: {row['ticker']} {row['session']} used a document published "
            f"{row['latest_published_at']} for a decision at {row['decision_at']}. Check the "
            "calendar alignment and the time zone of the input timestamps.")


def panel_from_warehouse(wh: Warehouse, params: PanelParams = PanelParams(),
                         which: SignalSet | None = None, since: date | None = None,
                         until: date | None = None, calendar: str = "XNYS"
                         ) -> tuple[pl.DataFrame, SignalSet]:
    which = which or choose_signal_set(wh)
    signals = load_signals(wh, which, since, until)
    prices = load_prices(wh, since, until)
    if prices.is_empty():
        raise DataError("no prices in the warehouse for that period: ingest prices first")
    return build_panel(signals, prices, params, get_calendar(calendar)), which
