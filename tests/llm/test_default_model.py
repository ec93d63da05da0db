"""The real bundled default model (slow: converts the GGUF once, ~30 s)."""

import pytest

import llm
from llm.engine import DocInput, Engine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    return llm.load("default", "bf16", cache_dir=tmp_path_factory.mktemp("models"))


def test_default_loads_offline_and_converts_once(default, tmp_path_factory):
    info = llm.describe(default)
    assert info["model_id"].startswith("SmolLM2-135M-Instruct") and info["parameters"] > 1e8
    assert info["experts"] == 4 and info["experts_per_token"] == 1  # the upcycled MoE default
    again = llm.load("default", "bf16", cache_dir=default.path.parent)
    assert again.fingerprint == default.fingerprint and again.path == default.path


def test_dense_default_is_loadable_by_name(default):
    dense = llm.load("default-dense", "bf16", cache_dir=default.path.parent)
    assert llm.describe(dense)["experts"] is None
    assert dense.fingerprint != default.fingerprint


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
