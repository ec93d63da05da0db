"""int8 weights on the CPU: mixed precision the CPU way.

A weight is held as int8 with one scale per output channel, in its parameter's own slot, the
scales hanging on it as `.scale` (the convention fp8 weights follow too: `reference.fp8_weight`)
and torch's packed form of it as `.packed`. Each matmul quantises its activations per batch
(dynamic quantisation), multiplies in int8 with int32 accumulation and returns fp32: torch's own
fbgemm/oneDNN kernel (`quantized::linear_dynamic`), which runs on every x86 CPU with AVX2 at
about 1.5-2x the fp32 GEMM rate; nothing here is a new kernel.
"""

from __future__ import annotations

import warnings

import torch

# x86 CPUs multiply uint8 x int8 pairs into int16 before accumulating: 7-bit activations keep
# that from saturating (what torch's own dynamic quantisation does on x86).
REDUCE_RANGE = True


def available() -> bool:
    engines = torch.backends.quantized.supported_engines
    return hasattr(torch.ops.quantized, "linear_dynamic") and (
        "x86" in engines or "fbgemm" in engines)


def int8_weight(weight: torch.Tensor) -> torch.Tensor:
    """An (out, in) float weight, or a stack of them (E, out, in), as int8 with per-output-
    channel `.scale` and its `.packed` form (one per matrix of a stack)."""
    matrices = [_quantised(w) for w in (weight if weight.dim() == 3 else [weight])]
    q = torch.stack([m.int_repr() for m in matrices])
    scale = torch.stack([m.q_per_channel_scales().float() for m in matrices])
    packed = [torch.ops.quantized.linear_prepack(m, None) for m in matrices]
    if weight.dim() == 2:
        q, scale, packed = q[0], scale[0], packed[0]
    q.scale, q.packed = scale, packed
    return q


def _quantised(weight: torch.Tensor) -> torch.Tensor:
    weight = weight.detach().float().contiguous()
    scales = (weight.abs().amax(1) / 127).clamp(min=1e-12).double()
    with warnings.catch_warnings():  # quantized tensors are flagged deprecated, not yet gone
        warnings.simplefilter("ignore")
        zeros = torch.zeros_like(scales, dtype=torch.long)
        return torch.quantize_per_channel(weight, scales, zeros, 0, torch.qint8)


def linear(x: torch.Tensor, packed) -> torch.Tensor:
    """x (..., in) float -> (..., out) fp32 through an int8 weight's packed form."""
    return torch.ops.quantized.linear_dynamic(x.float().contiguous(), packed, REDUCE_RANGE)
