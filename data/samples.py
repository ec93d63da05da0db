"""Bundled sample data: real daily prices from a PyPI package and a generated news corpus.

Prices: `bokeh_sampledata`'s public-domain stocks file (AAPL, GOOG, IBM, MSFT, 2000-2013, with
split- and dividend-adjusted close), ingested through the ordinary CSV price loader.

News: headlines written by a seeded generator for the same tickers, with a **planted effect**.
For every (ticker, session) that gets a story, a latent tone is drawn as

    tone = strength * z + sqrt(1 - strength**2) * noise,    noise ~ N(0, 1)

where z is the ticker's open-to-open return over the session in which the story becomes
tradable (the first session whose open is after `published_at`), demeaned across the tickers
with a story that session and scaled to unit variance, and the noise is demeaned the same way.
So `strength` is the pooled cross-sectional correlation between a story's tone and its
one-session forward return (both demeaned per session), when each story is aligned
point-in-time: the `pooled_ic` of `quant.evaluate`. A pipeline that aligns a session late sees
an IC near zero. The headline's
words follow the tone (strongly / mildly positive, neutral, mildly / strongly negative), so a
model that reads tone well recovers part of the effect; the exact tone is kept in `meta` as
`planted_tone` for checking the pipeline without a model.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl

from data.calendar import TradingCalendar, get_calendar

SAMPLE_TICKERS = {"AAPL": "Apple", "GOOG": "Google", "IBM": "IBM", "MSFT": "Microsoft"}
SAMPLE_START, SAMPLE_END = date(2011, 1, 3), date(2012, 12, 31)

_PRODUCTS = {"AAPL": "iPhone", "GOOG": "search advertising", "IBM": "mainframe",
             "MSFT": "Windows"}
_TEMPLATES: dict[str, list[tuple[str, str]]] = {
    "strong_pos": [
        ("earnings", "{co} smashes earnings estimates as {product} sales soar"),
        ("guidance", "{co} raises full-year outlook sharply on record demand"),
        ("analyst", "Analysts upgrade {co} to strong buy, lift price target"),
        ("product", "{co}'s new {product} launch is a blockbuster success"),
    ],
    "mild_pos": [
        ("earnings", "{co} quarterly profit edges above expectations"),
        ("analyst", "Broker nudges {co} price target higher"),
        ("product", "{co} sees steady uptake of latest {product} update"),
        ("capital_return", "{co} modestly increases its dividend"),
    ],
    "neutral": [
        ("management", "{co} to present at industry conference next month"),
        ("other", "{co} shares trade in line with the market"),
        ("product", "{co} schedules {product} event for later this year"),
        ("macro", "{co} among large caps tracked as investors await jobs data"),
    ],
    "mild_neg": [
        ("earnings", "{co} revenue slightly misses forecasts"),
        ("analyst", "Analyst trims {co} price target on softer margins"),
        ("legal_regulatory", "{co} faces a new regulatory inquiry"),
        ("product", "{co} delays a minor {product} feature"),
    ],
    "strong_neg": [
        ("earnings", "{co} profit plunges, badly missing estimates"),
        ("guidance", "{co} slashes outlook as {product} demand collapses"),
        ("legal_regulatory", "{co} hit with massive lawsuit over {product} defects"),
        ("analyst", "Analysts downgrade {co} to sell amid mounting losses"),
    ],
}
_BODIES = {
    "strong_pos": ("Investors cheered the news about {co}, which beat expectations by a wide "
                   "margin."),
    "mild_pos": "The update for {co} was slightly better than expected.",
    "neutral": "The announcement from {co} contained no new financial information.",
    "mild_neg": "The news for {co} was a little worse than expected.",
    "strong_neg": "Investors were alarmed by the news about {co}, a serious setback.",
}


def sample_prices_path() -> Path:
    """The gzip CSV of real daily prices shipped by `bokeh_sampledata`."""
    return Path(str(resources.files("bokeh_sampledata") / "_data" / "stocks.csv.gz"))


def _bucket(tone: float) -> str:
    if tone > 1.0:
        return "strong_pos"
    if tone > 0.35:
        return "mild_pos"
    if tone >= -0.35:
        return "neutral"
    return "mild_neg" if tone >= -1.0 else "strong_neg"


def generate_news(prices: pl.DataFrame, strength: float = 0.3, seed: int = 7,
                  start: date = SAMPLE_START, end: date = SAMPLE_END, story_prob: float = 0.8,
                  calendar: TradingCalendar | None = None) -> pl.DataFrame:
    """Stories with a planted effect of `strength` (see the module docstring).

    `prices` needs ticker, session (or date), open, close, adj_close. Returns columns
    published_at (UTC), tickers, title, body, source, event_type, planted_tone.
    """
    if not -1 <= strength <= 1:
        raise ValueError(f"strength must be in [-1, 1], got {strength}")
    calendar = calendar or get_calendar("XNYS")
    rng = np.random.default_rng(seed)
    frame = prices.rename({"date": "session"} if "date" in prices.columns else {})
    frame = frame.with_columns(pl.col("session").cast(pl.Date)).sort("ticker", "session")
    # Execution at the open, in adjusted terms; the forward return runs open to next open.
    frame = frame.with_columns(adj_open=pl.col("open") * pl.col("adj_close") / pl.col("close"))
    frame = frame.with_columns(
        fwd=pl.col("adj_open").shift(-1).over("ticker") / pl.col("adj_open") - 1)
    frame = frame.filter(pl.col("session").is_between(start, end) & pl.col("fwd").is_not_null()
                         & pl.col("ticker").is_in(list(SAMPLE_TICKERS)))
    frame = frame.filter(pl.Series(rng.random(frame.height) < story_prob))
    # Plant on the cross-section of stories: demean within the session, over the tickers that
    # have a story, so the effect is exactly what a cross-sectional evaluation measures.
    frame = frame.with_columns(noise=pl.Series(rng.standard_normal(frame.height)),
                               names=pl.len().over("session")).filter(pl.col("names") >= 2)
    frame = frame.with_columns(
        z=pl.col("fwd") - pl.col("fwd").mean().over("session"),
        noise=(pl.col("noise") - pl.col("noise").mean().over("session"))
        * (pl.col("names") / (pl.col("names") - 1)).sqrt())
    frame = frame.with_columns(z=pl.col("z") / (pl.col("z") ** 2).mean().sqrt())
    tone = (strength * frame["z"] + math.sqrt(1 - strength**2) * frame["noise"]).to_numpy()

    return _stories(frame.select("ticker", "session"), tone, calendar, rng)


def _stories(frame: pl.DataFrame, tone: np.ndarray, calendar: TradingCalendar,
             rng: np.random.Generator) -> pl.DataFrame:
    """One story per (ticker, session) row, worded by its tone, published before the open."""
    opens = dict(zip(calendar.sessions.astype("datetime64[D]").astype(object).tolist(),
                     calendar.opens.tolist(), strict=True))
    sessions = list(opens)
    index_of = {s: i for i, s in enumerate(sessions)}
    rows = []
    for (ticker, session), value in zip(frame.iter_rows(), tone, strict=True):
        i = index_of[session]
        # Published somewhere after the previous session's open and before this one's:
        # intraday, after the close, overnight, over a weekend or a holiday.
        lo, hi = opens[sessions[i - 1]], opens[session]
        span = (hi - lo).total_seconds()
        published = lo + timedelta(seconds=float(rng.uniform(0, span - 1)))
        bucket = _bucket(float(value))
        event, template = _TEMPLATES[bucket][rng.integers(len(_TEMPLATES[bucket]))]
        names = {"co": SAMPLE_TICKERS[ticker], "product": _PRODUCTS[ticker]}
        rows.append({
            "published_at": published.replace(microsecond=0),
            "tickers": [ticker],
            "title": template.format(**names) + f" (${ticker})",
            "body": _BODIES[bucket].format(**names)
            + f" Filed {published:%B %d, %Y at %H:%M} UTC.",
            "source": "sample-newswire",
            "event_type": event,
            "planted_tone": round(float(value), 6),
        })
    out = pl.DataFrame(rows).with_columns(
        pl.col("published_at").dt.replace_time_zone("UTC"))
    return out.sort("published_at")


def write_sample_news(path: Path, prices: pl.DataFrame, strength: float = 0.3,
                      seed: int = 7) -> Path:
    """Write the generated corpus as Parquet (the news loader reads it like any other file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    generate_news(prices, strength=strength, seed=seed).write_parquet(path)
    return path
