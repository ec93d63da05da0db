"""Fused MoE experts in Triton, with bf16/fp32 weights or fp8 (e4m3, 128 x 128 block scales).

1. `moe_align_block_size` (host, as vLLM does it): the (token, expert) pairs are sorted by
   expert and each expert's run is padded to a multiple of BLOCK_M, so every block of rows
   belongs to one expert. Padding rows carry an out-of-range id and are masked.
2. `_gate_up_kernel`: for a block of rows of one expert, the token rows are gathered inside the
   kernel (no permuted copy of the activations), multiplied by the expert's gate and up
   weights, and SiLU(gate) * up is written to an intermediate buffer, one row per pair.
3. `_down_kernel`: the intermediate rows times the expert's down weights, scaled by the
   routing weight, written back to the pair's slot; the host sums each token's top-k slots.

fp8: activations are quantised per token in groups of 128 (`act_quant`); BLOCK_K is 128, so
each K step multiplies one activation group by one weight block, and the product is scaled by
both scales and accumulated in fp32.

Under TRITON_INTERPRET=1 (tests on a CPU) `tl.dot` on bf16 multiplies bit patterns, so the
kernels upcast to fp32 before the dot when `UPCAST` is set (the wrapper sets it whenever the
tensors are not on a GPU).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from llm.kernels.reference import BLOCK, FP8

FP8_MAX = 448.0


def moe_align_block_size(topk_ids: torch.Tensor, block_m: int, num_experts: int
                         ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(sorted pair ids padded per expert, the expert of each block, padded length)."""
    flat = topk_ids.reshape(-1)
    pairs = flat.numel()
    counts = torch.bincount(flat, minlength=num_experts)
    padded = (counts + block_m - 1) // block_m * block_m
    total = int(padded.sum())
    order = torch.argsort(flat, stable=True)
    sorted_ids = torch.full((max(total, block_m),), pairs, dtype=torch.int32,
                            device=topk_ids.device)
    starts = torch.cumsum(padded, 0) - padded
    rank = torch.arange(pairs, device=topk_ids.device) - (torch.cumsum(counts, 0) - counts
                                                          ).repeat_interleave(counts)
    sorted_ids[(starts.repeat_interleave(counts) + rank).long()] = order.to(torch.int32)
    block_experts = torch.repeat_interleave(torch.arange(num_experts, device=topk_ids.device),
                                            padded // block_m).to(torch.int32)
    return sorted_ids, block_experts, total


@triton.jit
def _gate_up_kernel(x_ptr, w_ptr, out_ptr, x_scale_ptr, w_scale_ptr, sorted_ids_ptr,
                    block_experts_ptr, num_pairs, H, INTER, top_k,
                    stride_xt, stride_we, stride_wn, stride_ot,
                    stride_xst, stride_wse, stride_wsn,
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                    USE_FP8: tl.constexpr, UPCAST: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    expert = tl.load(block_experts_ptr + pid_m)
    rows = tl.load(sorted_ids_ptr + pid_m * BLOCK_M + tl.arange(0, BLOCK_M))
    valid = rows < num_pairs
    tokens = rows // top_k                                   # gather inside the kernel
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    col_ok = cols < INTER
    acc_gate = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    acc_up = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, H, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        k_ok = ks < H
        a = tl.load(x_ptr + tokens[:, None] * stride_xt + ks[None, :],
                    mask=valid[:, None] & k_ok[None, :], other=0.0)
        w_base = w_ptr + expert * stride_we + ks[:, None]
        wg = tl.load(w_base + cols[None, :] * stride_wn, mask=k_ok[:, None] & col_ok[None, :],
                     other=0.0)
        wu = tl.load(w_base + (cols[None, :] + INTER) * stride_wn,
                     mask=k_ok[:, None] & col_ok[None, :], other=0.0)
        if UPCAST or USE_FP8:
            a, wg, wu = a.to(tl.float32), wg.to(tl.float32), wu.to(tl.float32)
        gate = tl.dot(a, wg)
        up = tl.dot(a, wu)
        if USE_FP8:
            a_scale = tl.load(x_scale_ptr + tokens * stride_xst + k0 // BLOCK_K, mask=valid,
                              other=0.0)
            s_base = w_scale_ptr + expert * stride_wse + k0 // BLOCK_K
            g_scale = tl.load(s_base + (cols // BLOCK_K) * stride_wsn, mask=col_ok, other=0.0)
            u_scale = tl.load(s_base + ((cols + INTER) // BLOCK_K) * stride_wsn, mask=col_ok,
                              other=0.0)
            gate = gate * a_scale[:, None] * g_scale[None, :]
            up = up * a_scale[:, None] * u_scale[None, :]
        acc_gate += gate
        acc_up += up
    act = acc_gate / (1.0 + tl.exp(-acc_gate)) * acc_up      # SiLU(gate) * up, fused
    tl.store(out_ptr + rows[:, None] * stride_ot + cols[None, :],
             act.to(out_ptr.dtype.element_ty), mask=valid[:, None] & col_ok[None, :])


@triton.jit
def _down_kernel(a_ptr, w_ptr, out_ptr, a_scale_ptr, w_scale_ptr, sorted_ids_ptr,
                 block_experts_ptr, weights_ptr, num_pairs, H, INTER,
                 stride_at, stride_we, stride_wn, stride_ot,
                 stride_ast, stride_wse, stride_wsn,
                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                 USE_FP8: tl.constexpr, UPCAST: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    expert = tl.load(block_experts_ptr + pid_m)
    rows = tl.load(sorted_ids_ptr + pid_m * BLOCK_M + tl.arange(0, BLOCK_M))
    valid = rows < num_pairs
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    col_ok = cols < H
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, INTER, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        k_ok = ks < INTER
        a = tl.load(a_ptr + rows[:, None] * stride_at + ks[None, :],
                    mask=valid[:, None] & k_ok[None, :], other=0.0)
        w = tl.load(w_ptr + expert * stride_we + cols[None, :] * stride_wn + ks[:, None],
                    mask=k_ok[:, None] & col_ok[None, :], other=0.0)
        if UPCAST or USE_FP8:
            a, w = a.to(tl.float32), w.to(tl.float32)
        part = tl.dot(a, w)
        if USE_FP8:
            a_scale = tl.load(a_scale_ptr + rows * stride_ast + k0 // BLOCK_K, mask=valid,
                              other=0.0)
            w_scale = tl.load(w_scale_ptr + expert * stride_wse + (cols // BLOCK_K) * stride_wsn
                              + k0 // BLOCK_K, mask=col_ok, other=0.0)
            part = part * a_scale[:, None] * w_scale[None, :]
        acc += part
    routing = tl.load(weights_ptr + rows, mask=valid, other=0.0)
    acc = acc * routing[:, None]                              # the routing weight, applied here
    tl.store(out_ptr + rows[:, None] * stride_ot + cols[None, :],
             acc.to(out_ptr.dtype.element_ty), mask=valid[:, None] & col_ok[None, :])


@triton.jit
def _act_quant_kernel(x_ptr, q_ptr, s_ptr, K, stride_xt, stride_qt, stride_st,
                      GROUP: tl.constexpr):
    t = tl.program_id(0)
    g = tl.program_id(1)
    offs = g * GROUP + tl.arange(0, GROUP)
    x = tl.load(x_ptr + t * stride_xt + offs, mask=offs < K, other=0.0).to(tl.float32)
    amax = tl.maximum(tl.max(tl.abs(x), axis=0), 1e-12)
    scale = amax / 448.0
    q = tl.clamp(x / scale, -448.0, 448.0)                    # saturate before the cast
    tl.store(q_ptr + t * stride_qt + offs, q.to(q_ptr.dtype.element_ty), mask=offs < K)
    tl.store(s_ptr + t * stride_st + g, scale)


def act_quant(x: torch.Tensor, group: int = BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token, per-group fp8 quantisation: (T, K) -> e4m3 (T, K), fp32 scales (T, K/group)."""
    _check(x.dim() == 2 and x.is_contiguous(), "act_quant needs a contiguous 2-D tensor")
    _check(x.shape[1] % group == 0, f"hidden size {x.shape[1]} is not a multiple of {group}")
    t, k = x.shape
    q = torch.empty((t, k), dtype=FP8, device=x.device)
    s = torch.empty((t, k // group), dtype=torch.float32, device=x.device)
    _act_quant_kernel[(t, k // group)](x, q, s, k, x.stride(0), q.stride(0), s.stride(0),
                                       GROUP=group)
    return q, s


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def fused_experts(x: torch.Tensor, topk_ids: torch.Tensor, topk_weights: torch.Tensor,
                  gate_up: torch.Tensor | None = None, down: torch.Tensor | None = None,
                  fp8: dict | None = None, block_m: int = 16, block_n: int = 32,
                  block_k: int = 32, quantize=None) -> torch.Tensor:
    """x (T, H) -> (T, H) through the top-k experts. Weights: `gate_up` (E, 2I, H) and `down`
    (E, H, I) in x's dtype, or `fp8` = {"gate_up": (q, s), "down": (q, s)} from block_quant.
    `quantize` replaces the activation quantiser (tests pass the torch reference, because the
    Triton interpreter rounds fp32 -> fp8 casts wrongly)."""
    quantize = quantize or act_quant
    _check(x.dim() == 2 and x.is_contiguous(), "x must be a contiguous (tokens, hidden) tensor")
    _check(topk_ids.shape == topk_weights.shape and topk_ids.shape[0] == x.shape[0],
           f"topk ids {tuple(topk_ids.shape)} and weights {tuple(topk_weights.shape)} must be "
           f"(tokens={x.shape[0]}, k)")
    use_fp8 = fp8 is not None
    w1, w1s = fp8["gate_up"] if use_fp8 else (gate_up, None)
    w2, w2s = fp8["down"] if use_fp8 else (down, None)
    _check(w1 is not None and w2 is not None, "pass gate_up and down, or fp8 weights")
    num_experts, two_inter, hidden = w1.shape
    inter = two_inter // 2
    _check(hidden == x.shape[1] and tuple(w2.shape) == (num_experts, hidden, inter),
           f"weights gate_up {tuple(w1.shape)} / down {tuple(w2.shape)} do not fit hidden "
           f"{x.shape[1]}")
    _check(w1.is_contiguous() and w2.is_contiguous(), "expert weights must be contiguous")
    if use_fp8:
        _check(hidden % BLOCK == 0 and inter % BLOCK == 0,
               f"fp8 needs hidden ({hidden}) and intermediate ({inter}) sizes that are "
               f"multiples of {BLOCK}")
        block_k = BLOCK
    else:
        _check(w1.dtype == x.dtype == w2.dtype, f"dtypes differ: x {x.dtype}, weights {w1.dtype}")
    tokens, top_k = topk_ids.shape
    pairs = tokens * top_k
    sorted_ids, block_experts, total = moe_align_block_size(topk_ids, block_m, num_experts)
    grid_m = max(total, block_m) // block_m
    upcast = not x.is_cuda
    if use_fp8:
        xq, xs = quantize(x)
        a, a_scale = xq, xs
    else:
        a, a_scale = x, x.new_empty((1, 1), dtype=torch.float32)
        w1s = w2s = x.new_empty((1, 1, 1), dtype=torch.float32)
    act_dtype = torch.float32 if use_fp8 or x.dtype == torch.float32 else x.dtype
    inter_cache = torch.zeros((pairs, inter), dtype=act_dtype, device=x.device)
    _gate_up_kernel[(grid_m, triton.cdiv(inter, block_n))](
        a, w1, inter_cache, a_scale, w1s, sorted_ids, block_experts, pairs, hidden, inter, top_k,
        a.stride(0), w1.stride(0), w1.stride(1), inter_cache.stride(0),
        a_scale.stride(0), w1s.stride(0), w1s.stride(1),
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k, USE_FP8=use_fp8, UPCAST=upcast)
    if use_fp8:
        a2, a2_scale = quantize(inter_cache)
    else:
        a2, a2_scale = inter_cache.to(x.dtype), a_scale
    out = torch.zeros((pairs, hidden), dtype=torch.float32, device=x.device)
    weights = topk_weights.reshape(-1).to(torch.float32).contiguous()
    _down_kernel[(grid_m, triton.cdiv(hidden, block_n))](
        a2, w2, out, a2_scale, w2s, sorted_ids, block_experts, weights, pairs, hidden, inter,
        a2.stride(0), w2.stride(0), w2.stride(1), out.stride(0),
        a2_scale.stride(0), w2s.stride(0), w2s.stride(1),
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k, USE_FP8=use_fp8, UPCAST=upcast)
    return out.view(tokens, top_k, hidden).sum(1).to(x.dtype)   # scatter back and sum
