"""Reward fine-tuning from market outcomes: a GRPO-style stage after supervised fine-tuning.

The policy is the adapter's sentiment head, a distribution over bearish/neutral/bullish for a
post. For each training post a group of G labels is sampled; a label's reward is its position
(-1, 0, +1) times the realised forward return of the post's ticker, measured point-in-time from
the open of the first session in which the post was tradable (the pipeline's own alignment and
open-to-open returns); advantages are the rewards standardised within the group (GRPO: no value
model); the loss is -advantage * log-probability plus a KL penalty to the supervised head.

Train on the first part of the period, evaluate on the later part, never the other way round:
the evaluation is the pipeline's rank IC of the per-(ticker, session) signal, for the
supervised head and for the rewarded head, on the same held-out posts.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from datetime import date

import polars as pl
import torch
import torch.nn.functional as F

from llm import adapter as adapters
from llm.errors import ModelError
from llm.finetune import FinetuneSettings, Log, batches, pooled, prompt_prefix
from llm.load import LoadedModel
from llm.prefix import SharedPrefix

POSITION = torch.tensor([-1.0, 0.0, 1.0])  # bearish, neutral, bullish


@dataclass(frozen=True)
class RewardSettings:
    split: date = date(2014, 9, 1)   # train before, evaluate from
    horizon: int = 1                 # sessions of forward return in the reward
    train_posts: int = 6000
    test_posts: int = 6000
    group: int = 8                   # labels sampled per post
    batch_size: int = 64
    steps: int = 300
    lr: float = 1e-3
    kl: float = 0.05                 # weight of KL(policy || supervised head)
    seed: int = 0


def outcomes(posts: pl.DataFrame, prices: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """Each post with its tradable session and the forward return from that session's open
    (null where the price history cannot say), through the pipeline's own panel."""
    from data.calendar import get_calendar
    from quant.pipeline import PanelParams, align, build_panel, no_signals

    calendar = get_calendar("XNYS")
    panel = build_panel(no_signals(), prices, PanelParams(horizons=(horizon,), min_history=0),
                        calendar)
    aligned = align(posts.rename({"created_at": "published_at"}), calendar)
    return aligned.join(panel.select("ticker", "session", f"fwd_ret_{horizon}"),
                        on=["ticker", "session"], how="left")


def features(loaded: LoadedModel, texts: list[str], log: Log, batch_size: int = 64
             ) -> torch.Tensor:
    """Pooled hidden states at the head's layer, in the score prompt (shared prefix)."""
    if loaded.head is None:
        raise ModelError(f"{loaded.model_id} has no sentiment head: load a model with an "
                         "adapter (e.g. default) for the reward stage")
    runner = SharedPrefix(loaded.model, prompt_prefix(loaded.tokenizer))
    data = batches(loaded.tokenizer, pl.DataFrame({"text": texts}),
                   FinetuneSettings(batch_size=batch_size))
    out = torch.zeros(len(texts), loaded.config.hidden_size)
    began = time.perf_counter()
    with torch.no_grad():
        for n, batch in enumerate(data, 1):
            hidden = runner.run(runner.embed(batch.ids), 0, loaded.head_layer)
            out[batch.rows] = pooled(hidden, batch.mask).float()
            if n % 20 == 0:
                log(f"features {n}/{len(data)} batches, "
                    f"{n * batch_size / (time.perf_counter() - began):.1f} posts/s")
    return out


def grpo(head: adapters.SentimentHead, x: torch.Tensor, returns: torch.Tensor,
         settings: RewardSettings, log: Log) -> tuple[adapters.SentimentHead, list[dict]]:
    """Group-relative policy optimisation of a copy of `head`; returns it and a log."""
    generator = torch.Generator().manual_seed(settings.seed)
    policy = copy.deepcopy(head).train()
    for p in policy.parameters():
        p.requires_grad_(True)
    with torch.no_grad():
        reference = head(x).log_softmax(-1)
    scale = returns.std().clamp(min=1e-8)
    optimiser = torch.optim.AdamW(policy.parameters(), lr=settings.lr)
    history = []
    for step in range(1, settings.steps + 1):
        rows = torch.randint(len(x), (settings.batch_size,), generator=generator)
        logp = policy(x[rows]).log_softmax(-1)                               # (B, 3)
        actions = torch.multinomial(logp.exp().detach(), settings.group, replacement=True,
                                    generator=generator)                      # (B, G)
        rewards = POSITION[actions] * (returns[rows] / scale).unsqueeze(1)    # (B, G)
        advantage = (rewards - rewards.mean(1, keepdim=True)) / (
            rewards.std(1, keepdim=True) + 1e-6)
        chosen = logp.gather(1, actions)
        kl = F.kl_div(reference[rows], logp, log_target=True, reduction="batchmean")
        loss = -(advantage * chosen).mean() + settings.kl * kl
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 50 == 0 or step == settings.steps:
            entry = {"step": step, "reward": round(float(rewards.mean()), 5),
                     "kl": round(float(kl.detach()), 5)}
            history.append(entry)
            log(f"grpo step {step}: mean reward {entry['reward']:+.4f}, KL {entry['kl']:.4f}")
    return policy.eval(), history


def signal_ic(posts: pl.DataFrame, probs: torch.Tensor, prices: pl.DataFrame,
              horizons: tuple[int, ...] = (1, 5)) -> dict:
    """Rank IC of the posts' sentiment, aggregated per (ticker, session) by the pipeline."""
    from quant.evaluate import evaluate_signal
    from quant.pipeline import PanelParams, build_panel

    p = probs.numpy()
    signals = posts.select(
        doc_id=pl.col("doc_id"), ticker="ticker", published_at=pl.col("created_at"),
        sentiment=pl.Series(p[:, 2] - p[:, 0]), confidence=pl.lit(1.0),
        event_type=pl.lit("other"), story=pl.col("doc_id"))
    panel = build_panel(signals, prices, PanelParams(horizons=horizons))
    report = evaluate_signal(panel, "sentiment_z", horizons)
    out = {}
    for h in horizons:
        entry = report["horizons"][h]
        out[f"h{h}"] = {"rank_ic_mean": entry["rank_ic"]["mean"],
                        "rank_ic_t": entry["rank_ic"]["t_stat"],
                        "sessions": entry["rank_ic"]["n"], "pooled_ic": entry["pooled_ic"]["ic"],
                        "pooled_ic_95": [entry["pooled_ic"]["low"], entry["pooled_ic"]["high"]],
                        "rows": entry["rows"]}
    return out


def reward_stage(loaded: LoadedModel, posts: pl.DataFrame, prices: pl.DataFrame,
                 settings: RewardSettings, log: Log = print) -> tuple[adapters.SentimentHead,
                                                                      dict]:
    """Train on posts before `split`, evaluate both heads on posts from `split` on."""
    began = time.perf_counter()
    ret = f"fwd_ret_{settings.horizon}"
    posts = posts.with_columns(doc_id=pl.concat_str(
        "ticker", pl.col("created_at").cast(pl.String), "text").hash().cast(pl.String))
    known = outcomes(posts, prices, settings.horizon)
    split = pl.lit(settings.split).cast(pl.Date)
    train = known.filter((pl.col("session") < split) & pl.col(ret).is_not_null()
                         & pl.col(ret).is_finite())
    # A training post's outcome must be known before the test period starts.
    test = known.filter(pl.col("published_at").dt.date() >= split)
    if train.height < 100 or test.height < 100:
        raise ModelError(f"too few posts around the split {settings.split}: {train.height} "
                         f"train, {test.height} test")
    train = train.sample(min(settings.train_posts, train.height), seed=settings.seed)
    test = test.sample(min(settings.test_posts, test.height), seed=settings.seed)
    x_train = features(loaded, train["text"].to_list(), log)
    x_test = features(loaded, test["text"].to_list(), log)
    head = loaded.head
    policy, history = grpo(head, x_train, torch.tensor(train[ret].to_numpy(), dtype=torch.float32),
                           settings, log)
    test_posts = test.rename({"published_at": "created_at"})
    with torch.no_grad():
        supervised = signal_ic(test_posts, head(x_test).softmax(-1), prices)
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
    posts = pl.read_parquet(posts_path)
    prices = pl.read_parquet(prices_path)
    if "date" in prices.columns and "session" not in prices.columns:
        prices = prices.rename({"date": "session"})
    for frame, path, needed in ((posts, posts_path, ("ticker", "created_at", "text")),
                                (prices, prices_path, ("ticker", "session", "open", "close",
                                                       "adj_close", "volume"))):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ModelError(f"{path}: missing columns {missing} (has {frame.columns})")
    if posts["created_at"].dtype.time_zone is None:
        raise ModelError(f"{posts_path}: created_at has no time zone; store UTC timestamps")
    posts = posts.select("ticker", pl.col("created_at").dt.convert_time_zone("UTC")
                         .dt.cast_time_unit("us"), "text")
    return posts, prices.select("ticker", pl.col("session").cast(pl.Date), "open", "close",
                                "adj_close", "volume")


def train_reward_adapter(loaded: LoadedModel, posts_path: str, prices_path: str, out: str,
                         settings: RewardSettings, command: str = "", log: Log = print) -> dict:
    """Run the stage and write a copy of the model's adapter with the rewarded head."""
    from pathlib import Path

    if not loaded.adapter:
        raise ModelError(f"{loaded.model_id} has no adapter: the reward stage continues a "
                         "supervised one (load `default` or pass --adapter)")
    posts, prices = read_posts_and_prices(posts_path, prices_path)
    policy, report = reward_stage(loaded, posts, prices, settings, log)
    source = adapters.read(loaded.adapter)
    tensors = {k: v for k, v in source.tensors.items() if not k.startswith("head.")}
    tensors |= {f"head.{k}": v.detach().float() for k, v in policy.state_dict().items()}
    meta = {k: v for k, v in source.meta.items() if k not in ("sha256", "format")}
    meta |= {"name": Path(out).name, "reward_stage": report | {"command": command,
                                                               "from_adapter": loaded.adapter}}
    return adapters.save(Path(out), tensors, meta).meta
