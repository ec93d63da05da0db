"""Sparse upcycling of a dense gated-MLP model (SmolLM2's SwiGLU, Gemma 3's GeGLU) into an MoE,
without training.

Two ways, both implemented and measured (README, "The MoE default"):

- `copy` (Komatsuzaki et al., the default): every expert starts as a copy of the dense MLP and
  the routing weights are normalised, so the output is exactly the dense model's whatever the
  router picks; with top-1 routing each token costs one MLP, as before. Training then lets the
  experts diverge.
- `split` (fine-grained, as in DeepSeek-MoE): each dense MLP's hidden units are split: the
  `shared` units with the largest weight norms become a shared expert that every token uses;
  the rest are divided into `n_experts` routed experts of equal width, of which each token uses
  `top_k`. With all experts chosen the block equals the dense MLP exactly (weights of 1); with
  top-k it is sparse. The router starts as each expert's mean gate vector, so a token goes to
  the experts whose gates it opens most. The fine-tuning stage trains the router and experts
  further.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from llm.model.moe import MoE, MoEConfig

DEFAULT_UPCYCLE = {"method": "copy", "n_experts": 4, "top_k": 1}
# transformers' names of the gated MLPs' activations -> ours (llm.kernels.reference.activate)
ACTIVATION_NAMES = {"silu": "silu", "swish": "silu", "gelu_pytorch_tanh": "gelu_tanh",
                    "gelu_tanh": "gelu_tanh"}


def mlp_activation(config) -> str:
    """The dense model's MLP activation, as our MoE block names it; refuses one our kernels do
    not compute, rather than upcycling it into a different function."""
    name = getattr(config, "hidden_activation", None) or getattr(config, "hidden_act", "silu")
    if name not in ACTIVATION_NAMES:
        raise ValueError(f"cannot upcycle an MLP with activation {name!r}: the MoE kernels "
                         f"compute {', '.join(sorted(set(ACTIVATION_NAMES)))}")
    return ACTIVATION_NAMES[name]


def copy_mlp(mlp: nn.Module, n_experts: int, top_k: int, seed: int = 0,
             norm_topk: bool = True, activation: str = "silu") -> MoE:
    """Experts copied from the dense MLP. Normalised weights sum to one, so the block is the
    dense MLP exactly, but at top-1 the weight is always 1 and the router gets no gradient.
    Unnormalised (`norm_topk=False`), each chosen expert is weighted by its router probability
    x n_experts / top_k: about 1 at the start (the router starts near uniform), and the router
    learns even at top-1."""
    gate, up, down = mlp.gate_proj.weight.data, mlp.up_proj.weight.data, mlp.down_proj.weight.data
    inter, hidden = gate.shape
    config = MoEConfig(hidden=hidden, inter=inter, n_experts=n_experts, top_k=top_k,
                       scoring="softmax", norm_topk=norm_topk,
                       route_scale=1.0 if norm_topk else n_experts / top_k,
                       activation=activation)
    moe = MoE(config).to(gate.device, gate.dtype)   # beside the weights it replaces
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        moe.gate_up.copy_(torch.cat([gate, up]).expand(n_experts, -1, -1))
        moe.down.copy_(down.expand(n_experts, -1, -1))
        moe.router.copy_(torch.randn(n_experts, hidden, generator=generator) * 0.02)
    return moe


def split_mlp(mlp: nn.Module, n_experts: int, top_k: int, shared_fraction: float,
              activation: str = "silu") -> MoE:
    gate, up, down = mlp.gate_proj.weight.data, mlp.up_proj.weight.data, mlp.down_proj.weight.data
    inter, hidden = gate.shape
    shared = int(round(inter * shared_fraction / n_experts)) * n_experts if shared_fraction else 0
    routed = inter - shared
    if routed % n_experts:
        shared += routed % n_experts
        routed -= routed % n_experts
    importance = gate.norm(dim=1) * up.norm(dim=1) * down.norm(dim=0)
    order = torch.argsort(importance, descending=True)
    shared_units, routed_units = order[:shared], order[shared:]
    # Group the routed units by the direction of their gates, so an expert's units tend to open
    # together: sort by the projection on the gates' first principal direction.
    centred = gate[routed_units].float() - gate[routed_units].float().mean(0)
    direction = torch.linalg.svd(centred, full_matrices=False).Vh[0]
    routed_units = routed_units[torch.argsort(centred @ direction)]
    width = routed // n_experts
    config = MoEConfig(hidden=hidden, inter=width, n_experts=n_experts, top_k=top_k,
                       shared_inter=shared, scoring="sigmoid", weighting="ones",
                       norm_topk=False, activation=activation)
    moe = MoE(config).to(gate.device, gate.dtype)   # beside the weights it replaces
    units = routed_units.view(n_experts, width)
    with torch.no_grad():
        moe.gate_up.copy_(torch.cat([gate[units], up[units]], dim=1))
        moe.down.copy_(down[:, units].permute(1, 0, 2))
        moe.router.copy_(gate[units].float().mean(1).to(moe.router.dtype))
        if shared:
            moe.shared_gate_up.copy_(torch.cat([gate[shared_units], up[shared_units]]))
            moe.shared_down.copy_(down[:, shared_units])
    return moe


def upcycle(model: nn.Module, method: str = "copy", n_experts: int = 4, top_k: int = 1,
            shared_fraction: float = 1 / 3, norm_topk: bool = True) -> str:
    """Replace every layer's MLP in place; returns a description for the fingerprint."""
    layers = model.model.layers
    activation = mlp_activation(model.config)
    for index, layer in enumerate(layers):
        if method == "copy":
            layer.mlp = copy_mlp(layer.mlp, n_experts, top_k, seed=index, norm_topk=norm_topk,
                                 activation=activation)
        elif method == "split":
            layer.mlp = split_mlp(layer.mlp, n_experts, top_k, shared_fraction, activation)
        else:
            raise ValueError(f"upcycle method must be copy or split, not {method!r}")
    config = asdict(layers[0].mlp.config)
    if config["activation"] == "silu":  # as before the option existed: SwiGLU identities stay
        del config["activation"]
    return json.dumps({"upcycle": method, "config": config}, sort_keys=True)


def upcycle_of(adapter_dir: Path | None, override: dict | None = None) -> dict:
    """How to upcycle the bundled model: `override`, else what the adapter about to be applied
    was trained on (recorded as its `upcycle`), else the default."""
    if override is not None:
        return DEFAULT_UPCYCLE | override
    meta = Path(adapter_dir) / "adapter.json" if adapter_dir else None
    if meta is None or not meta.exists():
        return dict(DEFAULT_UPCYCLE)
    return DEFAULT_UPCYCLE | (json.loads(meta.read_text()).get("upcycle") or {})


def moe_blocks(model: nn.Module) -> list[MoE]:
    return [m for m in model.modules() if isinstance(m, MoE)]
