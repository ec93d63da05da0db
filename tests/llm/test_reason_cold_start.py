import polars as pl
import pytest
import torch

import llm
from llm.infer.engine import DocInput, Engine
from llm.infer.grammar import new_matcher
from llm.infer.reason import label_of
from llm.model import adapter as adapters
from llm.schema import ReasonOutput
from llm.train.completions import completion_logprobs
from llm.train.reason_cold_start import cold_start, target_completion, teacher_batch
from llm.train.reason_train import ReasonTrainSettings, attach_attention_deltas, reason_train

TEXT = "Ally Financial pulls its outlook for 2024 as loan losses mount across its auto book"


@pytest.mark.parametrize("label", ["bearish", "neutral", "bullish"])
def test_the_taught_completion_reads_back_as_its_label(label):
    completion, untrained = target_completion(label, "ALLY", TEXT, 83)
    reasoning, _, payload = completion.partition("\nJSON: ")
    assert reasoning == f" The text reads {label} for ALLY."
    output = ReasonOutput.model_validate_json(payload)
    assert label_of(output.sentiment / 100) == label and output.confidence == 83
    assert TEXT.startswith(output.rationale) and len(output.rationale) <= 60
    assert not output.rationale.endswith(" ")      # cut at a word boundary
    [(lo, hi)] = untrained
    assert completion[lo:hi] == '"other"'           # the event type's value carries no loss
    assert target_completion(label, "", "x", 50)[0].startswith(f" The text reads {label}.")


@pytest.fixture(scope="module")
def loaded(tiny_qwen):
    return llm.load(str(tiny_qwen), "fp32")


def test_the_reason_grammar_accepts_the_taught_completion(loaded):
    tokenizer = loaded.tokenizer
    completion, _ = target_completion("bullish", "AAPL", 'Apple "beats" estimates', 61)
    matcher = new_matcher(tokenizer)
    for token in tokenizer(completion, add_special_tokens=False)["input_ids"]:
        assert matcher.consume_token(token), tokenizer.decode([token])
    assert matcher.is_accepting()


def test_the_teacher_batch_is_the_reason_prompt_then_the_completion(loaded):
    engine = Engine(loaded)
    docs = [DocInput("AAPL", "Apple beats."), DocInput("", "A much longer text " * 5)]
    taught = [target_completion("bullish", d.ticker, d.text, 70) for d in docs]
    batch, weights = teacher_batch(engine, docs, taught)
    user, cues, _ = engine.prompt_parts("reason")
    for row, (prompt, *_) in enumerate(engine.build_prompts(docs, user, cues)):
        ids = batch.ids[row][batch.mask[row].bool()].tolist()
        assert ids[:len(prompt)] == prompt
        assert engine.tokenizer.decode(ids[len(prompt):]) == taught[row][0]
    completion_mask = batch.mask[:, batch.prompt_length:]
    assert ((weights > 0) <= completion_mask.bool()).all()    # pads carry no loss
    untrained = completion_mask.sum(1) - (weights > 0).sum(1)
    assert (untrained >= 1).all()                              # the event type's tokens
    row = batch.ids[0, batch.prompt_length:][(completion_mask[0] > 0) & (weights[0] == 0)]
    assert "other" in engine.tokenizer.decode(row)


def test_the_cold_start_makes_the_taught_completions_likelier(loaded):
    engine = Engine(loaded)
    train = pl.DataFrame({"text": ["Apple beats estimates.", "Microsoft misses.", "Flat.",
                                   "Up big."] * 2,
                          "label": ["bullish", "bearish", "neutral", "bullish"] * 2,
                          "entity": ["AAPL", "MSFT", "", "X"] * 2})
    docs = [DocInput(e, t) for e, t in zip(train["entity"], train["text"], strict=True)]
    batch, weights = teacher_batch(engine, docs, [
        target_completion(label, d.ticker, d.text, 50)
        for d, label in zip(docs, train["label"], strict=True)])
    deltas = attach_attention_deltas(loaded.model, 1, rank=4, alpha=8.0)
    try:
        def likelihood() -> float:
            with torch.no_grad():
                policy, _ = completion_logprobs(loaded.model, 1, batch, deltas, None)
            return float((policy * weights).sum() / weights.sum())

        before = likelihood()
        report = cold_start(engine, deltas, 1, train, minutes=5, batch_size=4, lr=1e-2,
                            seed=0, log=lambda _: None)
        assert report["steps"] == 2 and report["documents"] == 8
        assert likelihood() > before + 0.05
    finally:
        adapters.remove_low_rank(loaded.model, deltas)


def test_reason_training_reports_its_cold_start(loaded):
    settings = ReasonTrainSettings(max_new_tokens=24, group=2, prompts=2, max_steps=1, start=1,
                                   cold_start_minutes=5, cold_start_batch=2)
    train = pl.DataFrame({"text": ["Apple beats.", "Microsoft misses.", "Flat.", "Up."],
                          "label": ["bullish", "bearish", "neutral", "bullish"],
                          "entity": ["AAPL", "MSFT", "", "X"]})
    _, report = reason_train(loaded, train, settings, rank=4, alpha=8.0, log=lambda _: None)
    assert report["cold_start"]["steps"] == 2 and report["steps"] == 1
