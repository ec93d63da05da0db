"""The real bundled default model (slow: converts the GGUF once, ~30 s)."""

import pytest
import torch

import llm
from llm.infer.engine import DocInput, Engine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    return llm.load("default", "auto", cache_dir=tmp_path_factory.mktemp("models"))


def test_default_loads_offline_and_converts_once(default, tmp_path_factory):
    info = llm.describe(default)
    assert info["model_id"].startswith("SmolLM2-135M-Instruct") and info["parameters"] > 1e8
    assert info["experts"] == 4 and info["experts_per_token"] == 1  # the upcycled MoE default
    again = llm.load("default", "auto", cache_dir=str(default.path.parent))  # a str will do
    assert again.fingerprint == default.fingerprint and again.path == default.path


def test_dense_and_base_defaults_are_loadable_by_name(default):
    dense = llm.load("default-dense", "bf16", cache_dir=default.path.parent)
    assert llm.describe(dense)["experts"] is None
    assert dense.fingerprint != default.fingerprint
    base = llm.load("default-base", "bf16", cache_dir=default.path.parent)
    assert base.head is None and base.adapter is None
    assert base.fingerprint != default.fingerprint and base.base_id == default.base_id


def test_another_upcycle_is_another_base_and_an_adapter_carries_its_own(default, tmp_path):
    import json

    from llm.model.upcycle import DEFAULT_UPCYCLE, upcycle_of

    top2 = llm.load("default-base", "fp32", cache_dir=default.path.parent, upcycle={"top_k": 2})
    assert top2.model_id.endswith("MoE4xtop2") and top2.base_id != default.base_id
    assert llm.describe(top2)["experts_per_token"] == 2
    scaled = llm.load("default-base", "fp32", cache_dir=default.path.parent,
                      upcycle={"norm_topk": False})
    assert scaled.model_id.endswith("MoE4xtop1scaled")
    assert len({scaled.base_id, top2.base_id, default.base_id}) == 3
    (tmp_path / "adapter.json").write_text(json.dumps({"upcycle": {"top_k": 2}}))
    assert upcycle_of(tmp_path) == DEFAULT_UPCYCLE | {"top_k": 2}
    assert upcycle_of(None) == upcycle_of(tmp_path / "nothing") == DEFAULT_UPCYCLE


def test_shipped_adapter_reads_sentiment_far_above_chance(default):
    from llm.infer.evaluate import evaluate, read_labelled
    from tests.conftest import dataset

    assert default.head is not None and default.adapter.endswith("default")
    assert default.model_id.endswith("+sentiment-v4")
    engine = Engine(default)
    tfns = evaluate(engine, read_labelled(dataset("tfns", "valid.parquet"), "text", "label",
                                          limit=300))
    # Always answering the majority class (neutral, 65%) gives a weighted F1 of about 0.51;
    # on all 2,388 rows the adapter measured 0.871.
    assert tfns["weighted_f1"] >= 0.83 and tfns["not_ok"] == 0
    emotions = evaluate(engine, read_labelled(dataset("stockemotions", "val.parquet"), "text",
                                              "sentiment", limit=300))
    assert emotions["accuracy"] >= 0.70  # two classes: chance is 0.5; measured 0.750
    # news headlines, each row about one entity (measured 0.853; multi-entity rows 0.818)
    news = evaluate(engine, read_labelled(dataset("sentfin", "valid.parquet"), "text", "label",
                                          limit=600))
    assert news["weighted_f1"] >= 0.81 and news["not_ok"] == 0
    assert news["multi_entity"]["n"] > 200 and news["multi_entity"]["accuracy"] >= 0.76


@pytest.mark.parametrize("name", ["sentiment-v1", "sentiment-v2"])
def test_the_previous_adapters_load_by_name(default, name):
    previous = llm.load("default-base", "auto", cache_dir=default.path.parent, adapter=name)
    assert previous.model_id.endswith("+" + name) and previous.head is not None
    assert previous.fingerprint != default.fingerprint
    assert previous.base_id == default.base_id


def test_the_reason_adapter_reasons_far_above_chance_and_scores_as_its_base(default):
    from llm.infer.evaluate import evaluate, read_labelled
    from tests.conftest import dataset

    reasoner = llm.load("default", "auto", cache_dir=default.path.parent, adapter="reason-v1")
    assert reasoner.model_id.endswith("+reason-v1")
    assert reasoner.fingerprint != default.fingerprint
    base = llm.load("default-base", "auto", cache_dir=default.path.parent,
                    adapter="sentiment-v2")  # what reason-v1 was trained on
    docs = [DocInput("AAPL", "Apple smashes earnings estimates as iPhone sales soar"),
            DocInput("", "Microsoft profit plunges, badly missing estimates")]
    # The reason deltas sit above the head's layer: everything the head reads is the base's,
    # bit for bit, and so are the scores (within bf16's tolerance of the fast-path checks).
    ours, theirs = reasoner.model.state_dict(), base.model.state_dict()
    below = [name for name in theirs if _layer(name) is None or _layer(name) < base.head_layer]
    assert below and all(torch.equal(ours[name], theirs[name]) for name in below)
    assert any(not torch.equal(ours[name], theirs[name]) for name in theirs if name not in below)
    for mine, its in zip(Engine(reasoner).score(docs), Engine(base).score(docs), strict=True):
        assert mine.probs == pytest.approx(its.probs, abs=2e-2)
    tweets = read_labelled(dataset("tfns", "valid.parquet"), "text", "label", limit=64)
    result = evaluate(Engine(reasoner, max_new_tokens=160), tweets, mode="reason")
    # measured 0.812 accuracy and 500 of 500 valid on 500 rows (untrained: 0.450 and 0.860)
    assert result["accuracy"] >= 0.68 and result["not_ok"] <= 1


def _layer(name: str) -> int | None:
    """The decoder layer a weight belongs to (`model.layers.7.mlp...` -> 7), None outside."""
    parts = name.split(".")
    return int(parts[2]) if parts[:2] == ["model", "layers"] else None


def test_default_scores_and_reasons(default):
    engine = Engine(default, max_new_tokens=160)
    docs = [DocInput("AAPL", "Apple smashes earnings estimates as iPhone sales soar"),
            DocInput("MSFT", "Microsoft profit plunges, badly missing estimates")]
    for result in engine.score(docs):
        assert result.status in ("ok", "abstain")
    for result in engine.reason(docs):
        # A 135M model may ramble to the cap; either way the outcome is a valid row.
        assert result.status in ("ok", "failed")
        if result.status == "ok":
            assert -1 <= result.fields.sentiment <= 1 and result.fields.rationale is not None
        else:
            assert result.reason


def test_fast_path_reads_what_the_models_own_forward_reads(default):
    assert_fast_path_reads_as_own_forward(default)


def assert_fast_path_reads_as_own_forward(default, docs=None, engine=None) -> None:
    """Sentiment after the cached opening, stopped at the head's layer == the head on a plain
    forward pass of the whole prompt."""
    import torch

    from llm.model.adapter import LABELS, decoder_layers

    engine = engine or Engine(default)
    docs = docs or [DocInput("AAPL", "Apple smashes earnings estimates as iPhone sales soar"),
                    DocInput("", "Microsoft profit plunges, badly missing estimates"),
                    DocInput("BRK-A", "Berkshire holds its annual meeting in Omaha")]
    results = engine.score(docs)
    opening = engine._opening().prefix_ids[0].tolist()
    captured = []
    layer = decoder_layers(default.model)[default.head_layer - 1]
    hook = layer.register_forward_hook(
        lambda _m, _i, out: captured.append(out[0] if isinstance(out, tuple) else out))
    tolerance = 1e-4 if default.precision == "fp32" else 2e-2
    try:
        for (ids, _, (a, b)), result in zip(engine._score_inputs(docs), results, strict=True):
            with torch.no_grad():
                default.model(input_ids=torch.tensor([opening + ids]))
            hidden = captured[-1][0, len(opening) + a:len(opening) + b].float().mean(0)
            probs = default.head(hidden).softmax(-1)
            for i, label in enumerate(LABELS):
                assert result.probs[label] == pytest.approx(float(probs[i]), abs=tolerance)
    finally:
        hook.remove()
