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

from llm.errors import ModelError
from llm.kernels.dispatch import run_experts
from llm.model.precision import quantise
from llm.model.upcycle import moe_blocks

log = logging.getLogger(__name__)
NAME = "quant_moe"


def quant_moe_forward(self, hidden_states: torch.Tensor, top_k_index: torch.Tensor,
                      top_k_weights: torch.Tensor) -> torch.Tensor:
    """The experts function registered with transformers (same signature as theirs)."""
    return run_experts(hidden_states, top_k_index, top_k_weights, self.gate_up_proj,
                       self.down_proj)


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
        if precision in ("fp8", "int8"):
            quantise(module, ("gate_up_proj", "down_proj"), precision)
    device = "fused Triton kernels" if next(model.parameters()).is_cuda else "CPU path"
    return [f"experts: {NAME} ({device}), {len(modules)} layers, "
            f"{'fp8 e4m3 weights, 128x128 block scales' if precision == 'fp8' else precision}"
            + (" (per expert)" if precision == "int8" else "")]
