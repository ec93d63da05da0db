"""Pure-torch references: the definitions every kernel is tested against.

Expert weights follow transformers' layout: `gate_up` (E, 2I, H) with the gate rows first, and
`down` (E, H, I); an expert computes down @ (act(gate @ x) * (up @ x)), where the activation is
SiLU (SwiGLU: Llama, SmolLM2, Qwen, DeepSeek) or GELU with the tanh approximation (GeGLU: Gemma).

fp8 follows the DeepSeek-V3 recipe: weights in e4m3 with one fp32 scale per 128 x 128 block,
activations quantised per token in groups of 128 along the hidden dimension, products
accumulated in fp32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FP8 = torch.float8_e4m3fn
FP8_MAX = 448.0
BLOCK = 128
# The gated MLPs' activations, by name (transformers calls the second `gelu_pytorch_tanh`).
ACTIVATIONS = ("silu", "gelu_tanh")


def activate(gate: torch.Tensor, activation: str = "silu") -> torch.Tensor:
    """The gate's activation: SiLU, or GELU with the tanh approximation."""
    if activation == "silu":
        return F.silu(gate)
    if activation == "gelu_tanh":
        return F.gelu(gate, approximate="tanh")
    raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, not {activation!r}")


def experts_reference(x: torch.Tensor, gate_up: torch.Tensor, down: torch.Tensor,
                      topk_ids: torch.Tensor, topk_weights: torch.Tensor,
                      activation: str = "silu") -> torch.Tensor:
    """Token by token, expert by expert: the definition, in fp32."""
    out = torch.zeros(x.shape[0], down.shape[1], dtype=torch.float32, device=x.device)
    inter = down.shape[2]
    for t in range(x.shape[0]):
        for j in range(topk_ids.shape[1]):
            e = int(topk_ids[t, j])
            h = gate_up[e].float() @ x[t].float()
            act = activate(h[:inter], activation) * h[inter:]
            out[t] += topk_weights[t, j].float() * (down[e].float() @ act)
    return out


def block_quant(w: torch.Tensor, block: int = BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., N, K) weights -> e4m3 values and (..., ceil(N/b), ceil(K/b)) fp32 scales."""
    *lead, n, k = w.shape
    pn, pk = -n % block, -k % block
    padded = F.pad(w.float(), (0, pk, 0, pn))
    tiles = padded.reshape(*lead, (n + pn) // block, block, (k + pk) // block, block)
    amax = tiles.abs().amax(dim=(-3, -1), keepdim=True).clamp(min=1e-12)
    scale = amax / FP8_MAX
    q = (tiles / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8)
    q = q.reshape(*lead, n + pn, k + pk)[..., :n, :k].contiguous()
    return q, scale.squeeze(-1).squeeze(-2).contiguous()


def fp8_weight(w: torch.Tensor) -> torch.Tensor:
    """`w` in e4m3 with its block scales hanging on it as `.scale` (DeepSeek-V3's convention):
    one tensor that every experts path reads, whatever the device."""
    q, scale = block_quant(w)
    q.scale = scale
    return q


def dequantise(w: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A weight as `dtype`, through its block scales when it is e4m3."""
    return block_dequant(w, w.scale, dtype=dtype) if w.dtype == FP8 else w.to(dtype)


def block_dequant(q: torch.Tensor, scale: torch.Tensor, block: int = BLOCK,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Inverse of `block_quant` (up to rounding)."""
    n, k = q.shape[-2:]
    expanded = scale.repeat_interleave(block, -2).repeat_interleave(block, -1)[..., :n, :k]
    return (q.float() * expanded).to(dtype)


def act_quant_reference(x: torch.Tensor, group: int = BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, K) activations -> e4m3 values and (T, K/group) fp32 scales, per token and group."""
    t, k = x.shape
    if k % group:
        raise ValueError(f"hidden size {k} is not a multiple of the group size {group}")
    groups = x.float().reshape(t, k // group, group)
    scale = groups.abs().amax(-1, keepdim=True).clamp(min=1e-12) / FP8_MAX
    q = (groups / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8).reshape(t, k)
    return q, scale.squeeze(-1)


def fp8_linear_reference(xq: torch.Tensor, xs: torch.Tensor, wq: torch.Tensor,
                         ws: torch.Tensor, group: int = BLOCK) -> torch.Tensor:
    """y = x @ w.T from quantised parts, accumulating in fp32."""
    x = (xq.float().reshape(xq.shape[0], -1, group) * xs.unsqueeze(-1)).reshape(xq.shape)
    return x @ block_dequant(wq, ws, group).T


def experts_fp8_reference(x: torch.Tensor, gate_up: torch.Tensor, down: torch.Tensor,
                          topk_ids: torch.Tensor, topk_weights: torch.Tensor,
                          activation: str = "silu") -> torch.Tensor:
    """The fp8 recipe step by step (weights from `fp8_weight`): quantised activations x
    quantised weights, fp32 sums, the intermediate quantised again before the down
    projection."""
    inter = down.shape[2]
    out = torch.zeros(x.shape[0], down.shape[1], dtype=torch.float32, device=x.device)
    xq, xs = act_quant_reference(x)
    for t in range(x.shape[0]):
        for j in range(topk_ids.shape[1]):
            e = int(topk_ids[t, j])
            h = fp8_linear_reference(xq[t:t + 1], xs[t:t + 1], gate_up[e],
                                     gate_up.scale[e])[0]
            act = (activate(h[:inter], activation) * h[inter:]).unsqueeze(0)
            aq, a_s = act_quant_reference(act)
            out[t] += topk_weights[t, j].float() * fp8_linear_reference(
                aq, a_s, down[e], down.scale[e])[0]
    return out
