from datetime import date, datetime, timezone

import numpy as np
import polars as pl
import pytest
import torch

import llm
from llm.model import adapter as adapters
from llm.train.finetune import FinetuneSettings, finetune
from llm.train.grpo import GrpoSettings
from quant.text.reward import RewardSettings, outcomes, reward_stage
from tests.llm.test_finetune import labelled
from tests.quant.helpers import calendar_prices


def test_outcomes_use_the_first_tradable_open():
    prices = calendar_prices(["AAA"], date(2014, 1, 1), date(2014, 1, 31))
    friday_evening = datetime(2014, 1, 10, 21, 30, tzinfo=timezone.utc)  # after the close
    posts = pl.DataFrame({"ticker": ["AAA"], "created_at": [friday_evening], "text": ["x"]}
                         ).with_columns(pl.col("created_at").dt.cast_time_unit("us"))
    row = outcomes(posts, prices, 1).row(0, named=True)
    assert row["session"] == date(2014, 1, 13)  # Monday
    opens = dict(zip(prices["session"], prices["open"], strict=True))
    assert row["fwd_ret_1"] == pytest.approx(opens[date(2014, 1, 14)] / opens[date(2014, 1, 13)]
                                             - 1)


def test_reward_stage_trains_before_the_split_and_evaluates_after(tiny_qwen, tmp_path):
    loaded = llm.load(str(tiny_qwen), "fp32")
    settings = FinetuneSettings(start=1, stop=2, rank=2, epochs=1, batch_size=8)
    tensors, _ = finetune(loaded, labelled(), {}, settings, loaded.base_id, log=lambda _: None)
    adapters.save(tmp_path / "a", tensors, {"name": "a", "base_id": loaded.base_id, "start": 1,
                                            "stop": 2, "rank": 2, "alpha": settings.alpha})
    adapted = llm.load(str(tiny_qwen), "fp32", adapter=tmp_path / "a")
    tickers = [f"T{i}" for i in range(6)]
    prices = calendar_prices(tickers, date(2014, 1, 1), date(2014, 12, 31))
    rng = np.random.default_rng(1)
    texts = [t for ts in {"a": ["shares rise", "stock falls", "in line results"]}.values()
             for t in ts]
    n = 400
    stamps = [datetime(2014, 1, 2, 15, tzinfo=timezone.utc).timestamp()
              + float(s) for s in rng.uniform(0, 360 * 86400, n)]
    posts = pl.DataFrame({
        "ticker": rng.choice(tickers, n),
        "created_at": [datetime.fromtimestamp(s, timezone.utc) for s in stamps],
        "text": rng.choice(texts, n)}).with_columns(pl.col("created_at").dt.cast_time_unit("us"))
    reward_settings = RewardSettings(split=date(2014, 9, 1), train_posts=300, test_posts=300,
                                     grpo=GrpoSettings(steps=20, batch_size=16, group=4))
    policy, report = reward_stage(adapted, posts, prices, reward_settings, log=lambda _: None)
    assert report["train_period"][1] < "2014-09-01" <= report["test_period"][0]
    for name in ("supervised_ic", "rewarded_ic"):
        assert set(report[name]) == {"h1", "h5"}
    assert report["history"][-1]["step"] == 20
    assert any(not torch.equal(a, b) for a, b in zip(policy.state_dict().values(),
                                                     adapted.head.state_dict().values(),
                                                     strict=True))
