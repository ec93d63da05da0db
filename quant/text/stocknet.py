"""The StockNet movement benchmark (Xu and Cohen, ACL 2018), run point-in-time.

The task: for a stock and a target session d, is the adjusted close up by more than 0.55% on
the previous close (1), or down by 0.5% or more (0)? Sessions in between are left out. Inputs
are the posts of a lag window of five sessions and the prices before d. Splits are by target
date: train 2014-01-01 .. 2015-08-01, development 2015-08-01 .. 2015-10-01, test
2015-10-01 .. 2016-01-01 (end dates exclusive).

What this version does not take from the paper: its windows are calendar days, so a post
written on the evening of d-1, after that session's close, counts for a move that started at
that close. Here a post counts for d only when it was published before the close of d-1 (the
decision time; checked), in the window of the five sessions before. Price features are the
registered ones (`quant.features`), which read closes up to d-1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from data.calendar import TradingCalendar
from data.errors import DataError
from quant import features as feats
from quant.learned import LIGHTGBM
from quant.pipeline import LookAheadError, PanelParams, build_panel, no_signals, with_tone

UP, DOWN = 0.0055, -0.005
LAG = 5
SPLITS = {"train": (date(2014, 1, 1), date(2015, 8, 1)),
          "dev": (date(2015, 8, 1), date(2015, 10, 1)),
          "test": (date(2015, 10, 1), date(2016, 1, 1))}
TEXT = ("posts", "tone", "bullish", "bearish", "confidence", "dispersion", "posts_last",
        "tone_last")
PRICE = tuple(feats.names("price"))


def movement_labels(prices: pl.DataFrame) -> pl.DataFrame:
    """ticker, session (the target day), movement (close to close, adjusted), label (1 up,
    0 down, null in between) and split, for every price row after a ticker's first."""
    move = pl.col("adj_close") / pl.col("adj_close").shift(1).over(
        "ticker", order_by="session") - 1
    split = pl.lit(None, pl.String)
    for name, (start, end) in reversed(SPLITS.items()):
        split = pl.when(pl.col("session").is_between(start, end, closed="left")).then(
            pl.lit(name)).otherwise(split)
    return (prices.sort("ticker", "session").with_columns(movement=move)
            .filter(pl.col("movement").is_not_null())
            .with_columns(label=pl.when(pl.col("movement") > UP).then(1)
                          .when(pl.col("movement") <= DOWN).then(0), split=split)
            .select("ticker", "session", "movement", "label", "split"))


def window_text(signals: pl.DataFrame, calendar: TradingCalendar, lag: int = LAG
                ) -> pl.DataFrame:
    """Per (ticker, target session): the posts published before the previous session's close
    and after the close `lag + 1` sessions back; `_last` columns: the last session alone."""
    if signals.is_empty():
        return pl.DataFrame(schema={"ticker": pl.String, "session": pl.Date})
    published = signals["published_at"].dt.replace_time_zone(None).to_numpy().astype(
        "datetime64[us]")
    # The first session whose close is strictly after the post: it counts from the next one.
    closed = np.searchsorted(calendar.closes, published, side="right")
    sessions = pl.Series(calendar.sessions).cast(pl.Date)
    closes = pl.Series(calendar.closes).dt.replace_time_zone("UTC")
    spread = (with_tone(signals).with_columns(closed=pl.Series(closed)).join(
        pl.DataFrame({"k": list(range(1, lag + 1))}), how="cross")
        .with_columns(target=pl.col("closed") + pl.col("k"))
        .filter(pl.col("target") < len(sessions)))
    last = pl.col("k") == 1
    out = spread.group_by("ticker", "target").agg(
        posts=pl.len(), tone=pl.col("sentiment").mean(), bullish=pl.col("p_bullish").mean(),
        bearish=pl.col("p_bearish").mean(), confidence=pl.col("confidence").mean(),
        dispersion=pl.col("sentiment").std(), posts_last=last.sum(),
        tone_last=pl.col("sentiment").filter(last).mean(),
        latest_published_at=pl.col("published_at").max())
    out = out.with_columns(session=sessions.gather(out["target"]),
                           decision_at=closes.gather(out["target"] - 1)).drop("target")
    late = out.filter(pl.col("latest_published_at") >= pl.col("decision_at"))
    if late.height:
        raise LookAheadError(f"look-ahead: {late.height} StockNet windows use posts published "
                             "at or after the close they are decided at")
    return out


def examples(signals: pl.DataFrame, prices: pl.DataFrame, calendar: TradingCalendar
             ) -> pl.DataFrame:
    """Every labelled (ticker, target session) with its text and price features and split."""
    panel = build_panel(no_signals(), prices, PanelParams(min_history=0, horizons=(1,)),
                        calendar)
    price = feats.with_features(panel, PRICE).select("ticker", "session", *PRICE)
    text = window_text(signals, calendar)
    labelled = movement_labels(prices).filter(pl.col("label").is_not_null()
                                              & pl.col("split").is_not_null())
    return (labelled.join(price, on=["ticker", "session"], how="left")
            .join(text.drop("latest_published_at", "decision_at"), on=["ticker", "session"],
                  how="left")
            .with_columns(pl.col("posts", "posts_last").fill_null(0)))


@dataclass(frozen=True)
class Score:
    model: str
    inputs: str
    accuracy: float
    mcc: float
    examples: int


def _fit_predict(kind: str, train: pl.DataFrame, test: pl.DataFrame, columns: list[str],
                 seed: int = 0) -> np.ndarray:
    x_train, x_test = (f.select(columns).to_numpy().astype(float) for f in (train, test))
    y = train["label"].to_numpy()
    if kind == "logistic":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        # Missing (no posts, too little history): the training mean; 0 when all missing.
        mean = train.select(columns).mean().fill_null(0.0).to_numpy().astype(float)[0]
        x_train, x_test = (np.where(np.isnan(x), mean, x) for x in (x_train, x_test))
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    else:
        import lightgbm as lgb

        model = lgb.LGBMClassifier(**LIGHTGBM, random_state=seed)
    model.fit(x_train, y)
    return model.predict(x_test)


def benchmark(data: pl.DataFrame, evaluate_on: str = "dev", seed: int = 0) -> list[Score]:
    """Accuracy and MCC on `evaluate_on` of models trained on the train split: the majority
    class, then logistic regression and LightGBM on price, text, and text + price."""
    from sklearn.metrics import accuracy_score, matthews_corrcoef

    train = data.filter(pl.col("split") == "train")
    test = data.filter(pl.col("split") == evaluate_on)
    if train.is_empty() or test.is_empty():
        raise DataError(f"no labelled examples in the train or {evaluate_on} split; ingest "
                        "StockNet's prices and posts for 2014-2015 and score them")
    truth = test["label"].to_numpy()
    majority = int(train["label"].mean() >= 0.5)
    scores = [Score("majority class", "-", float((truth == majority).mean()), 0.0, len(truth))]
    for kind in ("logistic", "lightgbm"):
        for inputs, columns in (("price", PRICE), ("text", TEXT), ("text + price",
                                                                    TEXT + PRICE)):
            predicted = _fit_predict(kind, train, test, list(columns), seed)
            scores.append(Score(kind, inputs, float(accuracy_score(truth, predicted)),
                                float(matthews_corrcoef(truth, predicted)), len(truth)))
    return scores
