"""The fast score path: precision resolved for the hardware, the prompt opening computed once,
layers only as deep as the fields read, int8 weights on the CPU."""

import importlib

import pytest
import torch

import llm
from llm.infer import prompts
from llm.infer.engine import DocInput, Engine
from llm.model.precision import Int8Linear

load_module = importlib.import_module("llm.model.load")  # `llm.load` itself is the function

TEXTS = ["Apple beats earnings estimates; shares rise.",
         "Microsoft misses guidance, stock falls sharply after a weak quarter report.",
         "merger"]


@pytest.mark.parametrize("native, expected", [(False, "fp32"), (True, "bf16")])
def test_auto_resolves_to_what_the_cpu_computes_natively(monkeypatch, native, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(load_module, "cpu_features",
                        lambda: {"capability": "TEST", "native_bf16": native})
    precision, why = load_module.resolve_precision("auto")
    assert precision == expected and "TEST" in why
    assert load_module.resolve_precision("int8") == ("int8", "asked for")


def test_fingerprint_records_the_resolved_precision(tiny_qwen, monkeypatch):
    monkeypatch.setattr(load_module, "cpu_features",
                        lambda: {"capability": "AVX2", "native_bf16": False})
    auto = llm.load(str(tiny_qwen), "auto")
    assert auto.precision == "fp32" and any("auto" in note for note in auto.notes)
    fp32 = llm.load(str(tiny_qwen), "fp32").fingerprint
    assert auto.fingerprint == fp32
    assert len({fp32, llm.load(str(tiny_qwen), "bf16").fingerprint,
                llm.load(str(tiny_qwen), "int8").fingerprint}) == 3


@pytest.mark.parametrize("arch", ["tiny_qwen", "tiny_deepseek", "tiny_gemma"])
def test_cached_opening_equals_the_models_own_forward(arch, request):
    """Label-word probabilities read after the cached opening == one plain forward pass of the
    whole prompt through transformers."""
    loaded = llm.load(str(request.getfixturevalue(arch)), "fp32")
    engine = Engine(loaded, batch_size=2, calibrate=False, min_label_mass=0.0)
    docs = [DocInput("AAPL", t) for t in TEXTS]
    results = engine.score(docs)
    opening = engine._opening().prefix_ids[0].tolist()
    cue = len(engine.encode(prompts.SCORE_SENTIMENT_CUE))
    for doc, (ids, _, _), result in zip(docs, engine._score_inputs(docs), results, strict=True):
        with torch.no_grad():
            logits = loaded.model(input_ids=torch.tensor([opening + ids])).logits[0].float()
        sentiment, event = logits[-1].softmax(-1), logits[-1 - cue].softmax(-1)
        for label, token in engine.event_ids.items():
            assert result.decoding["raw_event"][label] == pytest.approx(float(event[token]),
                                                                        abs=1e-5)
        mass = sum(float(sentiment[t]) for t in engine.sentiment_ids.values())
        for label, token in engine.sentiment_ids.items():
            assert result.probs[label] == pytest.approx(float(sentiment[token]) / mass,
                                                        abs=1e-4), doc


def test_the_opening_is_computed_once_per_engine(tiny_qwen):
    engine = Engine(llm.load(str(tiny_qwen), "fp32"), calibrate=False, min_label_mass=0.0)
    engine.score([DocInput("AAPL", TEXTS[0])])
    runner = engine._opening()
    stored = dict(runner._kv.stored)
    engine.score([DocInput("MSFT", TEXTS[1])])
    assert engine._opening() is runner
    assert all(runner._kv.stored[k][0] is v[0] for k, v in stored.items())


@pytest.mark.parametrize("arch", ["tiny_qwen", "tiny_deepseek"])
def test_int8_stays_close_to_fp32(arch, request):
    path = str(request.getfixturevalue(arch))
    full, quantised = llm.load(path, "fp32"), llm.load(path, "int8")
    assert quantised.precision == "int8" and any("int8" in n for n in quantised.notes)
    assert any(isinstance(m, Int8Linear) for m in quantised.model.modules())
    # the experts' weights are int8 in their own slots, with their scales and packed forms
    assert any(p.dim() == 3 and p.dtype == torch.int8 and p.scale.shape == p.shape[:2]
               and len(p.packed) == p.shape[0] for p in quantised.model.parameters())
    ids = full.tokenizer(" ".join(TEXTS), return_tensors="pt")["input_ids"]
    with torch.no_grad():
        a = full.model(input_ids=ids).logits.float()
        b = quantised.model(input_ids=ids).logits.float()
    # Per-channel int8 weights and 7-bit dynamic activations: ~1-3% relative error.
    assert float((a - b).norm() / a.norm()) < 0.05


def test_user_model_cache_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("QUANT_MODEL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert load_module.default_cache_dir() == tmp_path / "xdg" / "quant-models"
    monkeypatch.setenv("QUANT_MODEL_CACHE", str(tmp_path / "mine"))
    assert load_module.default_cache_dir() == tmp_path / "mine"


class _Tokenizer:
    """Just what the prompt layout asks of a tokenizer without a chat template."""

    chat_template = None
    bos_token, bos_token_id = "<bos>", 2

    def __init__(self, adds_bos: bool) -> None:
        self.adds_bos = adds_bos

    def __call__(self, text):
        return {"input_ids": ([2] if self.adds_bos else []) + [7] * len(text)}


def test_a_tokenizer_that_starts_every_text_with_bos_gets_it_in_the_plain_layout():
    """Prompts are encoded without special tokens: a model trained with BOS first (Gemma)
    gets it from the layout; one that is not is left as it was."""
    assert prompts.chat(_Tokenizer(True), "hi").startswith("<bos>### System\n")
    assert prompts.chat(_Tokenizer(False), "hi").startswith("### System\n")
