"""The second bundled base, Gemma 3 270M, with the adapter shipped for it (slow: joins and
converts its GGUF once, about a minute)."""

import pytest

import llm
from llm.infer.engine import DocInput, Engine
from llm.model import bundled
from tests.llm.test_default_model import assert_fast_path_reads_as_own_forward

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gemma(tmp_path_factory):
    return llm.load("gemma-270m", "auto", cache_dir=tmp_path_factory.mktemp("models"))


def test_gemma_loads_by_its_three_names_from_the_pinned_file(gemma):
    base = bundled.BASES["gemma-270m"]
    joined = gemma.path.parent / f"{base.name}-{base.sha256[:16]}" / base.gguf
    assert joined.exists()   # the parts, joined once into the model cache and checked
    info = llm.describe(gemma)
    assert info["architecture"] == "Gemma3ForCausalLM" and info["layers"] == 18
    assert info["experts"] == 4 and info["experts_per_token"] == 1
    assert gemma.model_id == "gemma-3-270m-MoE4xtop1+sentiment-gemma-v1"
    assert gemma.adapter.endswith("gemma-270m") and gemma.head is not None
    plain = llm.load("gemma-270m-base", "auto", cache_dir=gemma.path.parent)
    assert plain.head is None and plain.base_id == gemma.base_id
    dense = llm.load("gemma-270m-dense", "auto", cache_dir=gemma.path.parent)
    assert llm.describe(dense)["experts"] is None
    default = llm.load("default-dense", "auto", cache_dir=gemma.path.parent)
    assert len({gemma.fingerprint, plain.fingerprint, dense.fingerprint,
                default.fingerprint}) == 4


def test_gemma_adapter_reads_sentiment_far_above_chance(gemma):
    from llm.infer.evaluate import evaluate, read_labelled
    from tests.conftest import dataset

    engine = Engine(gemma)
    tfns = evaluate(engine, read_labelled(dataset("tfns", "valid.parquet"), "text", "label",
                                          limit=300))
    assert tfns["weighted_f1"] >= 0.80 and tfns["not_ok"] == 0   # majority class: 0.51
    news = evaluate(engine, read_labelled(dataset("sentfin", "valid.parquet"), "text", "label",
                                          limit=600))
    assert news["weighted_f1"] >= 0.80 and news["not_ok"] == 0


def test_gemma_fast_path_reads_what_its_own_forward_reads(gemma):
    assert_fast_path_reads_as_own_forward(gemma)


def test_gemma_scores_a_long_passage_past_its_sliding_window(gemma):
    """A 10-K passage with the opening runs past Gemma's 512-token local window: the fast
    path must still read what the model's own forward reads."""
    engine = Engine(gemma, max_input_tokens=700)
    text = " ".join(["Net sales rose 6% to $391 billion while operating margin narrowed."] * 60)
    docs = [DocInput("AAPL", text)]
    ids, _, _ = engine._score_inputs(docs)[0]
    assert engine._opening().length + len(ids) > 512
    assert_fast_path_reads_as_own_forward(gemma, docs, engine)
