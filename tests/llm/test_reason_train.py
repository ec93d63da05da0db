import polars as pl
import pytest
import torch

import llm
from llm.infer.engine import DocInput, Engine
from llm.model import adapter as adapters
from llm.train.completions import Completions, completion_logprobs, snapshot
from llm.train.reason_train import (
    ReasonTrainSettings,
    attach_attention_deltas,
    balanced_order,
    group_advantages,
    grpo_loss,
    reason_train,
    reward,
    sample,
)

SETTINGS = ReasonTrainSettings(max_new_tokens=40)
JSON = ('{{"sentiment": {s}, "confidence": 80, "event_type": "earnings", "horizon_days": 5, '
        '"rationale": "r"}}')


def completion(sentiment: int) -> str:
    return " Results beat.\nJSON: " + JSON.format(s=sentiment)


def test_the_reward_checks_format_label_and_length():
    right = reward(completion(90), True, "bullish", 20, SETTINGS)
    assert right["format"] == 1 and right["accuracy"] == 1
    assert right["reward"] == pytest.approx(0.5 + 1 - 0.2 * 20 / 40)
    wrong = reward(completion(-90), True, "bullish", 20, SETTINGS)
    assert wrong["format"] == 1 and wrong["accuracy"] == 0
    assert reward(completion(10), True, "neutral", 20, SETTINGS)["accuracy"] == 1
    # cut at the token cap, or not the schema: no format and no credit for the label
    assert reward(completion(90), False, "bullish", 40, SETTINGS)["format"] == 0
    invalid = reward(" x\nJSON: {\"sentiment\": 900}", True, "bullish", 10, SETTINGS)
    assert invalid["format"] == 0 and invalid["accuracy"] == 0
    shorter = reward(completion(90), True, "bullish", 10, SETTINGS)
    assert shorter["reward"] > right["reward"]


def test_documents_are_drawn_label_by_label():
    labels = ["neutral"] * 6 + ["bullish"] * 2 + ["bearish"] * 3
    order = balanced_order(labels, seed=0)
    assert len(order) == 6 and len(set(order)) == 6
    assert [labels[i] for i in order] == ["bearish", "bullish", "neutral"] * 2


def test_advantages_are_standardised_within_each_group():
    advantages = group_advantages(torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.5, 0.5, 0.5, 0.5]]))
    assert advantages[:4].tolist() == pytest.approx([0.866, -0.866, 0.866, -0.866], abs=1e-3)
    assert advantages[4:].abs().max() == 0  # nothing to learn from a group of equals


@pytest.fixture(scope="module")
def loaded(tiny_qwen):
    return llm.load(str(tiny_qwen), "fp32")


def planted(engine: Engine, texts: list[str]) -> Completions:
    """One prompt followed by each of `texts`, as `sample` would return them."""
    user, cues, _ = engine.prompt_parts("reason")
    prompt = engine.build_prompts([DocInput("AAPL", "Apple beats earnings estimates.")], user,
                           cues)[0][0]
    eos = engine.tokenizer.eos_token_id
    bodies = [engine.encode(t) + [eos] for t in texts]
    width = max(map(len, bodies))
    ids = torch.tensor([prompt + b + [eos] * (width - len(b)) for b in bodies])
    mask = torch.tensor([[1] * len(prompt) + [1] * len(b) + [0] * (width - len(b))
                         for b in bodies])
    return Completions(ids, mask, len(prompt), texts, [True] * len(texts))


def test_a_grpo_step_makes_the_rewarded_completion_more_likely(loaded):
    engine = Engine(loaded)
    deltas = attach_attention_deltas(loaded.model, 1, rank=4, alpha=8.0)
    try:
        texts = [completion(90), completion(-90)]
        batch = planted(engine, texts)
        rewards = torch.tensor([[reward(t, True, "bullish", 20, SETTINGS)["reward"]
                                 for t in texts]])
        completion_mask = batch.mask[:, batch.prompt_length:]

        def margin() -> float:
            policy, _ = completion_logprobs(loaded.model, 1, batch, deltas, None)
            total = (policy.detach() * completion_mask).sum(1)
            return float(total[0] - total[1])

        before = margin()
        reference = snapshot(deltas)
        optimiser = torch.optim.AdamW([p for d in deltas.values() for p in (d.A, d.B)],
                                      lr=1e-2)
        for _ in range(3):
            policy, fixed = completion_logprobs(loaded.model, 1, batch, deltas, reference)
            loss, _ = grpo_loss(policy, fixed, completion_mask, group_advantages(rewards),
                                kl=0.01)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        assert margin() > before + 0.1
    finally:
        adapters.remove_low_rank(loaded.model, deltas)


def test_the_reference_is_the_snapshot_and_the_layers_below_are_frozen(loaded):
    engine = Engine(loaded)
    batch = planted(engine, [completion(90)])
    with torch.no_grad():
        logits = loaded.model(batch.ids, attention_mask=batch.mask).logits
    expected = logits[:, batch.prompt_length - 1:-1].log_softmax(-1).gather(
        2, batch.ids[:, batch.prompt_length:, None]).squeeze(-1)
    deltas = attach_attention_deltas(loaded.model, 1, rank=4, alpha=8.0)
    try:
        starting = snapshot(deltas)  # every B zero: the starting model
        for delta in deltas.values():
            torch.nn.init.normal_(delta.B, std=0.5)
        moved = snapshot(deltas)
        policy, reference = completion_logprobs(loaded.model, 1, batch, deltas, starting)
        assert torch.allclose(reference, expected, atol=1e-4)
        assert not torch.allclose(policy, reference, atol=1e-3)
        # the policy is left as it was, and a later snapshot is a reference in its own right
        assert all(torch.equal(d.B, moved[n][1]) for n, d in deltas.items())
        _, again = completion_logprobs(loaded.model, 1, batch, deltas, moved)
        assert torch.allclose(again, policy.detach(), atol=1e-5)
        assert all(name.startswith("model.layers.1.self_attn.") for name in deltas)
    finally:
        adapters.remove_low_rank(loaded.model, deltas)


def test_sampling_and_a_short_run_end_to_end(loaded):
    settings = ReasonTrainSettings(max_new_tokens=24, group=3, prompts=2, max_steps=2, start=1,
                                   cold_start_minutes=0)
    engine = Engine(loaded, batch_size=6, max_new_tokens=24)
    docs = [DocInput("AAPL", "Apple beats estimates."), DocInput("MSFT", "Microsoft misses.")]
    batch = sample(engine, docs, settings)
    assert batch.ids.shape[0] == 6 and len(batch.texts) == len(batch.finished) == 6
    completion_mask = batch.mask[:, batch.prompt_length:]
    assert (completion_mask.sum(1) >= 1).all() and (completion_mask.sum(1) <= 24).all()
    train = pl.DataFrame({"text": ["Apple beats estimates.", "Microsoft misses.", "Flat.",
                                   "Up big.", "Down.", "Nothing new."],
                          "label": ["bullish", "bearish", "neutral"] * 2,
                          "entity": ["AAPL", "MSFT", "", "X", "Y", "Z"]})
    weights = {n: p.clone() for n, p in loaded.model.named_parameters()}
    tensors, report = reason_train(loaded, train, settings, rank=4, alpha=8.0,
                                   log=lambda _: None)
    assert report["steps"] == 2 and report["layers"] == [1, 2]
    assert report["history"][0]["format"] >= 0 and "kl" in report["history"][0]
    assert tensors and all(k.startswith("lora.model.layers.1.self_attn.") for k in tensors)
    assert all(v.shape[0 if k.endswith(".A") else 1] == 4 for k, v in tensors.items())
    # the model is left as it was loaded: no deltas, the same weights
    now = dict(loaded.model.named_parameters())
    assert set(now) == set(weights) and all(torch.equal(now[n], w) for n, w in weights.items())
