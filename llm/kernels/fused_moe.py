"""Fused MoE experts in Triton, with bf16/fp32 weights or fp8 (e4m3, 128 x 128 block scales).

1. `moe_align_block_size` (torch ops on the device, as vLLM does it, and no host sync): the
   (token, expert) pairs are sorted by expert and each expert's run is padded to a multiple
   of BLOCK_M, so every block of rows belongs to one expert. Padding rows carry an
   out-of-range id and are masked.
2. `_expert_gemm_kernel`, one gathered GEMM body with compile-time flags (as vLLM's
   `fused_moe_kernel`), launched twice:
   - gate/up (GATHER, GATED): for a block of rows of one expert, the token rows are gathered
     inside the kernel (no permuted copy of the activations), multiplied by the expert's gate
     and up weights, and act(gate) * up (SiLU, or GELU-tanh for Gemma's GeGLU) is written to an
     intermediate buffer, one row a pair;
   - down (ROUTED): the intermediate rows times the expert's down weights, scaled by the
     routing weight, written to the pair's slot; the host sums each token's top-k slots.

fp8: activations are quantised per token in groups of 128 (`act_quant`); BLOCK_K is 128, so
each K step multiplies one activation group by one weight block (an e4m3 x e4m3 product on the
GPU), and the product is scaled by both scales and accumulated in fp32.

Block sizes, warps and stages come from `llm.kernels.tuning`: tuned per card and shape.

Under TRITON_INTERPRET=1 (tests on a CPU) `tl.dot` on bf16 multiplies bit patterns, so the
kernels upcast to fp32 before the dot when `UPCAST` is set (the wrapper sets it whenever the
tensors are not on a GPU).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from llm.kernels.reference import ACTIVATIONS, BLOCK, FP8
from llm.kernels.tuning import KernelConfig, config_for

FP8_MAX = 448.0


def moe_align_block_size(topk_ids: torch.Tensor, block_m: int, num_experts: int
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """(sorted pair ids, each expert's run padded to a multiple of `block_m` with the
    out-of-range id `pairs`; the expert of each block of rows, -1 past the last).

    Sized for the worst case (every used expert one row short of a full block), so nothing
    waits for the GPU to know the padded length: no host sync, and a CUDA graph can capture
    it. Blocks past the end exit at once."""
    flat = topk_ids.reshape(-1)
    pairs, device = flat.numel(), flat.device
    counts = torch.zeros(num_experts, dtype=torch.long, device=device).index_add_(
        0, flat, torch.ones_like(flat))                 # bincount would sync on a GPU
    padded = (counts + block_m - 1) // block_m * block_m
    capacity = triton.cdiv(pairs + min(num_experts, pairs) * (block_m - 1), block_m) * block_m
    sorted_experts, order = torch.sort(flat, stable=True)
    first = torch.cumsum(counts, 0) - counts            # each expert's first sorted position
    starts = torch.cumsum(padded, 0) - padded           # and its first padded slot
    slot = starts[sorted_experts] + torch.arange(pairs, device=device) - first[sorted_experts]
    sorted_ids = torch.full((max(capacity, block_m),), pairs, dtype=torch.int32, device=device)
    sorted_ids[slot] = order.to(torch.int32)
    block_ends = torch.cumsum(padded // block_m, 0)
    blocks = torch.arange(sorted_ids.numel() // block_m, device=device)
    block_experts = torch.searchsorted(block_ends, blocks, right=True)
    block_experts = torch.where(block_experts < num_experts, block_experts, -1)
    return sorted_ids, block_experts.to(torch.int32)


@triton.jit
def _block_product(a, a_scale, w_ptr, w_scale_ptr, cols, ks, k0, k_ok, col_ok, stride_wn,
                   stride_wsn, BLOCK_K: tl.constexpr, USE_FP8: tl.constexpr,
                   UPCAST: tl.constexpr):
    """One K step: the activation tile times the expert's weight rows `cols`, in fp32."""
    w = tl.load(w_ptr + cols[None, :] * stride_wn + ks[:, None],
                mask=k_ok[:, None] & col_ok[None, :], other=0.0)
    if UPCAST:
        a, w = a.to(tl.float32), w.to(tl.float32)
    part = tl.dot(a, w)                                      # e4m3 x e4m3 -> fp32 on the GPU
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
                        USE_FP8: tl.constexpr, UPCAST: tl.constexpr, GELU: tl.constexpr):
    """A block of (token, expert) pairs of one expert times that expert's weights.

    GATHER: the rows are tokens (pair // top_k), read in place, not a permuted copy.
    GATED: the weights hold gate rows then up rows (N each); act(gate) * up is written, act
    being SiLU, or GELU (tanh approximation) when GELU is set.
    ROUTED: each row is scaled by its routing weight."""
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    expert = tl.load(block_experts_ptr + pid_m)
    if expert < 0:                                           # past the last padded block
        return
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
    if GATED and GELU:                                       # GELU-tanh(gate) * up, fused
        # 0.5 (1 + tanh(u)) = sigmoid(2u), u = sqrt(2 / pi) (x + 0.044715 x^3)
        u2 = 1.5957691216057308 * (acc + 0.044715 * acc * acc * acc)
        acc = acc / (1.0 + tl.exp(-u2)) * acc_up
    elif GATED:
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
                  gate_up: torch.Tensor, down: torch.Tensor, quantize=None,
                  config: KernelConfig | None = None, activation: str = "silu") -> torch.Tensor:
    """x (T, H) -> (T, H) through the top-k experts. Weights: `gate_up` (E, 2I, H) and `down`
    (E, H, I), in x's dtype or e4m3 with their block scales as `.scale` (`fp8_weight`).
    `quantize` replaces the activation quantiser (tests pass the torch reference, because the
    Triton interpreter rounds fp32 -> fp8 casts wrongly); `config` replaces the tuned launch
    configuration (`llm.kernels.tuning`; the tuning sweep passes each candidate); `activation`
    is the gate's, silu or gelu_tanh."""
    _check(activation in ACTIVATIONS, f"activation must be one of {ACTIVATIONS}: {activation!r}")
    use_fp8 = gate_up.dtype == FP8
    _check_inputs(x, topk_ids, topk_weights, gate_up, down, use_fp8)
    num_experts, two_inter, hidden = gate_up.shape
    inter = two_inter // 2
    tokens, top_k = topk_ids.shape
    c = config or config_for(x, gate_up, tokens, top_k)
    _check(not use_fp8 or c.block_k == BLOCK, f"fp8 steps K by one scale block: BLOCK_K {BLOCK}")
    pairs = tokens * top_k
    sorted_ids, block_experts = moe_align_block_size(topk_ids, c.block_m, num_experts)
    grid_m = block_experts.numel()
    no_scale = x.new_empty((1, 1, 1), dtype=torch.float32)
    w1s, w2s = (gate_up.scale, down.scale) if use_fp8 else (no_scale, no_scale)
    a, a_scale = (quantize or act_quant)(x) if use_fp8 else (x, no_scale[0])
    # fp8 keeps the intermediate in fp32 until it is quantised again (the recipe's order).
    act_dtype = torch.float32 if use_fp8 else x.dtype
    inter_cache = torch.empty((pairs, inter), dtype=act_dtype, device=x.device)
    out = torch.empty((pairs, hidden), dtype=x.dtype, device=x.device)  # every row is written
    weights = topk_weights.reshape(-1).to(torch.float32).contiguous()
    flags = {"BLOCK_M": c.block_m, "BLOCK_N": c.block_n, "BLOCK_K": c.block_k,
             "USE_FP8": use_fp8, "UPCAST": not x.is_cuda, "num_warps": c.num_warps,
             "num_stages": c.num_stages, "GELU": activation == "gelu_tanh"}
    _expert_gemm_kernel[(grid_m, triton.cdiv(inter, c.block_n))](
        a, gate_up, inter_cache, a_scale, w1s, sorted_ids, block_experts, weights, pairs,
        inter, hidden, top_k, a.stride(0), gate_up.stride(0), gate_up.stride(1),
        inter_cache.stride(0), a_scale.stride(0), w1s.stride(0), w1s.stride(1),
        GATHER=True, GATED=True, ROUTED=False, **flags)
    a2, a2_scale = (quantize or act_quant)(inter_cache) if use_fp8 else (inter_cache, a_scale)
    _expert_gemm_kernel[(grid_m, triton.cdiv(hidden, c.block_n))](
        a2, down, out, a2_scale, w2s, sorted_ids, block_experts, weights, pairs, hidden, inter,
        1, a2.stride(0), down.stride(0), down.stride(1), out.stride(0),
        a2_scale.stride(0), w2s.stride(0), w2s.stride(1),
        GATHER=False, GATED=False, ROUTED=True, **flags)
    if top_k == 1:
        return out
    # each token's top-k rows, summed in fp32
    return out.view(tokens, top_k, hidden).sum(1, dtype=torch.float32).to(x.dtype)
