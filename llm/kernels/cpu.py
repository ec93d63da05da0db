"""The CPU path of the experts: sort the (token, expert) pairs by expert once, gather the
tokens once, then the GEMMs on contiguous per-expert slices: `torch._grouped_mm` (one call per
projection, fp32/bf16) where torch has it, else one pair of GEMMs per expert with tokens.

fp8 weights are dequantised per expert on the fly (only the experts this batch uses), since
the CPU has no fp8 matmul with block scales; int8 weights (`int8.int8_weight`) go through
torch's dynamic-quantised int8 matmul, one packed weight per expert.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from llm.kernels.int8 import linear as int8_linear
from llm.kernels.reference import FP8, activate, block_dequant


def experts_cpu(x: torch.Tensor, gate_up: torch.Tensor | None, down: torch.Tensor | None,
                topk_ids: torch.Tensor, topk_weights: torch.Tensor,
                deltas: dict | None = None, activation: str = "silu") -> torch.Tensor:
    """x (T, H) -> (T, H). Weights in x's dtype, or e4m3 or int8 with `.scale` (`fp8_weight`,
    `int8_weight`); low-rank `deltas` being trained add to the projections' outputs; the gate's
    `activation` is SiLU or GELU-tanh (`reference.activate`). Differentiable (training takes
    the per-expert loop)."""
    deltas = deltas or {}
    tokens, top_k = topk_ids.shape
    flat = topk_ids.reshape(-1)
    order = torch.argsort(flat, stable=True)
    n_experts = gate_up.shape[0]
    int8 = gate_up.dtype == torch.int8
    counts = torch.bincount(flat, minlength=n_experts).tolist()
    token_of = order // top_k
    gathered = x.index_select(0, token_of)
    weights = topk_weights.reshape(-1).index_select(0, order).to(x.dtype).unsqueeze(-1)
    if not int8 and not deltas and _grouped_mm_ok(x, gate_up):
        offsets = torch.cumsum(torch.tensor(counts), 0).to(torch.int32)
        h = torch._grouped_mm(gathered, gate_up.transpose(1, 2), offs=offsets)
        gate, up = h.chunk(2, dim=-1)
        out = torch._grouped_mm(activate(gate, activation) * up, down.transpose(1, 2),
                                offs=offsets) * weights
        return torch.zeros_like(x).index_add(0, token_of, out.to(x.dtype))
    parts, start = [], 0
    for expert, n in enumerate(counts):
        if n == 0:
            continue
        rows = gathered[start:start + n]
        if int8:
            gate, up = int8_linear(rows, gate_up.packed[expert]).chunk(2, dim=-1)
            down_out = int8_linear(activate(gate, activation) * up, down.packed[expert])
        else:
            gate, up = _project(rows, gate_up, expert, deltas.get("gate_up")).chunk(2, dim=-1)
            down_out = _project(activate(gate, activation) * up, down, expert, deltas.get("down"))
        parts.append(down_out.to(x.dtype))
        start += n
    out = torch.cat(parts) * weights if parts else gathered[:0]
    return torch.zeros_like(x).index_add(0, token_of, out)


def _grouped_mm_ok(x: torch.Tensor, gate_up: torch.Tensor) -> bool:
    size = x.element_size()
    aligned = all(d * size % 16 == 0 for d in (gate_up.shape[2], gate_up.shape[1] // 2))
    # torch._grouped_mm has no CPU backward (torch 2.13): training takes the per-expert loop.
    return (hasattr(torch, "_grouped_mm") and x.dtype in (torch.bfloat16, torch.float32)
            and gate_up.dtype == x.dtype and x.shape[0] > 0 and aligned
            and not torch.is_grad_enabled())


def _project(rows: torch.Tensor, w: torch.Tensor, expert: int, delta) -> torch.Tensor:
    out = F.linear(rows, _weight(w, expert, rows.dtype))
    return out if delta is None else out + delta.on_activations(rows, expert)


def _weight(w: torch.Tensor, expert: int, dtype: torch.dtype) -> torch.Tensor:
    """One expert's weight; e4m3 ones are dequantised (only the experts a batch uses)."""
    if w.dtype == FP8:
        return block_dequant(w[expert], w.scale[expert], dtype=dtype)
    return w[expert]
