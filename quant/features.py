"""Features for learned models: named, documented, point-in-time expressions over the panel.

Each feature is a function of an input accessor `col(name)`, returning a polars expression
evaluated on the panel sorted by (ticker, session), windows per ticker. The panel's row at a
session is its decision time (that session's open): text columns there come from documents
published before it (the panel's look-ahead guard checks that), while the session's own prices
are not known yet, so price features read the previous sessions (`past`).

`check_point_in_time` guards every feature the same way: it recomputes them on the panel cut at a
session (later sessions dropped, that session's prices unknown) and fails if a value at the cut
differs from the one computed on the whole panel. A feature that reads a later row or a price not
known at the open cannot pass. To add a feature:

    @feature("text")
    def my_feature(col):
        \"\"\"What it measures.\"\"\"
        return col("n_docs") * 2
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import polars as pl

from quant.errors import ConfigError
from quant.pipeline import LookAheadError

Accessor = Callable[[str], pl.Expr]
# What a feature may read: the panel minus its labels and same-session cross-sections.
PRICE_COLUMNS = ("open", "close", "adj_close", "adj_open", "volume")
TEXT_COLUMNS = ("n_docs", "novelty", "confidence_mean", "sentiment_today", "sentiment",
                "p_bullish", "p_bearish", "sentiment_std", "event_types", "lexicon_tone",
                "lexicon_uncertainty")
INPUT_COLUMNS = ("ticker", "session", "decision_at", *PRICE_COLUMNS, *TEXT_COLUMNS)


@dataclass(frozen=True)
class Feature:
    name: str
    source: str                      # "text" or "price"
    description: str
    build: Callable[[Accessor], pl.Expr]


FEATURES: dict[str, Feature] = {}


def feature(source: str) -> Callable:
    """Register the decorated function as a feature of `source` (its docstring says what)."""
    def register(fn: Callable[[Accessor], pl.Expr]) -> Callable[[Accessor], pl.Expr]:
        FEATURES[fn.__name__] = Feature(fn.__name__, source, " ".join(fn.__doc__.split()), fn)
        return fn
    return register


def per_ticker(expr: pl.Expr) -> pl.Expr:
    return expr.over("ticker", order_by="session")


def past(col: Accessor, name: str, sessions: int = 1) -> pl.Expr:
    """A column as it was `sessions` sessions before (prices: the last close known at the open)."""
    return per_ticker(col(name).shift(sessions))


def daily_return(col: Accessor, lag: int = 1) -> pl.Expr:
    return past(col, "adj_close", lag) / past(col, "adj_close", lag + 1) - 1


# ------------------------------------------------------------------ text

@feature("text")
def tone(col):
    """Net tone, carried across sessions with the panel's decay (the signal the built-in
    strategies trade)."""
    return col("sentiment")


@feature("text")
def tone_bullish(col):
    """Mean probability the model gives to bullish across the session's documents."""
    return col("p_bullish")


@feature("text")
def tone_bearish(col):
    """Mean probability the model gives to bearish across the session's documents."""
    return col("p_bearish")


@feature("text")
def confidence(col):
    """Mean confidence (top label probability minus the next) of the session's documents."""
    return col("confidence_mean")


@feature("text")
def tone_dispersion(col):
    """Standard deviation of sentiment across the session's documents (disagreement)."""
    return col("sentiment_std")


@feature("text")
def tone_change(col):
    """Carried tone minus its value one session earlier."""
    return col("sentiment") - past(col, "sentiment")


@feature("text")
def has_event(col):
    """1 when a document of the session has an event type other than `other`."""
    return col("event_types").list.set_difference(pl.lit(["other"])).list.len().clip(0, 1)


@feature("text")
def attention(col):
    """log(1 + number of documents) in the session."""
    return col("n_docs").cast(pl.Float64).log1p()


@feature("text")
def abnormal_attention(col):
    """Attention against the ticker's own mean over the 20 sessions before."""
    level = col("n_docs").cast(pl.Float64).log1p()
    return level - per_ticker(level.shift(1).rolling_mean(20, min_samples=5))


@feature("text")
def novelty_share(col):
    """Share of the session's documents whose story had not appeared before (null: none)."""
    return pl.when(col("n_docs") > 0).then(col("novelty") / col("n_docs"))


@feature("text")
def lm_tone(col):
    """The Loughran-McDonald dictionary's tone of the session's documents, (positive -
    negative) / (positive + negative) words, averaged (null: none, or not read yet)."""
    return col("lexicon_tone")


@feature("text")
def lm_uncertainty(col):
    """Share of the session's documents' words in the Loughran-McDonald uncertainty list,
    averaged (null: none, or not read yet)."""
    return col("lexicon_uncertainty")


# ------------------------------------------------------------------ price

@feature("price")
def return_1(col):
    """Return of the last session (close to close): short-term reversal."""
    return daily_return(col)


@feature("price")
def return_5(col):
    """Return over the last 5 sessions to the last close."""
    return past(col, "adj_close") / past(col, "adj_close", 6) - 1


@feature("price")
def return_20(col):
    """Return over the last 20 sessions to the last close (momentum)."""
    return past(col, "adj_close") / past(col, "adj_close", 21) - 1


@feature("price")
def volatility_20(col):
    """Standard deviation of daily returns over the last 20 sessions."""
    return per_ticker(daily_return(col).rolling_std(20, min_samples=10))


@feature("price")
def log_volume(col):
    """log(1 + shares traded) in the last session."""
    return past(col, "volume").cast(pl.Float64).log1p()


@feature("price")
def abnormal_volume(col):
    """Last session's log volume against its mean over the 20 sessions before it."""
    level = past(col, "volume").cast(pl.Float64).log1p()
    return level - per_ticker(level.shift(1).rolling_mean(20, min_samples=5))


@feature("price")
def gap(col):
    """The last known overnight gap: the previous session's open against the close before it
    (today's open is the execution price, not known before the decision)."""
    return past(col, "adj_open") / past(col, "adj_close", 2) - 1


# ------------------------------------------------------------------ computing and guarding

def names(source: str | None = None) -> list[str]:
    return [n for n, f in FEATURES.items() if source in (None, f.source)]


def _chosen(selected: Iterable[str] | None) -> list[Feature]:
    selected = list(selected) if selected is not None else list(FEATURES)
    unknown = [n for n in selected if n not in FEATURES]
    if unknown:
        raise ConfigError(f"no feature {unknown[0]!r}; the features: {', '.join(FEATURES)} "
                         "(`quant features` describes them)")
    return [FEATURES[n] for n in selected]


def _inputs(panel: pl.DataFrame) -> pl.DataFrame:
    missing = [c for c in INPUT_COLUMNS if c not in panel.columns]
    if missing:
        raise ConfigError(f"the panel lacks {', '.join(missing)}: build it with "
                         "quant.pipeline.build_panel (or Workspace.panel)")
    return panel.select(INPUT_COLUMNS).sort("ticker", "session")


def compute(panel: pl.DataFrame, selected: Sequence[str] | None = None,
            accessor: Accessor = pl.col) -> pl.DataFrame:
    """ticker, session and one column per feature, for every panel row (sorted).

    Values are rounded to 12 decimals: the panel's sums run in parallel, in any order, so a
    value that is exactly 0 or a tie in exact arithmetic (the tone change of a session without
    news) carries noise near 1e-16 that would otherwise order names at random. (A value within
    that noise of a rounding boundary can still differ, about once in 10^4 values.)"""
    chosen = _chosen(selected)
    frame = _inputs(panel)
    return frame.select("ticker", "session", *[
        f.build(accessor).cast(pl.Float64).fill_nan(None).round(12).alias(f.name)
        for f in chosen])


def with_features(panel: pl.DataFrame, selected: Sequence[str] | None = None,
                  check: bool = True) -> pl.DataFrame:
    """The panel with its feature columns joined, point-in-time checked unless `check` is off.
    A feature named like a panel column is an error: the join would keep the panel's column
    (the session's own volume, say) under the feature's name."""
    values = compute(panel, selected)
    clash = [c for c in values.columns[2:] if c in panel.columns]
    if clash:
        raise ConfigError(f"feature {clash[0]!r} has the name of a panel column; rename the "
                          "feature (or drop the column) so the panel's value is not read as it")
    if check:
        check_point_in_time(panel, selected, full=values)
    return panel.join(values, on=["ticker", "session"], how="left")


def check_point_in_time(panel: pl.DataFrame, selected: Sequence[str] | None = None,
                        cuts: int = 4, accessor: Accessor = pl.col,
                        full: pl.DataFrame | None = None) -> None:
    """Fail with `LookAheadError` when a feature's value at a session changes once the panel is
    cut there: later sessions dropped and that session's prices (not known at its open) unset.
    Checked at `cuts` sessions spread over the second half of the panel; `full`: the features
    already computed on the whole panel (`compute`), when the caller has them."""
    chosen = [f.name for f in _chosen(selected)]
    frame = _inputs(panel)
    sessions = frame["session"].unique().sort()
    if sessions.len() < 2:
        return
    full = compute(frame, chosen, accessor) if full is None else full
    for i in range(cuts):
        cut = sessions[sessions.len() // 2 + (sessions.len() // 2 - 1) * i // max(cuts - 1, 1)]
        known = frame.filter(pl.col("session") <= cut).with_columns(
            [pl.when(pl.col("session") < cut).then(pl.col(c)).alias(c) for c in PRICE_COLUMNS])
        at_cut = compute(known, chosen, accessor).filter(pl.col("session") == cut)
        whole = full.filter(pl.col("session") == cut)
        for name in chosen:
            a, b = at_cut[name], whole[name]
            differs = (a.is_null() != b.is_null()) | ((a - b).abs() > 1e-9 * (1 + b.abs()))
            if differs.fill_null(False).any():
                ticker = at_cut.filter(differs.fill_null(False))["ticker"][0]
                raise LookAheadError(
                    f"look-ahead: feature {name!r} at {ticker} {cut} changes when the panel "
                    "ends at that session's open; it reads a later row or a price of the "
                    "session itself. Read prices with `past(...)` and windows per ticker.")
