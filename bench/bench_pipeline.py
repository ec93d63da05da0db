"""The full signal pipeline in polars (ours) vs the same computation in pandas.

A synthetic panel: N signals (default 10 million) over 500 tickers and 10 years of sessions.
Both sides do the same work: align each signal to its first tradable session, aggregate
confidence-weighted sentiment per (ticker, session) with counts, novelty, event types and the
latest publication time, carry it with exponential decay across sessions, rank across tickers
per session, compute open-to-open forward returns, and the daily rank IC.
Each side runs in its own subprocess so its peak memory (max RSS) is its own.

Run: `python bench/bench_pipeline.py [SIGNALS]`.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TICKERS, YEARS, HALF_LIFE = 500, 10, 2.0


def make_inputs(n: int, folder: Path) -> None:
    import polars as pl

    from data.calendar import get_calendar

    cal = get_calendar("XNYS")
    sessions = [d for d in cal.sessions_between(np.datetime64("2014-01-02").astype(object),
                                                np.datetime64("2023-12-29").astype(object))]
    rng = np.random.default_rng(0)
    tickers = np.array([f"T{i:03d}" for i in range(TICKERS)])
    k = len(sessions)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (k, TICKERS)), axis=0))
    opens = close * np.exp(rng.normal(0, 0.005, (k, TICKERS)))
    pl.DataFrame({
        "ticker": np.repeat(tickers, k), "session": sessions * TICKERS,
        "open": opens.T.ravel(), "close": close.T.ravel(), "adj_close": close.T.ravel(),
        "volume": np.full(k * TICKERS, 1e6),
    }).write_parquet(folder / "prices.parquet")
    start = np.datetime64("2014-01-01T00:00:00", "us").astype(np.int64)
    span = int(YEARS * 365.25 * 86400 * 1e6) - 86400 * 10**6 * 5
    pl.DataFrame({
        "doc_id": np.arange(n).astype(str), "section": "",
        "ticker": tickers[rng.integers(0, TICKERS, n)],
        "published_at": pl.Series(start + rng.integers(0, span, n)).cast(
            pl.Datetime("us", "UTC")),
        "sentiment": rng.uniform(-1, 1, n), "confidence": rng.uniform(0, 1, n),
        "event_type": "other", "story": np.arange(n).astype(str),
    }).write_parquet(folder / "signals.parquet")


def run_polars(folder: Path) -> dict:
    import polars as pl

    from data.calendar import get_calendar
    from quant.evaluate import daily_ic
    from quant.pipeline import PanelParams, build_panel

    signals = pl.read_parquet(folder / "signals.parquet")
    prices = pl.read_parquet(folder / "prices.parquet")
    cal = get_calendar("XNYS")
    started = time.perf_counter()
    panel = build_panel(signals, prices, PanelParams(half_life=HALF_LIFE, horizons=(1,),
                                                     min_history=0), cal)
    rows = panel.filter(pl.col("sentiment_rank").is_not_null() & pl.col("fwd_ret_1").is_not_null())
    ic = daily_ic(rows, "sentiment_rank", "fwd_ret_1")
    return {"seconds": time.perf_counter() - started, "mean_rank_ic": float(ic["rank_ic"].mean()),
            "rows": panel.height}


def run_pandas(folder: Path) -> dict:
    import pandas as pd

    from data.calendar import get_calendar

    signals = pd.read_parquet(folder / "signals.parquet")
    prices = pd.read_parquet(folder / "prices.parquet")
    cal = get_calendar("XNYS")
    started = time.perf_counter()
    stamps = signals["published_at"].dt.tz_convert(None).to_numpy().astype("datetime64[us]")
    index = np.searchsorted(cal.opens, stamps, side="right")
    signals["session"] = pd.to_datetime(cal.sessions[index])
    signals["weighted"] = signals["sentiment"] * signals["confidence"]
    # The same per-day facts the polars pipeline keeps: counts, novelty, events, latest time.
    first_seen = signals.groupby("story")["published_at"].transform("min")
    signals["novel_story"] = signals["story"].where(signals["published_at"] == first_seen)
    grouped_days = signals.groupby(["ticker", "session"])
    daily = grouped_days.agg(weighted=("weighted", "sum"), confidence=("confidence", "sum"),
                             n_docs=("doc_id", "nunique"), novelty=("novel_story", "nunique"),
                             latest=("published_at", "max"))
    daily["event_types"] = grouped_days["event_type"].agg(lambda e: sorted(set(e)))
    prices["session"] = pd.to_datetime(prices["session"])
    panel = prices.merge(daily.reset_index(), on=["ticker", "session"], how="left")
    panel[["weighted", "confidence"]] = panel[["weighted", "confidence"]].fillna(0.0)
    panel = panel.sort_values(["ticker", "session"])
    alpha = 1 - 0.5 ** (1 / HALF_LIFE)
    grouped = panel.groupby("ticker", sort=False)
    flow = grouped["weighted"].transform(lambda s: s.ewm(alpha=alpha, adjust=True).mean())
    weight = grouped["confidence"].transform(lambda s: s.ewm(alpha=alpha, adjust=True).mean())
    panel["sentiment"] = (flow / weight).where(weight > 0)
    panel["adj_open"] = panel["open"] * panel["adj_close"] / panel["close"]
    panel["fwd_ret_1"] = grouped["adj_open"].shift(-1) / panel["adj_open"] - 1
    panel["rank"] = panel.groupby("session")["sentiment"].rank(pct=True)
    rows = panel.dropna(subset=["rank", "fwd_ret_1"])
    rows = rows.assign(r1=rows.groupby("session")["rank"].rank(),
                       r2=rows.groupby("session")["fwd_ret_1"].rank())
    ic = rows.groupby("session")[["r1", "r2"]].corr().xs("r1", level=1)["r2"]
    return {"seconds": time.perf_counter() - started, "mean_rank_ic": float(ic.mean()),
            "rows": len(panel)}


def child(kind: str, folder: str) -> None:
    result = (run_polars if kind == "polars" else run_pandas)(Path(folder))
    result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(json.dumps(result))


def main(n: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        make_inputs(n, Path(tmp))
        results = {}
        for kind in ("polars", "pandas"):
            done = subprocess.run([sys.executable, __file__, "--child", kind, tmp],
                                  capture_output=True, text=True, check=True)
            results[kind] = json.loads(done.stdout.strip().splitlines()[-1])
            r = results[kind]
            print(f"{kind:7s} {r['seconds']:7.1f} s  peak RSS {r['peak_rss_gb']:.2f} GB  "
                  f"mean rank IC {r['mean_rank_ic']:+.4f}  ({r['rows']:,} panel rows)")
        ratio = results["pandas"]["seconds"] / results["polars"]["seconds"]
        print(f"{n:,} signals, {TICKERS} tickers, {YEARS} years: polars is {ratio:.1f}x pandas")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000)
