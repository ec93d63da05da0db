"""The one entry point to the experts: our MoE block and transformers' experts modules both
call `run_experts`, which picks the path from the device, the weights' dtype and whether
gradients are wanted.

- CUDA, inference: the fused Triton kernels (bf16/fp32, or e4m3 weights with `.scale`).
- Otherwise (the CPU, or training anywhere): the sorted per-expert path in torch, which is
  differentiable; e4m3 weights are dequantised per expert, int8 ones go through torch's
  quantised matmul.
"""

from __future__ import annotations

import torch

from llm.kernels.cpu import experts_cpu


def run_experts(x: torch.Tensor, topk_ids: torch.Tensor, topk_weights: torch.Tensor,
                gate_up: torch.Tensor, down: torch.Tensor,
                deltas: dict | None = None, activation: str = "silu") -> torch.Tensor:
    """x (T, H) -> (T, H) through each token's top-k experts, weighted; `deltas` ("gate_up",
    "down": `llm.model.adapter.LowRank` being trained) add to the projections' outputs;
    `activation` is the gate's (silu or gelu_tanh)."""
    if x.is_cuda and not torch.is_grad_enabled() and not deltas:
        from llm.kernels.fused_moe import fused_experts  # triton: only on a GPU

        return fused_experts(x.contiguous(), topk_ids, topk_weights, gate_up, down,
                             activation=activation)
    return experts_cpu(x, gate_up, down, topk_ids, topk_weights, deltas=deltas,
                       activation=activation)
