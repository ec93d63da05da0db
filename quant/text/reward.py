"""The reward stage: a sentiment head fine-tuned on market outcomes, after supervised training.

A post's action (bearish, neutral, bullish) earns its position (-1, 0, +1) times the realised
forward return of the post's ticker, measured point-in-time from the open of the first session
in which the post was tradable (the pipeline's own alignment and open-to-open returns). That
payoff drives `llm.train.grpo.grpo`; the model layer never sees a price.

Train on the first part of the period, evaluate on the later part, never the other way round:
the evaluation is the pipeline's rank IC of the per-(ticker, session) signal, for the
supervised head and for the rewarded head, on the same held-out posts.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import polars as pl
import torch

from data.calendar import get_calendar
from data.errors import DataError
from llm.errors import ModelError
from llm.model import adapter as adapters
from llm.model.loaded import LoadedModel
from llm.settings import Log
from llm.train.grpo import features, grpo
from quant.evaluate import evaluate_signal
from quant.pipeline import PanelParams, align, build_panel, no_signals
from quant.settings import RewardSettings

POSITION = torch.tensor([-1.0, 0.0, 1.0])  # bearish, neutral, bullish


def outcomes(posts: pl.DataFrame, prices: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """Each post with its tradable session and the forward return from that session's open
    (null where the price history cannot say), through the pipeline's own panel."""
    calendar = get_calendar("XNYS")
    panel = build_panel(no_signals(), prices, PanelParams(horizons=(horizon,), min_history=0),
                        calendar)
    aligned = align(posts.rename({"created_at": "published_at"}), calendar)
    return aligned.join(panel.select("ticker", "session", f"fwd_ret_{horizon}"),
                        on=["ticker", "session"], how="left")


def payoff(returns: torch.Tensor) -> torch.Tensor:
    """(N, 3): what each position earns on each post, in units of the returns' spread."""
    return POSITION * (returns / returns.std().clamp(min=1e-8)).unsqueeze(1)


def signal_ic(posts: pl.DataFrame, probs: torch.Tensor, prices: pl.DataFrame,
              horizons: tuple[int, ...] = (1, 5)) -> dict:
    """Rank IC of the posts' sentiment, aggregated per (ticker, session) by the pipeline."""
    p = probs.numpy()
    signals = posts.select(
        doc_id=pl.col("doc_id"), ticker="ticker", published_at=pl.col("created_at"),
        sentiment=pl.Series(p[:, 2] - p[:, 0]), confidence=pl.lit(1.0),
        event_type=pl.lit("other"), story=pl.col("doc_id"))
    evaluation = evaluate_signal(build_panel(signals, prices, PanelParams(horizons=horizons)),
                                 "sentiment_z", horizons)
    return {f"h{h}": evaluation.horizon(h).headline() for h in horizons}


def split_posts(posts: pl.DataFrame, prices: pl.DataFrame, settings: RewardSettings
                ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(train, test): posts whose outcome is known before the split, posts from it on."""
    ret = f"fwd_ret_{settings.horizon}"
    posts = posts.with_columns(doc_id=pl.concat_str(
        "ticker", pl.col("created_at").cast(pl.String), "text").hash().cast(pl.String))
    known = outcomes(posts, prices, settings.horizon)
    split = pl.lit(settings.split).cast(pl.Date)
    train = known.filter((pl.col("session") < split) & pl.col(ret).is_not_null()
                         & pl.col(ret).is_finite())
    test = known.filter(pl.col("published_at").dt.date() >= split)
    if train.height < 100 or test.height < 100:
        raise DataError(f"too few posts around the split {settings.split}: {train.height} "
                          f"train, {test.height} test; choose a split inside the posts' period")
    return (train.sample(min(settings.train_posts, train.height), seed=settings.seed),
            test.sample(min(settings.test_posts, test.height), seed=settings.seed))


def reward_stage(loaded: LoadedModel, posts: pl.DataFrame, prices: pl.DataFrame,
                 settings: RewardSettings, log: Log = print
                 ) -> tuple[adapters.SentimentHead, dict]:
    """Train on posts before `split`, evaluate both heads on posts from `split` on."""
    began = time.perf_counter()
    train, test = split_posts(posts, prices, settings)
    x_train = features(loaded, train["text"].to_list(), log)
    x_test = features(loaded, test["text"].to_list(), log)
    returns = torch.tensor(train[f"fwd_ret_{settings.horizon}"].to_numpy(), dtype=torch.float32)
    policy, history = grpo(loaded.head, x_train, payoff(returns), settings.grpo, log)
    test_posts = test.rename({"published_at": "created_at"})
    with torch.no_grad():
        supervised = signal_ic(test_posts, loaded.head(x_test).softmax(-1), prices)
        rewarded = signal_ic(test_posts, policy(x_test).softmax(-1), prices)
    report = {"settings": asdict(settings) | {"split": str(settings.split)},
              "train_posts": train.height, "test_posts": test.height,
              "train_period": [str(train["session"].min()), str(train["session"].max())],
              "test_period": [str(test["session"].min()), str(test["session"].max())],
              "history": history, "supervised_ic": supervised, "rewarded_ic": rewarded,
              "seconds": round(time.perf_counter() - began, 1)}
    return policy, report


def read_posts_and_prices(posts_path: str, prices_path: str) -> tuple[pl.DataFrame,
                                                                        pl.DataFrame]:
    """Posts (ticker, created_at, text) and daily prices (ticker, date or session, open,
    close, adj_close, volume) from Parquet files, e.g. StockNet's."""
    posts, prices = pl.read_parquet(posts_path), pl.read_parquet(prices_path)
    if "date" in prices.columns and "session" not in prices.columns:
        prices = prices.rename({"date": "session"})
    for frame, path, needed in ((posts, posts_path, ("ticker", "created_at", "text")),
                                (prices, prices_path, ("ticker", "session", "open", "close",
                                                       "adj_close", "volume"))):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise DataError(f"{path}: missing columns {missing} (has {frame.columns})")
    if posts["created_at"].dtype.time_zone is None:
        raise DataError(f"{posts_path}: created_at has no time zone; store UTC timestamps")
    posts = posts.select("ticker", pl.col("created_at").dt.convert_time_zone("UTC")
                         .dt.cast_time_unit("us"), "text")
    return posts, prices.select("ticker", pl.col("session").cast(pl.Date), "open", "close",
                                "adj_close", "volume")


def train_reward_adapter(loaded: LoadedModel, posts_path: str, prices_path: str, out: str,
                         settings: RewardSettings, command: str = "", log: Log = print) -> dict:
    """Run the stage and write a copy of the model's adapter with the rewarded head."""
    if not loaded.adapter:
        raise ModelError(f"{loaded.model_id} has no adapter: the reward stage continues a "
                          "supervised one (load `default` or pass --adapter)")
    posts, prices = read_posts_and_prices(posts_path, prices_path)
    policy, report = reward_stage(loaded, posts, prices, settings, log)
    stage = report | {"command": command, "from_adapter": loaded.adapter}
    return adapters.save_with_head(loaded.adapter, policy, Path(out),
                                   {"name": Path(out).name, "reward_stage": stage}).meta
