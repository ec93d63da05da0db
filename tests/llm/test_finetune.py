import json

import polars as pl
import pytest
import torch
import torch.nn.functional as F

import llm
from llm.errors import ModelError
from llm.infer.engine import DocInput, Engine
from llm.infer.prefix import SharedPrefix
from llm.model import adapter as adapters
from llm.train.finetune import FinetuneSettings, batches, finetune, pooled, prompt_prefix

TEXTS = {
    "bullish": ["Apple beats earnings estimates; shares rise.", "Stock rise on strong guidance",
                "Analyst upgrade, earnings beat", "shares rise after dividend raise"],
    "bearish": ["Microsoft misses guidance, stock falls.", "shares falls on weak earnings",
                "legal probe, stock falls", "misses estimates and cuts guidance"],
    "neutral": ["The company reported results in line with expectations.",
                "management meeting scheduled", "product event other macro", "in line results"],
}


def labelled(repeat: int = 4) -> pl.DataFrame:
    rows = [(t, label) for label, texts in TEXTS.items() for t in texts] * repeat
    return pl.DataFrame(rows, schema=["text", "label"], orient="row")


@pytest.mark.parametrize("arch", ["tiny_qwen", "tiny_deepseek", "tiny_gemma"])
def test_shared_prefix_equals_the_models_own_forward(arch, request):
    # tiny_gemma: a sliding window of 6 tokens in layer 0, a global layer 1, and rotary bases
    # per kind, all of which the runner must reproduce
    loaded = llm.load(str(request.getfixturevalue(arch)), "fp32")
    tokenizer, model = loaded.tokenizer, loaded.model
    prefix = prompt_prefix(tokenizer)
    runner = SharedPrefix(model, prefix)
    settings = FinetuneSettings(batch_size=8)
    batch = batches(tokenizer, labelled(1), settings)[0]
    captured = []
    model.model.layers[1].register_forward_hook(lambda _m, _i, out: captured.append(
        out[0] if isinstance(out, tuple) else out))
    with torch.no_grad():
        ours = runner.run(runner.run(runner.embed(batch.ids), 0, 1), 1, 2)
        captured.clear()
        for row in range(len(batch.ids)):
            n = int(batch.lengths[row])
            model(input_ids=torch.tensor([prefix + batch.ids[row, :n].tolist()]))
            torch.testing.assert_close(ours[row, :n], captured[-1][0, len(prefix):],
                                       atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def trained(tiny_qwen, tmp_path_factory):
    loaded = llm.load(str(tiny_qwen), "fp32")
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    settings = FinetuneSettings(start=1, stop=2, rank=4, epochs=4, batch_size=8, lr=5e-3,
                                head_lr=2e-2)
    tensors, report = finetune(loaded, labelled(), {"valid": labelled(1)}, settings,
                               loaded.base_id, log=lambda _: None)
    after = loaded.model.state_dict()
    out = tmp_path_factory.mktemp("adapter") / "tiny"
    meta = {"name": "tiny", "base_id": loaded.base_id, "start": 1, "stop": 2, "rank": 4,
            "alpha": settings.alpha, "report": report}
    adapters.save(out, tensors, meta)
    return loaded, before, after, report, out


def test_training_lowers_the_loss_and_leaves_the_base_model_as_it_was(trained):
    _, before, after, report, _ = trained
    losses = [epoch["train_loss"] for epoch in report["history"]]
    assert losses[-1] < losses[0] * 0.9
    assert report["targets"] > 0 and report["trainable_parameters"] > 0
    assert all(torch.equal(before[k], after[k]) for k in before)  # deltas removed again
    assert set(report["history"][0]["valid"]) == {"valid"}


def test_adapter_loads_changes_fingerprint_and_scores_through_its_head(trained, tiny_qwen):
    _, _, _, _, out = trained
    plain = llm.load(str(tiny_qwen), "fp32")
    adapted = llm.load(str(tiny_qwen), "fp32", adapter=out)
    assert adapted.fingerprint != plain.fingerprint and adapted.base_id == plain.base_id
    assert adapted.head is not None and adapted.head_layer == 2
    changed = [k for k, v in adapted.model.state_dict().items()
               if not torch.equal(v, plain.model.state_dict()[k])]
    assert changed and all(k.startswith("model.layers.1.") for k in changed)
    results = Engine(adapted, batch_size=3).score([DocInput("", t) for t in TEXTS["bullish"]])
    assert all(r.status == "ok" and r.decoding["sentiment_from"] == "head" for r in results)
    # The engine's head, read inside the full prompt, == the training path's (shared prefix).
    runner = SharedPrefix(adapted.model, prompt_prefix(adapted.tokenizer))
    frame = pl.DataFrame({"text": TEXTS["bullish"], "label": ["bullish"] * 4})
    data = batches(adapted.tokenizer, frame, FinetuneSettings(batch_size=4))
    with torch.no_grad():
        probs = adapted.head(pooled(runner.run(runner.embed(data[0].ids), 0, 2),
                                    data[0].mask)).softmax(-1)
    by_text = {t: r for t, r in zip(TEXTS["bullish"], results, strict=True)}
    texts = [adapted.tokenizer.decode(row[mask.bool()]) for row, mask in
             zip(data[0].ids, data[0].mask, strict=True)]
    for text, row in zip(texts, probs, strict=True):
        engine_probs = by_text[text].probs
        for i, label in enumerate(adapters.LABELS):
            assert engine_probs[label] == pytest.approx(float(row[i]), abs=1e-4)


def test_corrupted_or_mismatched_adapter_is_a_clear_error(trained, tiny_qwen, tiny_deepseek,
                                                          tmp_path):
    _, _, _, _, out = trained
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / adapters.META).write_text((out / adapters.META).read_text())
    data = bytearray((out / adapters.TENSORS).read_bytes())
    data[-5] ^= 0xFF
    (broken / adapters.TENSORS).write_bytes(bytes(data))
    with pytest.raises(ModelError, match="corrupted"):
        llm.load(str(tiny_qwen), "fp32", adapter=broken)
    with pytest.raises(ModelError, match="was trained on .*not on this one"):
        llm.load(str(tiny_deepseek), "fp32", adapter=out)
    with pytest.raises(ModelError, match="has no adapter"):
        llm.load(str(tiny_qwen), "fp32", adapter=tmp_path / "nothing")
    (broken / adapters.META).write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        llm.load(str(tiny_qwen), "fp32", adapter=broken)


def test_shape_mismatch_leaves_the_model_untouched(trained, tiny_qwen, tmp_path):
    _, _, _, _, out = trained
    found = adapters.read(out)
    name = next(k for k in found.tensors if k.startswith("lora.") and k.endswith(".A"))
    tensors = dict(found.tensors) | {name: torch.zeros(3, 3)}
    meta = {k: v for k, v in found.meta.items() if k not in ("sha256", "format")}
    adapters.save(tmp_path / "bad", tensors, meta)
    loaded = llm.load(str(tiny_qwen), "fp32")
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    with pytest.raises(ModelError, match="does not fit"):
        adapters.apply(loaded.model, adapters.read(tmp_path / "bad"), loaded.base_id)
    assert all(torch.equal(before[k], v) for k, v in loaded.model.state_dict().items())


def test_source_weights_scale_each_examples_loss():
    from llm.train.finetune import Batch, weighted_loss
    from llm.train.training_files import with_source_weights

    frame = labelled(1).with_columns(source=pl.lit("data/tweets/train.parquet"))
    weighted = with_source_weights(frame, {"tweets/train": 2.0})
    assert weighted["weight"].to_list() == [2.0] * frame.height
    with pytest.raises(ModelError, match="tweets/train"):
        with_source_weights(frame, {"news/train": 2.0})
    for bad in (-1.0, float("nan")):
        with pytest.raises(ModelError, match="at least 0"):
            with_source_weights(frame, {"tweets/train": bad})
    logits, labels = torch.randn(6, 3), torch.tensor([0, 1, 2, 1, 1, 0])
    class_weights = torch.tensor([2.0, 0.5, 1.0])

    def batch(weights):
        return Batch([], labels[:, None], labels[:, None], labels, labels, torch.tensor(weights))

    ones = weighted_loss(logits, batch([1.0] * 6), class_weights)
    assert torch.allclose(ones, F.cross_entropy(logits, labels, weight=class_weights))
    # a batch of a source weighing 2 counts twice, it is not renormalised to the same loss
    assert torch.allclose(weighted_loss(logits, batch([2.0] * 6), class_weights), 2 * ones)


def test_finetune_command_writes_an_adapter(tiny_qwen, tmp_path):
    from click.testing import CliRunner

    from quant.cli import cli

    data = tmp_path / "tweets" / "train.parquet"
    data.parent.mkdir()
    labelled(2).write_parquet(data)
    runner = CliRunner()
    command = ["--workspace", str(tmp_path), "llm", "finetune", "--base", str(tiny_qwen),
               "--data", str(data), "--valid", str(data), "--layers", "0:2", "--epochs", "1",
               "--lora-rank", "2", "--out", str(tmp_path / "adapter"), "--json"]
    result = runner.invoke(cli, command + ["--weight", "news/train=2"])
    assert result.exit_code != 0 and "tweets/train" in str(result.exception)
    result = runner.invoke(cli, command + ["--weight", "tweets/train=2", "--lr", "1e-3"])
    assert result.exit_code == 0, result.output
    meta = json.loads(result.output)
    assert meta["start"] == 0 and meta["stop"] == 2 and meta["report"]["best_epoch"] == 1
    settings = meta["report"]["settings"]
    assert settings["source_weights"] == {"tweets/train": 2.0} and settings["lr"] == 1e-3
    assert (tmp_path / "adapter" / adapters.TENSORS).exists()
    # calibrated on the validation file when training ends, and again on demand
    assert meta["calibration"]["temperature"] > 0
    assert adapters.read(tmp_path / "adapter").meta["calibration"] == meta["calibration"]
    result = runner.invoke(cli, ["--workspace", str(tmp_path), "llm", "calibrate", "--base",
                                 str(tiny_qwen), "--adapter", str(tmp_path / "adapter"),
                                 "--valid", str(data), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    (figures,) = report["files"].values()
    assert set(figures) >= {"ece_before", "ece_after", "accuracy"}


def test_early_exit_reads_the_same_sentiment_as_the_full_pass(trained, tiny_qwen):
    _, _, _, _, out = trained
    adapted = llm.load(str(tiny_qwen), "fp32", adapter=out)
    docs = [DocInput("AAPL", t) for t in TEXTS["bullish"] + TEXTS["bearish"]]
    fast = Engine(adapted, batch_size=3)
    full = Engine(adapted, batch_size=3, events=True)
    assert not fast.full_depth and full.full_depth
    assert fast.prompt_version("score") != full.prompt_version("score")
    for a, b in zip(fast.score(docs), full.score(docs), strict=True):
        assert a.fields.sentiment == pytest.approx(b.fields.sentiment, abs=1e-5)
        assert a.fields.event_type.value == "other" and a.decoding["event_from"] == "not read"
        assert b.decoding["event_from"] == "label words"


def test_one_headline_about_two_entities_gets_a_signal_per_entity(trained, tiny_qwen):
    """Training lays the entity out where scoring does, and each entity's signal is what the
    training path computes for that entity: two tickers in one headline can differ."""
    _, _, _, _, out = trained
    adapted = llm.load(str(tiny_qwen), "fp32", adapter=out)
    text = "Apple beats earnings estimates while Microsoft misses guidance"
    results = Engine(adapted, batch_size=2).score([DocInput("AAPL", text),
                                                   DocInput("MSFT", text)])
    runner = SharedPrefix(adapted.model, prompt_prefix(adapted.tokenizer))
    frame = pl.DataFrame({"text": [text, text], "entity": ["AAPL", "MSFT"]})
    data = batches(adapted.tokenizer, frame, FinetuneSettings(batch_size=2))
    with torch.no_grad():
        probs = adapted.head(pooled(runner.run(runner.embed(data[0].ids), 0, 2),
                                    data[0].mask)).softmax(-1)
    by_entity = dict(zip(["AAPL", "MSFT"], results, strict=True))
    for row, index in enumerate(data[0].rows):
        entity = frame["entity"][index]
        for i, label in enumerate(adapters.LABELS):
            assert by_entity[entity].probs[label] == pytest.approx(float(probs[row, i]),
                                                                   abs=1e-4)
    assert by_entity["AAPL"].probs != by_entity["MSFT"].probs
    # the document's own tokens are pooled, not the entity's
    assert all(int(m.sum()) == n for m, n in zip(
        data[0].mask, [len(adapted.tokenizer(text, add_special_tokens=False)["input_ids"])] * 2,
        strict=True))


def test_calibration_recovers_a_known_temperature_and_rewrites_the_head(trained, tiny_qwen,
                                                                         tmp_path):
    import numpy as np

    from llm.train.calibrate import calibrate, fit_temperature

    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(4000, 3)) * 1.5
    p = np.exp(true_logits) / np.exp(true_logits).sum(1, keepdims=True)
    truth = np.array([rng.choice(3, p=row) for row in p])
    assert fit_temperature(true_logits * 3.0, truth) == pytest.approx(3.0, rel=0.1)
    assert fit_temperature(true_logits, truth) == pytest.approx(1.0, rel=0.1)

    _, _, _, _, out = trained
    adapted = llm.load(str(tiny_qwen), "fp32", adapter=out)
    report = calibrate(Engine(adapted, batch_size=8), out, {"valid": labelled(1)},
                       out=tmp_path / "calibrated")
    before, after = adapters.read(out), adapters.read(tmp_path / "calibrated")
    t = report["temperature"]
    assert after.meta["calibration"]["temperature"] == t
    assert torch.allclose(after.tensors["head.linear.weight"],
                          before.tensors["head.linear.weight"] / t)
    assert set(report["files"]["valid"]) >= {"ece_before", "ece_after"}
