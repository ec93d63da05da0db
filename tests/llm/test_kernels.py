"""Kernels against their references: Triton under TRITON_INTERPRET=1 on tiny shapes, the CPU
path at realistic shapes."""

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llm.kernels.cpu import experts_cpu
from llm.kernels.reference import (
    FP8_MAX,
    act_quant_reference,
    dequantise,
    experts_fp8_reference,
    experts_reference,
    fp8_weight,
)

triton = pytest.importorskip("triton", reason="triton is not installed (pip install .[kernels])")
from llm.kernels.fused_moe import act_quant, fused_experts, moe_align_block_size  # noqa: E402


def problem(tokens, hidden, inter, experts, top_k, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(tokens, hidden, generator=g)
    gate_up = torch.randn(experts, 2 * inter, hidden, generator=g) / hidden**0.5
    down = torch.randn(experts, hidden, inter, generator=g) / inter**0.5
    weights, ids = torch.randn(tokens, experts, generator=g).softmax(-1).topk(top_k)
    return x.to(dtype), gate_up.to(dtype), down.to(dtype), ids, weights


@pytest.mark.parametrize("activation", ["silu", "gelu_tanh"])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 3e-2)])
def test_fused_experts_matches_the_reference(dtype, tol, activation):
    x, gate_up, down, ids, weights = problem(5, 64, 32, 4, 2, dtype)
    out = fused_experts(x, ids, weights, gate_up, down, activation=activation)
    ref = experts_reference(x, gate_up, down, ids, weights, activation=activation)
    assert out.dtype == dtype
    assert (out.float() - ref).abs().max() <= tol * ref.abs().max()


@pytest.mark.parametrize("grad", [False, True])  # grouped GEMMs, or the differentiable loop
def test_cpu_path_computes_gemmas_gelu(grad):
    x, gate_up, down, ids, weights = problem(7, 64, 32, 4, 2)
    with torch.set_grad_enabled(grad):
        out = experts_cpu(x, gate_up, down, ids, weights, activation="gelu_tanh")
    ref = experts_reference(x, gate_up, down, ids, weights, activation="gelu_tanh")
    assert torch.allclose(out, ref, atol=1e-5)
    silu = experts_reference(x, gate_up, down, ids, weights)
    assert not torch.allclose(out, silu, atol=1e-3)   # a different function, not a relabel
    with pytest.raises(ValueError, match="activation"):
        experts_cpu(x, gate_up, down, ids, weights, activation="relu")


def test_fused_fp8_matches_the_recipe_step_by_step():
    x, gate_up, down, ids, weights = problem(5, 128, 128, 4, 2)
    w1, w2 = fp8_weight(gate_up), fp8_weight(down)
    # The interpreter rounds fp32 -> fp8 casts wrongly: quantise activations with the torch
    # reference here (the Triton act_quant has its own test with that tolerance).
    out = fused_experts(x, ids, weights, w1, w2, quantize=act_quant_reference)
    ref = experts_fp8_reference(x, w1, w2, ids, weights)
    assert (out - ref).abs().max() < 1e-4
    exact = experts_reference(x, gate_up, down, ids, weights)
    assert (out - exact).abs().max() < 0.1 * exact.abs().max()  # fp8's own error, bounded


def test_act_quant_kernel():
    x = torch.randn(6, 256) * torch.tensor([0.01, 1, 100, 5, 0.5, 30]).unsqueeze(1)
    q, s = act_quant(x)
    q_ref, s_ref = act_quant_reference(x)
    assert torch.equal(s, s_ref)                        # scales are exact
    assert q.float().abs().max() <= FP8_MAX              # saturated
    got, want = q.float(), q_ref.float()
    if x.is_cuda:  # a GPU rounds to nearest: identical to the reference
        assert torch.equal(got, want)
    else:
        # The interpreter's fp32 -> fp8 cast does not round to nearest: it can drop to the
        # power of two below (124.3 -> 64). Check sign and that binade, no more.
        assert (torch.sign(got) == torch.sign(want)).all()
        assert ((got.abs() <= want.abs() + 1e-6) & (got.abs() >= want.abs() / 2 - 2**-6)).all()


def test_align_block_size():
    ids = torch.tensor([[2, 0], [2, 1], [2, 0]])
    sorted_ids, block_experts = moe_align_block_size(ids, 4, 4)
    # sized for the worst case (6 pairs, each of 4 experts 3 rows short), the rest marked -1
    assert block_experts.tolist() == [0, 1, 2, -1, -1]
    blocks = sorted_ids.view(-1, 4).tolist()
    pairs = ids.numel()
    for expert, block in zip(block_experts.tolist(), blocks, strict=True):
        real = [p for p in block if p < pairs]
        assert all(ids.reshape(-1)[p] == expert for p in real)
        assert expert >= 0 or not real
    assert sorted(p for p in sorted_ids.tolist() if p < pairs) == list(range(pairs))


def test_the_wrapper_checks_its_inputs():
    x, gate_up, down, ids, weights = problem(4, 64, 32, 4, 2)
    with pytest.raises(ValueError, match="must be"):
        fused_experts(x, ids[:2], weights[:2], gate_up, down)
    with pytest.raises(ValueError, match="contiguous"):
        fused_experts(x.t().contiguous().t(), ids, weights, gate_up, down)
    with pytest.raises(ValueError, match="do not fit"):
        fused_experts(x, ids, weights, gate_up, down[:, :32])
    with pytest.raises(ValueError, match="dtypes differ"):
        fused_experts(x, ids, weights, gate_up.bfloat16(), down.bfloat16())
    with pytest.raises(ValueError, match="multiples of 128"):
        fused_experts(x, ids, weights, fp8_weight(gate_up), fp8_weight(down))


@settings(max_examples=12, deadline=None)
@given(tokens=st.integers(1, 9), top_k=st.integers(1, 3), seed=st.integers(0, 10_000),
       skew=st.booleans())
def test_any_token_count_including_idle_experts(tokens, top_k, seed, skew):
    x, gate_up, down, ids, weights = problem(tokens, 32, 32, 6, top_k, seed=seed)
    if skew:  # every token on the same few experts: the others get zero tokens
        ids = torch.arange(top_k).repeat(tokens, 1)
    ref = experts_reference(x, gate_up, down, ids, weights)
    assert torch.allclose(experts_cpu(x, gate_up, down, ids, weights), ref, atol=1e-5)
    assert torch.allclose(fused_experts(x, ids, weights, gate_up, down), ref, atol=1e-5)


@pytest.mark.parametrize("tokens", [1, 8, 64])
def test_cpu_path_at_a_realistic_shape(tokens):
    """DeepSeek-V2-Lite's layer: hidden 2048, 64 experts of 1408, top-6."""
    x, gate_up, down, ids, weights = problem(tokens, 2048, 1408, 64, 6)
    out = experts_cpu(x, gate_up, down, ids, weights)
    sample = slice(0, min(tokens, 4))
    ref = experts_reference(x[sample], gate_up, down, ids[sample], weights[sample])
    assert torch.allclose(out[sample], ref, atol=1e-4, rtol=1e-4)


def test_cpu_path_with_fp8_weights_dequantises_per_block():
    x, gate_up, down, ids, weights = problem(8, 256, 256, 4, 2)
    w1, w2 = fp8_weight(gate_up), fp8_weight(down)
    out = experts_cpu(x, w1, w2, ids, weights)
    ref = experts_reference(x, dequantise(w1), dequantise(w2), ids, weights)
    assert torch.allclose(out, ref, atol=1e-4)


def test_launch_configurations_come_from_the_tuned_table_or_the_heuristic():
    from llm.kernels.tuning import INTERPRETER, TUNED, KernelConfig, heuristic, lookup

    entries = {"1": {"config": [16, 64, 128, 4, 5], "us": 10.0},
               "4096": {"config": [128, 128, 64, 8, 3], "us": 900.0}}
    table = {"Card": {"bf16": {"E8_I256_H512": entries},
                      "fp8": {"E8_I256_H512": {"1": {"config": [16, 64, 64, 4, 4]}}}}}

    def find(tokens, card="Card", dtype=torch.bfloat16, experts=8):
        return lookup(card, dtype, experts, 256, 512, tokens, 2, table)

    assert find(1) == find(3) == KernelConfig(16, 64, 128, 4, 5)  # nearest listed count
    assert find(2000) == find(50_000) == KernelConfig(128, 128, 64, 8, 3)
    assert find(64, card="Other") == heuristic(64, 8, 2, False)  # unlisted card
    assert find(64, experts=16) == heuristic(64, 16, 2, False)   # unlisted shape
    # an fp8 entry that does not step K by the 128-wide scale block is not used
    assert find(1, dtype=torch.float8_e4m3fn) == heuristic(1, 8, 2, True)
    assert heuristic(1, 8, 2, True).block_k == 128
    assert heuristic(1, 64, 6, False).block_m < heuristic(8192, 64, 6, False).block_m
    # off the GPU the interpreter's tiny blocks run, whatever the table says
    x, gate_up, down, ids, weights = problem(3, 64, 32, 4, 2)
    from llm.kernels.tuning import config_for

    assert config_for(x, gate_up, 3, 2) == INTERPRETER[False]
    # the shipped table is well formed: five numbers per entry, fp8 stepping K by 128
    shipped = json.loads(TUNED.read_text()) if TUNED.exists() else {}
    for card in shipped.values():
        for dtype, shapes in card.items():
            for counts in shapes.values():
                for entry in counts.values():
                    config = KernelConfig(*entry["config"])
                    assert dtype != "fp8" or config.block_k == 128
                    assert all(v > 0 for v in config.as_list())


def test_a_forced_configuration_runs_and_fp8_rejects_a_wrong_k_step():
    from llm.kernels.tuning import KernelConfig

    x, gate_up, down, ids, weights = problem(9, 64, 64, 4, 2)
    ref = experts_reference(x, gate_up, down, ids, weights)
    out = fused_experts(x, ids, weights, gate_up, down, config=KernelConfig(32, 16, 16, 1, 1))
    assert torch.allclose(out, ref, atol=1e-5)
    x, gate_up, down, ids, weights = problem(3, 128, 128, 4, 2)
    with pytest.raises(ValueError, match="BLOCK_K 128"):
        fused_experts(x, ids, weights, fp8_weight(gate_up), fp8_weight(down),
                      config=KernelConfig(16, 32, 64, 1, 1))
