import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import llm
from llm.errors import ModelError


@pytest.mark.parametrize("arch", ["tiny_qwen", "tiny_deepseek"])
def test_tiny_moe_checkpoints_load_through_the_same_path(arch, request):
    path = request.getfixturevalue(arch)
    loaded = llm.load(str(path), "fp32")
    info = llm.describe(loaded)
    assert info["experts"] == 8 and info["precision"] == "fp32"
    assert len(loaded.fingerprint) == 16
    assert llm.load(str(path), "fp32").fingerprint == loaded.fingerprint  # stable


def test_fingerprint_changes_with_weights_and_precision(tiny_qwen, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_qwen, copy)
    base = llm.load(str(copy), "fp32").fingerprint
    assert llm.load(str(copy), "bf16").fingerprint != base
    weights = load_file(copy / "model.safetensors")
    name = next(iter(weights))
    weights[name] = weights[name] + 1e-3
    save_file(weights, copy / "model.safetensors", metadata={"format": "pt"})
    assert llm.load(str(copy), "fp32").fingerprint != base


def test_names_from_the_config_resolve(tiny_qwen):
    loaded = llm.load("mymoe", "fp32", names={"mymoe": str(tiny_qwen)})
    assert loaded.model.dtype == torch.float32


def test_missing_or_wrong_models_are_clear_errors(tmp_path):
    with pytest.raises(ModelError, match="no model at .*local Hugging Face directory"):
        llm.load(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        llm.load(str(tmp_path / "empty"))
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelError, match="neither a model directory nor a .gguf"):
        llm.load(str(tmp_path / "weights.bin"))
    with pytest.raises(ModelError, match="precision must be"):
        llm.load("default", "fp4")


def test_shipped_adapters_are_found_by_name_and_directories_pass_through(tmp_path):
    from llm.model.loaded import ADAPTERS, adapter_path

    assert adapter_path("default") == ADAPTERS / "default"
    assert adapter_path("sentiment-v1") == ADAPTERS / "sentiment-v1"
    assert (ADAPTERS / "sentiment-v1" / "adapter.json").exists()
    assert adapter_path("reason-v1") == ADAPTERS / "reason-v1"
    assert adapter_path(str(tmp_path)) == tmp_path
    assert adapter_path("no-such-adapter") == Path("no-such-adapter")  # then read() says why
