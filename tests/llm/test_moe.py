"""The MoE block (routing, balancing, load statistics), the hook into Hugging Face MoE
checkpoints, fp8 on load, and upcycling."""

import copy

import pytest
import torch

import llm
from llm.model.moe import MoE, MoEConfig, load_entropy, route
from llm.model.upcycle import moe_blocks, upcycle


def route_by_definition(scores, bias, c: MoEConfig):
    """Token by token, literally as the docstring says."""
    weights, ids = [], []
    for s, b in zip(scores, scores + bias, strict=True):
        eligible = list(range(c.n_experts))
        if c.n_groups > 1:
            size = c.n_experts // c.n_groups
            groups = [b[g * size:(g + 1) * size] for g in range(c.n_groups)]
            value = [(sorted(g.tolist())[-2:] if c.scoring == "sigmoid" else [max(g.tolist())])
                     for g in groups]
            best = sorted(range(c.n_groups), key=lambda g: -sum(value[g]))[:c.topk_groups]
            eligible = [e for g in best for e in range(g * size, (g + 1) * size)]
        chosen = sorted(eligible, key=lambda e: -float(b[e]))[:c.top_k]
        w = torch.stack([s[e] for e in chosen])
        if c.norm_topk:
            w = w / w.sum()
        weights.append(w * c.route_scale)
        ids.append(chosen)
    return torch.stack(weights), torch.tensor(ids)


@pytest.mark.parametrize("scoring", ["sigmoid", "softmax"])
@pytest.mark.parametrize("groups", [(1, 1), (4, 2)])
def test_routing_matches_its_definition(scoring, groups):
    c = MoEConfig(hidden=8, inter=4, n_experts=8, top_k=3, scoring=scoring,
                  n_groups=groups[0], topk_groups=groups[1], route_scale=2.5)
    logits = torch.randn(20, 8, generator=torch.Generator().manual_seed(1))
    scores = logits.sigmoid() if scoring == "sigmoid" else logits.softmax(-1)
    bias = torch.linspace(-0.3, 0.3, 8)
    weights, ids = route(scores, bias, c)
    want_w, want_ids = route_by_definition(scores, bias, c)
    assert torch.equal(ids.sort(-1).values, want_ids.sort(-1).values)
    order = ids.argsort(-1)
    assert torch.allclose(weights.gather(1, order), want_w.gather(1, want_ids.argsort(-1)))


def test_bias_moves_selection_not_weights():
    c = MoEConfig(hidden=8, inter=4, n_experts=4, top_k=1, scoring="sigmoid", norm_topk=False)
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.1]])
    w0, ids0 = route(scores, torch.zeros(4), c)
    w1, ids1 = route(scores, torch.tensor([0.0, 0.2, 0.0, 0.0]), c)
    assert ids0.item() == 0 and ids1.item() == 1
    assert w1.item() == pytest.approx(0.8)  # the unbiased score of the chosen expert


def test_balancing_nudges_the_bias_toward_balance_and_load_is_counted():
    torch.manual_seed(0)
    moe = MoE(MoEConfig(hidden=16, inter=8, n_experts=4, top_k=1, bias_update_speed=0.01))
    with torch.no_grad():
        moe.router[0] += 0.5  # expert 0 is over-used
    moe.train()
    moe.balance = True
    x = torch.randn(256, 16)
    first = None
    for _ in range(60):
        moe.reset_load()
        moe(x)
        load = moe.expert_load()
        first = first if first is not None else load_entropy(load)
    assert moe.bias[0] < 0 and load_entropy(moe.expert_load()) > first
    assert moe.expert_load().sum() == 256


def test_block_gradients_flow():
    moe = MoE(MoEConfig(hidden=16, inter=8, n_experts=4, top_k=2, shared_inter=8))
    moe(torch.randn(10, 16)).pow(2).sum().backward()
    assert moe.gate_up.grad is not None and moe.shared_down.grad is not None


@pytest.mark.parametrize("arch", ["tiny_qwen", "tiny_deepseek"])
def test_hf_checkpoints_generate_the_same_tokens_on_our_experts(arch, request):
    loaded = llm.load(str(request.getfixturevalue(arch)), "fp32")
    assert "quant_moe" in loaded.notes[-1]
    ids = torch.tensor([[5, 17, 42, 8, 99, 3, 7]])
    ours = loaded.model.generate(ids, max_new_tokens=16, do_sample=False)
    loaded.model.set_experts_implementation("eager")
    eager = loaded.model.generate(ids, max_new_tokens=16, do_sample=False)
    assert torch.equal(ours, eager)


def test_fp8_on_load_quantises_the_experts(tiny_qwen):
    dense = llm.load(str(tiny_qwen), "bf16")
    fp8 = llm.load(str(tiny_qwen), "fp8")
    assert "fp8 e4m3" in fp8.notes[-1] and fp8.fingerprint != dense.fingerprint
    experts = fp8.model.model.layers[0].mlp.experts
    assert experts.gate_up_proj.dtype == torch.float8_e4m3fn
    ids = torch.tensor([[5, 17, 42, 8]])
    a, b = dense.model(ids).logits.float(), fp8.model(ids).logits.float()
    assert (a - b).abs().max() < 0.1 * a.abs().max()


def tiny_llama(arch: str = "llama"):
    """A tiny dense model: Llama (SwiGLU) or Gemma 3 (GeGLU, tanh GELU)."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    shape = dict(vocab_size=64, hidden_size=32, intermediate_size=96, num_hidden_layers=2,
                 num_attention_heads=4)
    if arch == "gemma":
        return Gemma3ForCausalLM(Gemma3TextConfig(num_key_value_heads=1, head_dim=8, **shape))
    return LlamaForCausalLM(LlamaConfig(**shape))


@pytest.mark.parametrize("arch", ["llama", "gemma"])
def test_copy_upcycling_is_exact_at_top1(arch):
    dense = tiny_llama(arch).eval()
    moe = copy.deepcopy(dense)
    upcycle(moe, "copy", n_experts=4, top_k=1)
    ids = torch.randint(0, 64, (2, 12))
    with torch.no_grad():
        assert torch.allclose(dense(ids).logits, moe(ids).logits, atol=1e-5)
    assert len(moe_blocks(moe)) == 2


@pytest.mark.parametrize("arch", ["llama", "gemma"])
def test_split_upcycling_is_exact_when_all_experts_are_active(arch):
    dense = tiny_llama(arch).eval()
    moe = copy.deepcopy(dense)
    upcycle(moe, "split", n_experts=4, top_k=4, shared_fraction=0.25)
    ids = torch.randint(0, 64, (2, 12))
    with torch.no_grad():
        assert torch.allclose(dense(ids).logits, moe(ids).logits, atol=1e-5)
    sparse = copy.deepcopy(dense)
    upcycle(sparse, "split", n_experts=4, top_k=2, shared_fraction=0.25)
    with torch.no_grad():
        assert not torch.allclose(dense(ids).logits, sparse(ids).logits, atol=1e-3)
    # the experts compute the dense MLP's own activation (Gemma's GELU, not SiLU)
    assert moe_blocks(moe)[0].config.activation == ("gelu_tanh" if arch == "gemma" else "silu")


def test_an_mlp_activation_the_kernels_do_not_compute_is_refused():
    dense = tiny_llama()
    dense.config.hidden_act = "relu"
    with pytest.raises(ValueError, match="relu"):
        upcycle(dense, "copy", n_experts=4, top_k=1)


@pytest.mark.parametrize("method", ["copy", "split"])
def test_upcycled_blocks_are_made_beside_the_weights_they_replace(method):
    """A model already on a GPU must get its MoE blocks there too (the meta device stands in
    for the GPU here: nothing is computed, only where each tensor lives)."""
    model = tiny_llama().to("meta")
    upcycle(model, method, n_experts=4, top_k=2)
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert {b.device.type for b in model.buffers()} == {"meta"}


def test_routing_specialisation_is_measured_per_source(monkeypatch):
    """Each source's routing sums to one per layer; identical sources diverge by 0 bits, and
    sources routed to disjoint experts (planted through the balance bias) by 1."""
    from pathlib import Path

    import numpy as np
    from transformers import LlamaConfig, LlamaForCausalLM

    from llm.infer.engine import DocInput, Engine
    from llm.infer.specialisation import js_divergence, routing_by_source, specialisation
    from llm.model.loaded import LoadedModel
    from tests.llm.tiny import train_tokenizer

    assert js_divergence(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0
    assert js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
    tokenizer = train_tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32,
                                         intermediate_size=96, num_hidden_layers=2,
                                         num_attention_heads=4, pad_token_id=1)).eval()
    upcycle(model, "copy", n_experts=4, top_k=1)
    loaded = LoadedModel(model=model, tokenizer=tokenizer, model_id="tiny-moe", fingerprint="t",
                         precision="fp32", path=Path("."))
    engine = Engine(loaded, batch_size=4, min_label_mass=0.0, calibrate=False)
    a = [DocInput("AAA", "shares rise"), DocInput("AAA", "stock falls sharply")]
    b = [DocInput("BBB", t.text) for t in a]
    routing = routing_by_source(engine, {"a": a, "b": a})
    assert all(np.allclose(r.sum(1), 1) for r in routing.values())
    assert all(row["js_divergence"] == pytest.approx(0, abs=1e-9)
               for row in specialisation(routing))
    real = engine.score

    def planted(docs, progress=None):  # source a to expert 0, source b to expert 1
        for block in moe_blocks(model):
            block.bias.zero_()
            block.bias[0 if docs[0].ticker == "AAA" else 1] = 1e6
        return real(docs, progress)

    monkeypatch.setattr(engine, "score", planted)
    rows = specialisation(routing_by_source(engine, {"a": a, "b": b}))
    assert len(rows) == 2 and all(row["js_divergence"] == pytest.approx(1.0) for row in rows)
    assert all(row["entropy a"] == 0 for row in rows)


def _router_gradients(top_k: int, norm_topk: bool = True) -> list[float]:
    model = tiny_llama()
    upcycle(model, "copy", n_experts=4, top_k=top_k, norm_topk=norm_topk)
    for block in moe_blocks(model):  # the experts diverge, as training makes them
        with torch.no_grad():
            block.gate_up.add_(torch.randn_like(block.gate_up) * 0.02)
    ids = torch.randint(0, 64, (2, 12))
    model(ids, labels=ids).loss.backward()
    return [float(block.router.grad.abs().sum()) for block in moe_blocks(model)]


def test_routers_learn_at_top2_and_get_no_gradient_at_normalised_top1():
    """Normalised top-1 weights are always 1, so the loss never reaches the router; at top-2
    the two weights depend on the router's scores."""
    top1, top2 = _router_gradients(1), _router_gradients(2)
    assert all(g > 1e-3 for g in top2)
    assert all(g < 1e-5 * min(top2) for g in top1)  # zero but for rounding
    scaled = _router_gradients(1, norm_topk=False)  # probability x experts: top-1 learns too
    assert all(g > 1e-3 for g in scaled)


def test_scaled_copies_start_near_the_dense_model_and_run_as_one_mlp_exactly():
    dense = tiny_llama().eval()
    moe = copy.deepcopy(dense)
    upcycle(moe, "copy", n_experts=4, top_k=1, norm_topk=False)
    assert moe_blocks(moe)[0].config.route_scale == 4.0
    ids = torch.randint(0, 64, (2, 12))
    with torch.no_grad():
        routed = moe(ids).logits
        assert all(block.mark_copies() for block in moe_blocks(moe))
        assert torch.allclose(routed, moe(ids).logits, atol=1e-5)  # MLP x the weight
        # each weight is about 1 (a near-uniform router's probability x 4), not exactly
        assert torch.allclose(dense(ids).logits, routed, atol=0.05)
        assert not torch.allclose(dense(ids).logits, routed, atol=1e-6)


@pytest.mark.parametrize("top_k", [1, 2])
def test_copied_experts_run_as_one_mlp_with_the_same_result(top_k):
    dense = tiny_llama().eval()
    moe = copy.deepcopy(dense)
    upcycle(moe, "copy", n_experts=4, top_k=top_k)
    ids = torch.randint(0, 64, (2, 12))
    with torch.no_grad():
        routed = moe(ids).logits
        assert all(block.mark_copies() for block in moe_blocks(moe))
        assert torch.allclose(routed, moe(ids).logits, atol=1e-5)
        assert torch.allclose(dense(ids).logits, routed, atol=1e-5)
        moe_blocks(moe)[0].gate_up[1].add_(0.1)  # one expert differs: routed again
    assert not moe_blocks(moe)[0].mark_copies() and moe_blocks(moe)[1].copies


@pytest.mark.parametrize("top_k", [1, 2])
def test_deltas_on_activations_equal_merged_deltas_in_value_and_gradient(top_k):
    """Training applies low-rank deltas to the activations (no full-size weight gradient);
    that must be the merged parametrization's function and gradients exactly."""
    from llm.model import adapter as adapters

    model = tiny_llama()
    upcycle(model, "copy", n_experts=4, top_k=top_k)
    names = adapters.band_targets(model, 0, 2)
    assert any(n.endswith(".mlp.gate_up") for n in names)   # our experts, 3-D
    assert any(n.endswith("q_proj.weight") for n in names)  # linear layers
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ids = torch.randint(0, 64, (2, 12))
    results = []
    for merged in (True, False):
        torch.manual_seed(1)
        deltas = adapters.add_low_rank(model, names, rank=4, alpha=8.0, merged=merged)
        for delta in deltas.values():  # B starts at zero: make the deltas count
            torch.nn.init.normal_(delta.B, std=0.1)
        assert any(block.low_rank for block in moe_blocks(model)) is not merged
        loss = model(ids, labels=ids).loss
        loss.backward()
        results.append((loss.detach(), [(d.A.grad, d.B.grad) for d in deltas.values()]))
        adapters.remove_low_rank(model, deltas)
    (merged_loss, merged_grads), (loss, grads) = results
    assert torch.allclose(merged_loss, loss, atol=1e-6)
    for (a, b), (a2, b2) in zip(merged_grads, grads, strict=True):
        assert torch.allclose(a, a2, atol=1e-6) and torch.allclose(b, b2, atol=1e-6)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(block.low_rank for block in moe_blocks(model))
    assert all(not m._forward_hooks for m in model.modules())  # hooks gone


@pytest.mark.parametrize("upcycled", [True, False])
def test_fp8_is_refused_where_nothing_would_run_in_fp8(upcycled):
    """The upcycled blocks and dense models have no experts fp8 quantises: an fp8 label on
    what runs bf16 would be provenance that does not describe what ran."""
    from pathlib import Path

    from llm.errors import ModelError
    from llm.model.experts import attach_experts
    from llm.model.loaded import LoadedModel
    from llm.model.upcycle import upcycle

    model = tiny_llama().eval()
    if upcycled:
        upcycle(model, "copy", n_experts=4, top_k=1)
    loaded = LoadedModel(model=model, tokenizer=None, model_id="tiny", fingerprint="t",
                         precision="fp8", path=Path("."))
    with pytest.raises(ModelError, match="fp8 quantises the experts .* use bf16"):
        attach_experts(loaded)
    loaded.precision = "bf16"
    assert attach_experts(loaded)
