"""Build a loaded model from its resolved source: the weights in the precision that runs, the
bundled model upcycled into MoE blocks, a domain adapter merged in, the experts on our kernels,
and the identity (`base_id`, `fingerprint`) of what resulted. `llm.model.load.load` resolves
what to build; this module is where torch and transformers come in."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from llm.errors import ModelError
from llm.model import adapter as adapters
from llm.model import bundled, identity
from llm.model import upcycle as upcycling
from llm.model.experts import attach_experts
from llm.model.loaded import ADAPTERS, DTYPES, LoadedModel, adapter_path
from llm.model.precision import quantise_model


def build(path: Path, model_id: str, name: str, precision: str, why: str,
          adapter: str | Path | None = None, upcycle: dict | None = None) -> LoadedModel:
    """The model at `path` (a Hugging Face directory) in `precision` (resolved: `why` says
    how), on the first GPU when there is one; `name` is what the caller asked for (a bundled
    base's plain and `-base` names are upcycled, `upcycle` overriding how, and its plain name
    applies the adapter shipped for it: llm/model/bundled.py), `adapter` a directory or a
    shipped adapter's name."""
    hf_logging.disable_progress_bar()  # our own progress bars speak for the long steps
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            str(path), dtype=getattr(torch, DTYPES[precision]), local_files_only=True)
    except Exception as exc:
        raise ModelError(f"cannot load model from {path}: {exc}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    if torch.cuda.is_available():
        model.to("cuda")
    loaded = LoadedModel(model=model, tokenizer=tokenizer, model_id=model_id,
                         fingerprint="", precision=precision, path=path,
                         notes=[f"precision {precision} ({why})"])
    extra = ""
    base, role = bundled.parse(name) or (None, None)
    if base is not None and role != "dense":
        shipped = ADAPTERS / base.adapter
        if role == "" and adapter is None and (shipped / "adapter.json").exists():
            adapter = shipped
        how = upcycling.upcycle_of(adapter_path(adapter) if adapter is not None else None,
                                   upcycle)
        extra = upcycling.upcycle(model, **how)
        scaled = "" if how.get("norm_topk", True) else "scaled"   # unnormalised weights
        loaded.model_id = f"{model_id}-MoE{how['n_experts']}xtop{how['top_k']}{scaled}"
        loaded.notes.append(f"upcycled from the dense model: {how}")
    loaded.base_id = identity.fingerprint(path, "", extra)
    if adapter is not None:
        extra += "|" + _apply_adapter(loaded, adapter_path(adapter))
    loaded.notes += attach_experts(loaded)
    if precision == "int8":
        loaded.notes.append(quantise_model(model))
    loaded.fingerprint = identity.fingerprint(path, precision, extra)
    return loaded


def _apply_adapter(loaded: LoadedModel, directory: str | Path) -> str:
    """Merge a domain adapter into the loaded weights; returns its digest for the
    fingerprint, so signals of adapted and plain models never mix."""
    found = adapters.read(directory)
    loaded.head = adapters.apply(loaded.model, found, loaded.base_id)
    loaded.head_layer = found.meta["stop"]
    loaded.adapter = str(directory)
    loaded.model_id += "+" + found.meta.get("name", Path(directory).name)
    loaded.notes.append(f"domain adapter {directory} (layers {found.meta['start']}-"
                        f"{found.meta['stop'] - 1}, rank {found.meta['rank']}, sentiment head "
                        f"at layer {found.meta['stop']})")
    return f"adapter:{found.digest}"


def moe_shape(loaded: LoadedModel) -> tuple[int | None, int | None]:
    """Experts per layer and experts per token (None, None for a dense model)."""
    config = loaded.config
    ours = upcycling.moe_blocks(loaded.model)
    if ours:
        return ours[0].config.n_experts, ours[0].config.top_k
    return ((getattr(config, "num_experts", None) or getattr(config, "n_routed_experts", None)
             or getattr(config, "num_local_experts", None)),
            getattr(config, "num_experts_per_tok", None))
