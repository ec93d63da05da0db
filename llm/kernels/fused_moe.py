"""Fused MoE experts in Triton, with bf16/fp32 weights or fp8 (e4m3, 128 x 128 block scales).

1. `moe_align_block_size` (host, as vLLM does it): the (token, expert) pairs are sorted by
   expert and each expert's run is padded to a multiple of BLOCK_M, so every block of rows
   belongs to one expert. Padding rows carry an out-of-range id and are masked.
2. `_expert_gemm_kernel`, one gathered GEMM body with compile-time flags (as vLLM's
   `fused_moe_kernel`), launched twice:
   - gate/up (GATHER, GATED): for a block of rows of one expert, the token rows are gathered
     inside the kernel (no permuted copy of the activations), multiplied by the expert's gate
     and up weights, and SiLU(gate) * up is written to an intermediate buffer, one row a pair;
   - down (ROUTED): the intermediate rows times the expert's down weights, scaled by the
     routing weight, written to the pair's slot; the host sums each token's top-k slots.

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

# Block sizes (BLOCK_M, BLOCK_N, BLOCK_K) by device and weights. The interpreter's are the
# smallest that keep its tests quick; fp8 must step K by one 128-wide scale block. The CUDA
# entries are the ones the kernels are verified with (bench/gpu_check.py); retune them there
# on a new card and record the measurement beside the entry.
BLOCKS = {
    ("interpreter", "dense"): (16, 32, 32),
    ("interpreter", "fp8"): (16, 32, BLOCK),
    ("cuda", "dense"): (16, 32, 32),
    ("cuda", "fp8"): (16, 32, BLOCK),
}


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
def _block_product(a, a_scale, w_ptr, w_scale_ptr, cols, ks, k0, k_ok, col_ok, stride_wn,
                   stride_wsn, BLOCK_K: tl.constexpr, USE_FP8: tl.constexpr,
                   UPCAST: tl.constexpr):
    """One K step: the activation tile times the expert's weight rows `cols`, in fp32."""
    w = tl.load(w_ptr + cols[None, :] * stride_wn + ks[:, None],
                mask=k_ok[:, None] & col_ok[None, :], other=0.0)
    if UPCAST or USE_FP8:
        a, w = a.to(tl.float32), w.to(tl.float32)
    part = tl.dot(a, w)
    if USE_FP8:
        w_scale = tl.load(w_scale_ptr + (cols // BLOCK_K) * stride_wsn + k0 // BLOCK_K,
                          mask=col_ok, other=0.0)
        part = part * a_scale[:, None] * w_scale[None, :]
    return part


@triton.jit
def _expert_gemm_kernel(a_ptr, w_ptr, out_ptr, a_scale_ptr, w_scale_ptr, sorted_ids_ptr,
                        block_experts_ptr, weights_ptr, num_pairs, N, K, top_k,
                        stride_at, stride_we, stride_wn, stride_ot,
                        stride_ast, stride_wse, stride_wsn,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                        GATHER: tl.constexpr, GATED: tl.constexpr, ROUTED: tl.constexpr,
                        USE_FP8: tl.constexpr, UPCAST: tl.constexpr):
    """A block of (token, expert) pairs of one expert times that expert's weights.

    GATHER: the rows are tokens (pair // top_k), read in place, not a permuted copy.
    GATED: the weights hold gate rows then up rows (N each); SiLU(gate) * up is written.
    ROUTED: each row is scaled by its routing weight."""
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    expert = tl.load(block_experts_ptr + pid_m)
    rows = tl.load(sorted_ids_ptr + pid_m * BLOCK_M + tl.arange(0, BLOCK_M))
    valid = rows < num_pairs
    a_rows = rows // top_k if GATHER else rows
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    col_ok = cols < N
    w_base = w_ptr + expert * stride_we
    s_base = w_scale_ptr + expert * stride_wse
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    acc_up = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        k_ok = ks < K
        a = tl.load(a_ptr + a_rows[:, None] * stride_at + ks[None, :],
                    mask=valid[:, None] & k_ok[None, :], other=0.0)
        if USE_FP8:
            a_scale = tl.load(a_scale_ptr + a_rows * stride_ast + k0 // BLOCK_K, mask=valid,
                              other=0.0)
        else:
            a_scale = tl.zeros((BLOCK_M,), dtype=tl.float32)
        acc += _block_product(a, a_scale, w_base, s_base, cols, ks, k0, k_ok, col_ok,
                              stride_wn, stride_wsn, BLOCK_K, USE_FP8, UPCAST)
        if GATED:
            acc_up += _block_product(a, a_scale, w_base, s_base, cols + N, ks, k0, k_ok, col_ok,
                                     stride_wn, stride_wsn, BLOCK_K, USE_FP8, UPCAST)
    if GATED:
        acc = acc / (1.0 + tl.exp(-acc)) * acc_up            # SiLU(gate) * up, fused
    if ROUTED:
        routing = tl.load(weights_ptr + rows, mask=valid, other=0.0)
        acc = acc * routing[:, None]
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


def block_sizes(device: torch.device, fp8: bool) -> tuple[int, int, int]:
    """(BLOCK_M, BLOCK_N, BLOCK_K) from `BLOCKS`; fp8 steps K one scale block at a time."""
    kind = "cuda" if device.type == "cuda" else "interpreter"
    return BLOCKS[kind, "fp8" if fp8 else "dense"]


def _check_inputs(x: torch.Tensor, topk_ids: torch.Tensor, topk_weights: torch.Tensor,
                  gate_up: torch.Tensor, down: torch.Tensor, fp8: bool) -> None:
    _check(x.dim() == 2 and x.is_contiguous(), "x must be a contiguous (tokens, hidden) tensor")
    _check(topk_ids.shape == topk_weights.shape and topk_ids.shape[0] == x.shape[0],
           f"topk ids {tuple(topk_ids.shape)} and weights {tuple(topk_weights.shape)} must be "
           f"(tokens={x.shape[0]}, k)")
    num_experts, two_inter, hidden = gate_up.shape
    inter = two_inter // 2
    _check(hidden == x.shape[1] and tuple(down.shape) == (num_experts, hidden, inter),
           f"weights gate_up {tuple(gate_up.shape)} / down {tuple(down.shape)} do not fit "
           f"hidden {x.shape[1]}")
    _check(gate_up.is_contiguous() and down.is_contiguous(), "expert weights must be contiguous")
    if fp8:
        _check(hidden % BLOCK == 0 and inter % BLOCK == 0,
               f"fp8 needs hidden ({hidden}) and intermediate ({inter}) sizes that are "
               f"multiples of {BLOCK}")
    else:
        _check(gate_up.dtype == x.dtype == down.dtype,
               f"dtypes differ: x {x.dtype}, weights {gate_up.dtype}")


def fused_experts(x: torch.Tensor, topk_ids: torch.Tensor, topk_weights: torch.Tensor,
                  gate_up: torch.Tensor, down: torch.Tensor, quantize=None) -> torch.Tensor:
    """x (T, H) -> (T, H) through the top-k experts. Weights: `gate_up` (E, 2I, H) and `down`
    (E, H, I), in x's dtype or e4m3 with their block scales as `.scale` (`fp8_weight`).
    `quantize` replaces the activation quantiser (tests pass the torch reference, because the
    Triton interpreter rounds fp32 -> fp8 casts wrongly)."""
    use_fp8 = gate_up.dtype == FP8
    _check_inputs(x, topk_ids, topk_weights, gate_up, down, use_fp8)
    num_experts, two_inter, hidden = gate_up.shape
    inter = two_inter // 2
    block_m, block_n, block_k = block_sizes(x.device, use_fp8)
    tokens, top_k = topk_ids.shape
    pairs = tokens * top_k
    sorted_ids, block_experts, total = moe_align_block_size(topk_ids, block_m, num_experts)
    grid_m = max(total, block_m) // block_m
    no_scale = x.new_empty((1, 1, 1), dtype=torch.float32)
    w1s, w2s = (gate_up.scale, down.scale) if use_fp8 else (no_scale, no_scale)
    a, a_scale = (quantize or act_quant)(x) if use_fp8 else (x, no_scale[0])
    act_dtype = torch.float32 if use_fp8 or x.dtype == torch.float32 else x.dtype
    inter_cache = torch.zeros((pairs, inter), dtype=act_dtype, device=x.device)
    out = torch.zeros((pairs, hidden), dtype=torch.float32, device=x.device)
    weights = topk_weights.reshape(-1).to(torch.float32).contiguous()
    flags = {"BLOCK_M": block_m, "BLOCK_N": block_n, "BLOCK_K": block_k, "USE_FP8": use_fp8,
             "UPCAST": not x.is_cuda}
    _expert_gemm_kernel[(grid_m, triton.cdiv(inter, block_n))](
        a, gate_up, inter_cache, a_scale, w1s, sorted_ids, block_experts, weights, pairs,
        inter, hidden, top_k, a.stride(0), gate_up.stride(0), gate_up.stride(1),
        inter_cache.stride(0), a_scale.stride(0), w1s.stride(0), w1s.stride(1),
        GATHER=True, GATED=True, ROUTED=False, **flags)
    a2, a2_scale = ((quantize or act_quant)(inter_cache) if use_fp8
                    else (inter_cache.to(x.dtype), a_scale))
    _expert_gemm_kernel[(grid_m, triton.cdiv(hidden, block_n))](
        a2, down, out, a2_scale, w2s, sorted_ids, block_experts, weights, pairs, hidden, inter,
        1, a2.stride(0), down.stride(0), down.stride(1), out.stride(0),
        a2_scale.stride(0), w2s.stride(0), w2s.stride(1),
        GATHER=False, GATED=False, ROUTED=True, **flags)
    return out.view(tokens, top_k, hidden).sum(1).to(x.dtype)   # scatter back and sum
