"""The fused kernels on a real GPU against the torch references: ragged expert loads, idle
experts, top-k 1/2/6/8, odd token counts, bf16 and fp8, every configuration of the tuned
table; act_quant bit-exact. Skipped without CUDA (the interpreter tests in test_kernels.py
cover the same code on the CPU)."""

import json

import pytest
import torch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
pytest.importorskip("triton", reason="triton is not installed (pip install .[kernels])")

from llm.kernels.fused_moe import act_quant, fused_experts  # noqa: E402
from llm.kernels.reference import (  # noqa: E402
    act_quant_reference,
    experts_fp8_reference,
    experts_reference,
    fp8_weight,
)
from llm.kernels.tuning import TUNED, KernelConfig, heuristic  # noqa: E402


def problem(tokens, hidden, inter, experts, top_k, seed=0, skew=False):
    g = torch.Generator(device="cuda").manual_seed(seed)
    x = torch.randn(tokens, hidden, generator=g, device="cuda")
    gate_up = torch.randn(experts, 2 * inter, hidden, generator=g, device="cuda") / hidden**0.5
    down = torch.randn(experts, hidden, inter, generator=g, device="cuda") / inter**0.5
    logits = torch.randn(tokens, experts, generator=g, device="cuda")
    if skew:  # most tokens on the first experts, the last quarter idle: ragged loads
        logits[:, : experts // 4] += 3.0
        logits[:, -(experts // 4):] = -1e9
    weights, ids = logits.softmax(-1).topk(top_k)
    return x, gate_up, down, ids, weights


def relative_error(out, ref):
    return ((out.float() - ref).abs().max() / ref.abs().max()).item()


@pytest.mark.parametrize("top_k", [1, 2, 6, 8])
@pytest.mark.parametrize("tokens", [1, 7, 37, 301])
@pytest.mark.parametrize("skew", [False, True])
def test_bf16_matches_the_reference(top_k, tokens, skew):
    x, gate_up, down, ids, weights = problem(tokens, 256, 128, 16, top_k, seed=tokens, skew=skew)
    ref = experts_reference(x, gate_up, down, ids, weights)
    out = fused_experts(x.bfloat16(), ids, weights, gate_up.bfloat16(), down.bfloat16())
    assert out.dtype == torch.bfloat16
    assert relative_error(out, ref) < 3e-2


@pytest.mark.parametrize("top_k", [1, 2, 6, 8])
@pytest.mark.parametrize("tokens", [1, 7, 37, 301])
def test_fp8_matches_the_recipe_step_by_step(top_k, tokens):
    x, gate_up, down, ids, weights = problem(tokens, 256, 256, 16, top_k, seed=tokens, skew=True)
    w1, w2 = fp8_weight(gate_up), fp8_weight(down)
    out = fused_experts(x, ids, weights, w1, w2)
    ref = experts_fp8_reference(x, w1, w2, ids, weights)
    # the same quantised products, summed in another order: fp32 rounding, plus an
    # intermediate value that lands on the other side of an e4m3 rounding boundary now and then
    assert relative_error(out, ref) < 2e-2
    exact = experts_reference(x, gate_up, down, ids, weights)
    assert relative_error(out, exact) < 0.1


def test_fp32_is_close_to_exact():
    x, gate_up, down, ids, weights = problem(33, 128, 64, 8, 2)
    out = fused_experts(x, ids, weights, gate_up, down)
    assert relative_error(out, experts_reference(x, gate_up, down, ids, weights)) < 5e-3  # tf32


def test_act_quant_is_bit_exact():
    x = torch.randn(301, 2048, device="cuda") * torch.logspace(-3, 3, 301, device="cuda")[:, None]
    q, s = act_quant(x)
    q_ref, s_ref = act_quant_reference(x)
    assert torch.equal(s, s_ref)
    assert torch.equal(q.view(torch.uint8), q_ref.view(torch.uint8))


def tuned_configs() -> list[tuple[str, KernelConfig]]:
    """(dtype, configuration) of every entry of the shipped table, and the heuristic's."""
    table = json.loads(TUNED.read_text()) if TUNED.exists() else {}
    found = {(dtype, KernelConfig(*entry["config"])) for card in table.values()
             for dtype, shapes in card.items() for counts in shapes.values()
             for entry in counts.values()}
    found |= {("fp8" if fp8 else "bf16", heuristic(t, 64, 6, fp8))
              for t in (1, 64, 4096) for fp8 in (False, True)}
    return sorted(found, key=lambda item: (item[0], item[1].as_list()))


@pytest.mark.parametrize("dtype,config", tuned_configs(),
                         ids=lambda v: "-".join(map(str, v.as_list())) if hasattr(v, "as_list")
                         else v)
def test_every_listed_configuration_is_correct(dtype, config):
    x, gate_up, down, ids, weights = problem(97, 256, 384, 8, 2, seed=1, skew=True)
    ref = experts_reference(x, gate_up, down, ids, weights)
    if dtype == "fp8":
        out = fused_experts(x, ids, weights, fp8_weight(gate_up), fp8_weight(down),
                            config=config)
        assert relative_error(out, ref) < 0.1
    else:
        out = fused_experts(x.bfloat16(), ids, weights, gate_up.bfloat16(), down.bfloat16(),
                            config=config)
        assert relative_error(out, ref) < 3e-2
