"""int8 weights on the CPU: mixed precision the CPU way.

Weights are stored as int8 with one scale per output channel; each matmul quantises its
activations per batch (dynamic quantisation), multiplies in int8 with int32 accumulation and
returns fp32. This is torch's own fbgemm/oneDNN kernel (`quantized::linear_dynamic`), which runs
on every x86 CPU with AVX2 at about 1.5-2x the fp32 GEMM rate: nothing here is a new kernel.

What is quantised: every `nn.Linear` inside the decoder layers (attention and dense MLP
projections) and every expert of an MoE block (ours and transformers' experts modules), one
packed weight per expert. Embeddings, norms, routers, the sentiment head and the LM head stay
fp32: they are small, or their precision decides a label.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

# x86 CPUs multiply uint8 x int8 pairs into int16 before accumulating: 7-bit activations keep
# that from saturating (what torch's own dynamic quantisation does on x86).
REDUCE_RANGE = True


def available() -> bool:
    engines = torch.backends.quantized.supported_engines
    return hasattr(torch.ops.quantized, "linear_dynamic") and (
        "x86" in engines or "fbgemm" in engines)


def pack(weight: torch.Tensor):
    """An (out, in) float weight as int8 with per-output-channel scales, packed for the CPU."""
    weight = weight.detach().float().contiguous()
    scales = (weight.abs().amax(1) / 127).clamp(min=1e-12).double()
    with warnings.catch_warnings():  # quantized tensors are flagged deprecated, not yet gone
        warnings.simplefilter("ignore")
        q = torch.quantize_per_channel(weight, scales, torch.zeros_like(scales, dtype=torch.long),
                                       0, torch.qint8)
        return torch.ops.quantized.linear_prepack(q, None)


def linear(x: torch.Tensor, packed) -> torch.Tensor:
    """x (..., in) float -> (..., out) fp32 through an int8 packed weight."""
    return torch.ops.quantized.linear_dynamic(x.float().contiguous(), packed, REDUCE_RANGE)


class Int8Linear(nn.Module):
    """A drop-in for `nn.Linear` with int8 weights (inference only)."""

    def __init__(self, source: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = source.in_features, source.out_features
        self.packed = pack(source.weight)
        self.bias = None if source.bias is None else source.bias.detach().float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = linear(x, self.packed)
        return out if self.bias is None else out + self.bias


class Int8Experts:
    """Every expert's gate/up (E, 2I, H) and down (E, H, I) weights, packed per expert."""

    def __init__(self, gate_up: torch.Tensor, down: torch.Tensor) -> None:
        self.gate_up = [pack(w) for w in gate_up]
        self.down = [pack(w) for w in down]

    def __len__(self) -> int:
        return len(self.gate_up)


def quantise_experts(module: nn.Module, gate_up: str, down: str) -> None:
    """Pack an experts module's weights as `module.int8` and free the float ones (the
    attributes stay, empty, for introspection)."""
    module.int8 = Int8Experts(getattr(module, gate_up), getattr(module, down))
    for name in (gate_up, down):
        setattr(module, name, nn.Parameter(torch.empty(0), requires_grad=False))
