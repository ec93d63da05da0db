"""Run any Hugging Face MoE checkpoint's experts on our kernels.

transformers 5 dispatches the experts of Mixtral, Qwen3-MoE, OLMoE, DeepSeek-V3 (and others
built with `use_experts_implementation`) through `ALL_EXPERTS_FUNCTIONS`. We register
`quant_moe` there: the fused Triton kernels on a GPU, the sorted per-expert CPU path otherwise,
with fp8 block-quantised weights when the precision asks for it. An architecture whose experts
do not follow the concatenated gate/up layout keeps transformers' implementation, and the note
says why.
"""

from __future__ import annotations

import logging

import torch
from transformers.integrations.moe import ALL_EXPERTS_FUNCTIONS

from llm import int8
from llm.adapter import decoder_layers
from llm.errors import ModelError
from llm.int8 import quantise_experts
from llm.kernels.dispatch import run_experts
from llm.kernels.reference import fp8_weight
from llm.upcycle import moe_blocks

log = logging.getLogger(__name__)
NAME = "quant_moe"


def quant_moe_forward(self, hidden_states: torch.Tensor, top_k_index: torch.Tensor,
                      top_k_weights: torch.Tensor) -> torch.Tensor:
    """The experts function registered with transformers (same signature as theirs)."""
    return run_experts(hidden_states, top_k_index, top_k_weights, self.gate_up_proj,
                       self.down_proj, int8=getattr(self, "int8", None))


ALL_EXPERTS_FUNCTIONS.register(NAME, quant_moe_forward)


def is_moe(config) -> bool:
    return any(getattr(config, key, None) for key in
               ("num_experts", "n_routed_experts", "num_local_experts"))


def expert_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in model.modules()
            if hasattr(m, "gate_up_proj") and hasattr(m, "down_proj")
            and isinstance(m.gate_up_proj, torch.nn.Parameter)]


def _servable(module: torch.nn.Module) -> str | None:
    """Why we cannot serve this experts module (None when we can)."""
    if not getattr(module, "has_gate", True):
        return "experts without a gate projection"
    if getattr(module, "has_bias", False):
        return "experts with biases"
    if getattr(module, "is_transposed", False) or not getattr(module, "is_concatenated", True):
        return "transposed or interleaved gate/up weights"
    if module.gate_up_proj.dim() != 3:
        return "unexpected expert weight shapes"
    act = getattr(module, "act_fn", None)
    if act is not None and "silu" not in type(act).__name__.lower():
        return f"activation {type(act).__name__} (our kernels fuse SiLU)"
    return None


def quantise_fp8(module: torch.nn.Module) -> None:
    """Replace an experts module's weights by e4m3 values, each with its 128 x 128 block
    scales as `.scale`."""
    for name in ("gate_up_proj", "down_proj"):
        q = fp8_weight(getattr(module, name).data)
        weight = torch.nn.Parameter(q, requires_grad=False)
        weight.scale = q.scale
        setattr(module, name, weight)


def _no_fp8(precision: str, what: str) -> None:
    """fp8 quantises experts built with transformers' experts interface, nothing else: asked
    for elsewhere, it would run bf16 under an fp8 label, so it is refused."""
    if precision == "fp8":
        raise ModelError(f"precision fp8 quantises the experts of an MoE checkpoint, and "
                         f"{what} has none it can quantise: use bf16 (what fp8 would run "
                         "here), fp32 or int8")


def attach_experts(loaded) -> list[str]:
    """Choose the experts implementation for a loaded model; returns notes for `llm info`."""
    model, precision = loaded.model, loaded.precision
    if moe_blocks(model):
        _no_fp8(precision, "the upcycled MoE blocks of the bundled model")
        device = "fused Triton kernels" if next(model.parameters()).is_cuda else "CPU path"
        copies = sum(block.mark_copies() for block in moe_blocks(model))
        return [f"experts: our MoE block ({device}), {len(moe_blocks(model))} layers"
                f"; {copies} of them still identical copies, run as one dense MLP"]
    modules = expert_modules(model)
    if not is_moe(loaded.config) and not modules:
        _no_fp8(precision, "a dense model (no experts)")
        return ["dense model: no experts"]
    if not modules:
        reason = "its experts are not built with transformers' experts interface"
        _no_fp8(precision, f"this model ({reason})")
        log.warning("MoE experts stay on transformers' implementation: %s", reason)
        return [f"experts: transformers' implementation ({reason})"]
    reasons = {r for r in (_servable(m) for m in modules) if r}
    if reasons or not hasattr(model, "set_experts_implementation"):
        reason = "; ".join(sorted(reasons)) or "the model has no set_experts_implementation"
        _no_fp8(precision, f"this model ({reason})")
        log.warning("MoE experts stay on transformers' implementation: %s", reason)
        return [f"experts: transformers' implementation ({reason})"]
    model.set_experts_implementation(NAME)
    for module in modules:
        if precision == "fp8":
            quantise_fp8(module)
        elif precision == "int8":
            quantise_experts(module, "gate_up_proj", "down_proj")
    device = "fused Triton kernels" if next(model.parameters()).is_cuda else "CPU path"
    return [f"experts: {NAME} ({device}), {len(modules)} layers, "
            f"{'fp8 e4m3 weights, 128x128 block scales' if precision == 'fp8' else precision}"
            + (" (per expert)" if precision == "int8" else "")]


def quantise_model(model: torch.nn.Module) -> str:
    """Replace the decoder layers' linears and our MoE blocks' experts by int8 ones in place
    (transformers' experts modules are quantised where they are attached, `attach_experts`);
    returns a note for `llm info`."""
    if not int8.available():
        raise ModelError("precision int8 needs torch's quantized CPU kernels (fbgemm or x86), "
                         "which this torch build lacks: use precision fp32 or auto")
    if next(model.parameters()).is_cuda:
        raise ModelError("precision int8 is for the CPU; on a GPU use auto, bf16 or fp8")
    linears = 0
    for layer in decoder_layers(model):
        for name, module in list(layer.named_modules()):
            if isinstance(module, torch.nn.Linear):
                parent, _, attr = name.rpartition(".")
                setattr(layer.get_submodule(parent) if parent else layer, attr,
                        int8.Int8Linear(module))
                linears += 1
    blocks = moe_blocks(model)
    for block in blocks:
        quantise_experts(block, "gate_up", "down")
    return (f"int8 weights (per-channel scales, dynamic int8 activations, fp32 out): "
            f"{linears} linears" + (f", the experts of {len(blocks)} MoE blocks" if blocks else ""))
