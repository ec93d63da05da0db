"""A model's identity comes from what changes its numbers; the converted-model cache is never
stale; every shipped adapter loads on the locked environment."""

import hashlib
import importlib
import json
import logging
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

import llm
from llm.errors import ModelError
from llm.model import identity
from llm.model.loaded import ADAPTERS

loading = importlib.import_module("llm.model.load")  # `llm.load` itself is the function

# The id every shipped adapter recorded before identities hashed tensors: sha256 of the files'
# digests, config.json's text as transformers 5.24.0 wrote it, and the upcycle.
LEGACY_BASE_ID = "405c3840d448a680"
BASE_ID = "e7ddb07c68850ef7"   # the same model, named by llm/model/identity.py


def _copy(tiny_qwen, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_qwen, copy)
    (copy / ".fingerprint.json").unlink(missing_ok=True)
    return copy


def _edit_config(path, edit):
    config = json.loads((path / "config.json").read_text())
    edit(config)
    (path / "config.json").write_text(json.dumps(config, indent=1))


def test_library_metadata_and_key_order_leave_the_identity_unchanged(tiny_qwen, tmp_path):
    copy = _copy(tiny_qwen, tmp_path)
    before = identity.fingerprint(copy, "fp32", "x")
    loaded = llm.load(str(copy), "fp32")

    def rewrite(config):
        config["transformers_version"] = "9.99.0"
        config["_name_or_path"] = "/somewhere/else"
        config["dtype"] = "bfloat16"
        reordered = dict(reversed(list(config.items())))
        config.clear()
        config.update(reordered)

    _edit_config(copy, rewrite)
    assert identity.fingerprint(copy, "fp32", "x") == before
    again = llm.load(str(copy), "fp32")
    assert (again.base_id, again.fingerprint) == (loaded.base_id, loaded.fingerprint)


def test_tensor_order_shards_and_file_metadata_leave_the_identity_unchanged(tiny_qwen, tmp_path):
    copy = _copy(tiny_qwen, tmp_path)
    before = identity.fingerprint(copy, "", "")
    weights = load_file(copy / "model.safetensors")
    names = sorted(weights)
    half = len(names) // 2
    (copy / "model.safetensors").unlink()
    save_file({n: weights[n] for n in reversed(names[:half])}, copy / "a.safetensors",
              metadata={"format": "pt", "written_by": "someone"})
    save_file({n: weights[n] for n in names[half:]}, copy / "b.safetensors")
    assert identity.fingerprint(copy, "", "") == before
    for file in copy.glob("*.safetensors"):
        file.unlink()
    torch.save(weights, copy / "pytorch_model.bin")
    assert identity.fingerprint(copy, "", "") == before   # the same tensors in another format


@pytest.mark.parametrize("field,value", [("rms_norm_eps", 1e-5), ("num_hidden_layers", 7),
                                         ("hidden_act", "gelu")])
def test_an_architecture_field_changes_the_identity(tiny_qwen, tmp_path, field, value):
    copy = _copy(tiny_qwen, tmp_path)
    before = identity.fingerprint(copy, "", "")
    _edit_config(copy, lambda config: config.__setitem__(field, value))
    assert identity.fingerprint(copy, "", "") != before


def test_one_weight_changes_the_identity_and_the_cached_hash_follows(tiny_qwen, tmp_path):
    copy = _copy(tiny_qwen, tmp_path)
    before = llm.load(str(copy), "fp32")
    assert (copy / ".fingerprint.json").exists()
    weights = load_file(copy / "model.safetensors")
    name = next(iter(weights))
    weights[name] = weights[name].clone()
    weights[name].view(-1)[0] += 1e-3
    save_file(weights, copy / "model.safetensors", metadata={"format": "pt"})
    after = llm.load(str(copy), "fp32")
    assert after.base_id != before.base_id and after.fingerprint != before.fingerprint


# --- the converted-model cache ------------------------------------------------------------

@pytest.fixture
def fake_conversion(monkeypatch, tmp_path):
    """The GGUF converter replaced by one that writes a tiny folder and counts its runs (the
    real one is exercised by the default model's tests)."""
    runs = []

    def convert(gguf, cache_dir, name):
        runs.append(gguf)
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = cache_dir / f"{name}.partial-{len(runs)}"
        partial.mkdir()
        (partial / "config.json").write_text(json.dumps({"run": len(runs)}))
        return partial

    monkeypatch.setattr(loading, "_convert", convert)
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF pretend weights")
    return gguf, tmp_path / "cache", runs


def test_a_conversion_is_reused_only_by_the_converter_that_wrote_it(fake_conversion,
                                                                     monkeypatch, caplog):
    gguf, cache, runs = fake_conversion
    target = loading.gguf_to_safetensors(gguf, cache)
    record = json.loads((target / "conversion.json").read_text())
    assert record["converter"] == loading.converter()
    assert record["source_sha256"] == hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert loading.gguf_to_safetensors(gguf, cache) == target and len(runs) == 1

    newer = loading.converter() | {"transformers": "99.0.0"}
    monkeypatch.setattr(loading, "converter", lambda: newer)
    with caplog.at_level(logging.WARNING, logger="llm.load"):
        assert loading.gguf_to_safetensors(gguf, cache) == target
    assert len(runs) == 2 and json.loads((target / "config.json").read_text()) == {"run": 2}
    assert "was written by" in caplog.text and "99.0.0" in caplog.text
    assert "converting model.gguf again" in caplog.text
    assert json.loads((target / "conversion.json").read_text())["converter"] == newer
    assert sorted(p.name for p in cache.iterdir()) == [target.name]  # nothing left aside


def test_an_unrecorded_or_foreign_cache_entry_is_converted_again(fake_conversion, caplog):
    gguf, cache, runs = fake_conversion
    target = loading.gguf_to_safetensors(gguf, cache)
    (target / "conversion.json").unlink()                 # written by an older release
    with caplog.at_level(logging.WARNING, logger="llm.load"):
        loading.gguf_to_safetensors(gguf, cache)
    assert len(runs) == 2 and "does not record its converter" in caplog.text
    record = json.loads((target / "conversion.json").read_text())
    record["source_sha256"] = "0" * 64                      # another file's conversion
    (target / "conversion.json").write_text(json.dumps(record))
    loading.gguf_to_safetensors(gguf, cache)
    assert len(runs) == 3 and "is of another file" in caplog.text


def test_an_unwritable_cache_is_a_clear_error(fake_conversion, monkeypatch):
    gguf, cache, _ = fake_conversion

    def refuse(*_):
        raise ModelError("cannot write the converted model to /nowhere: set [model] "
                         "cache_dir or QUANT_MODEL_CACHE to a writable folder")

    monkeypatch.setattr(loading, "_convert", refuse)
    with pytest.raises(ModelError, match="QUANT_MODEL_CACHE"):
        loading.gguf_to_safetensors(gguf, cache)


# --- the real default model ----------------------------------------------------------------

@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    return llm.load("default-dense", "fp32", cache_dir=tmp_path_factory.mktemp("models"))


def _legacy_base_id(path, extra):
    """The identity shipped adapters were recorded with, computed as it was: the weight files'
    bytes and config.json's text (with the version string 5.24.0 wrote, which the tensors
    and every other field do not depend on)."""
    files = sorted(path.glob("*.safetensors"))
    weights = hashlib.sha256("".join(loading._file_digest(f) for f in files).encode())
    config = (path / "config.json").read_text()
    version = json.loads(config)["transformers_version"]
    config = config.replace(f'"transformers_version": "{version}"',
                            '"transformers_version": "5.24.0"')
    return hashlib.sha256(f"{weights.hexdigest()}|{config}||{extra}".encode()).hexdigest()[:16]


@pytest.mark.slow
def test_the_migrated_adapters_name_the_model_they_were_trained_on(converted):
    """The one-off re-recording of adapter.json's base_id: the model the old identity named
    (LEGACY_BASE_ID) is the model the new one names (BASE_ID), and it computes what it did."""
    from llm.model.upcycle import DEFAULT_UPCYCLE, upcycle

    base = llm.load("default-base", "fp32", cache_dir=converted.path.parent)
    assert base.base_id == BASE_ID
    dense = llm.load("default-dense", "fp32", cache_dir=converted.path.parent)
    described = upcycle(dense.model, **DEFAULT_UPCYCLE)  # what load() mixes in, as before
    assert _legacy_base_id(base.path, described) == LEGACY_BASE_ID
    for meta in sorted(ADAPTERS.glob("*/adapter.json")):
        recorded = json.loads(meta.read_text())
        if recorded["base_model_id"].startswith("SmolLM2"):  # not the second base's adapter
            assert recorded["base_id"] == BASE_ID, meta
    # Last-position logits of the dense model on fixed inputs, as they were when the adapters
    # were trained (fp32; top 3 token ids and values).
    expected = {"Apple smashes earnings estimates as iPhone sales soar":
                [(28, 29.1167), (30, 28.2544), (284, 27.1669)],
                "Microsoft profit plunges, badly missing estimates":
                [(28, 25.2243), (282, 25.0697), (30, 24.3453)]}
    for text, top in expected.items():
        ids = converted.tokenizer(text, return_tensors="pt").input_ids
        with torch.no_grad():
            logits = converted.model(ids).logits[0, -1]
        for token, value in top:
            assert float(logits[token]) == pytest.approx(value, abs=2e-3)
        assert [int(i) for i in torch.topk(logits, 3).indices] == [t for t, _ in top]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["default", "sentiment-v1", "sentiment-v2", "sentiment-v3",
                                  "sentiment-v4", "reason-v1"])
def test_every_shipped_adapter_loads(converted, name):
    loaded = llm.load("default-base", "fp32", cache_dir=converted.path.parent, adapter=name)
    assert loaded.head is not None and loaded.base_id == BASE_ID
    assert loaded.model_id.split("+")[-1] in (name, "sentiment-v4")
