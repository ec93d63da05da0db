"""A DeepSeek-V3 style Mixture-of-Experts block, in one readable file.

- Fine-grained routed experts (SwiGLU, or GeGLU for a Gemma base; weights `gate_up`
  (E, 2I, H) and `down` (E, H, I)) plus shared experts that every token uses.
- Scores: sigmoid (DeepSeek-V3) or softmax of `x @ router.T`.
- Top-k selection, optionally group-limited: experts are split into `n_groups`; a group's
  score is the sum of its two best experts (sigmoid) or its best (softmax); only the
  `topk_groups` best groups are eligible, then the top-k experts within them.
- Auxiliary-loss-free balancing: a per-expert `bias` is added to the scores *for selection
  only*; the routing weights come from the unbiased scores. After each training step the bias
  moves by `bias_update_speed` toward balance (up for under-used experts, down for over-used).
- Routing weights are normalised over the chosen experts (optional) and scaled by
  `route_scale`; `weighting="ones"` gives each chosen expert weight 1 (an upcycled dense MLP
  split into experts is then exact when every expert is chosen).
- Expert load (tokens per expert) is counted on every forward: imbalance is the first thing to
  look at.
- Experts that are still identical copies (an upcycled layer no training has touched) with
  weights summing to one compute exactly one MLP whatever the routing: `copies` marks them so
  they run as that one dense MLP, which reads a quarter of the weights when decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from llm.kernels.dispatch import run_experts
from llm.kernels.reference import activate


@dataclass(frozen=True)
class MoEConfig:
    hidden: int
    inter: int                      # per routed expert
    n_experts: int
    top_k: int
    shared_inter: int = 0           # width of the shared expert(s); 0 = none
    scoring: str = "sigmoid"        # sigmoid | softmax
    n_groups: int = 1
    topk_groups: int = 1
    norm_topk: bool = True
    route_scale: float = 1.0
    weighting: str = "scores"       # scores | ones
    bias_update_speed: float = 1e-3
    activation: str = "silu"        # the gate's: silu | gelu_tanh (llm.kernels.reference)


def route(scores: torch.Tensor, bias: torch.Tensor, config: MoEConfig
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """(weights (T, k), expert ids (T, k)) from unbiased scores (T, E) and the balance bias."""
    biased = scores + bias
    if config.n_groups > 1:
        grouped = biased.view(scores.shape[0], config.n_groups, -1)
        group_scores = (grouped.topk(2, dim=-1).values.sum(-1) if config.scoring == "sigmoid"
                        else grouped.amax(-1))
        keep = group_scores.topk(config.topk_groups, dim=-1).indices
        mask = torch.ones_like(group_scores, dtype=torch.bool).scatter_(1, keep, False)
        biased = grouped.masked_fill(mask.unsqueeze(-1), float("-inf")).view_as(scores)
    ids = biased.topk(config.top_k, dim=-1).indices
    if config.weighting == "ones":
        return torch.ones_like(ids, dtype=scores.dtype), ids
    weights = scores.gather(1, ids)
    if config.norm_topk:
        weights = weights / weights.sum(-1, keepdim=True).clamp(min=1e-20)
    return weights * config.route_scale, ids


class MoE(nn.Module):
    """Routed experts (plus optional shared ones) replacing a transformer layer's MLP;
    `MoEConfig` says how tokens are routed."""

    def __init__(self, config: MoEConfig) -> None:
        super().__init__()
        c = self.config = config
        if c.n_experts % c.n_groups or c.topk_groups > c.n_groups:
            raise ValueError(f"{c.n_experts} experts cannot form {c.n_groups} groups with "
                             f"{c.topk_groups} chosen")
        self.router = nn.Parameter(torch.empty(c.n_experts, c.hidden))
        self.gate_up = nn.Parameter(torch.empty(c.n_experts, 2 * c.inter, c.hidden))
        self.down = nn.Parameter(torch.empty(c.n_experts, c.hidden, c.inter))
        if c.shared_inter:
            self.shared_gate_up = nn.Parameter(torch.empty(2 * c.shared_inter, c.hidden))
            self.shared_down = nn.Parameter(torch.empty(c.hidden, c.shared_inter))
        self.register_buffer("bias", torch.zeros(c.n_experts), persistent=True)
        self.register_buffer("load", torch.zeros(c.n_experts, dtype=torch.long),
                             persistent=False)
        self.balance = False  # set during training to move the bias toward balance
        self.copies = False   # set by `mark_copies`: every expert is the same MLP
        self.low_rank: dict = {}  # "gate_up"/"down" -> a delta on the activations, in training
        for p in self.parameters():
            nn.init.normal_(p, std=0.02)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        shape = hidden.shape
        x = hidden.reshape(-1, shape[-1])
        logits = F.linear(x.float(), self.router.float())
        scores = logits.sigmoid() if self.config.scoring == "sigmoid" else logits.softmax(-1)
        weights, ids = route(scores, self.bias, self.config)
        counts = torch.bincount(ids.reshape(-1), minlength=self.config.n_experts)
        self.load += counts.to(self.load.device)
        if self.balance and self.training:
            with torch.no_grad():
                self.bias += self.config.bias_update_speed * torch.sign(
                    counts.float().mean() - counts.float())
        if self._runs_dense(x):
            gate, up = F.linear(x, self.gate_up[0]).chunk(2, dim=-1)
            out = F.linear(activate(gate, self.config.activation) * up, self.down[0])
            if not self._weights_sum_to_one:  # identical experts: the weights' sum scales it
                out = out * weights.sum(-1, keepdim=True).to(out.dtype)
        else:
            out = run_experts(x, ids, weights, self.gate_up, self.down,
                              deltas=self.low_rank, activation=self.config.activation)
        if self.config.shared_inter:
            gate, up = F.linear(x, self.shared_gate_up).chunk(2, dim=-1)
            out = out + F.linear(activate(gate, self.config.activation) * up, self.shared_down)
        return out.reshape(shape)

    def _runs_dense(self, x: torch.Tensor) -> bool:
        # a delta being trained on the experts makes them differ: the routed path then
        return (self.copies and self.gate_up.dtype == x.dtype
                and not parametrize.is_parametrized(self) and not self.low_rank)

    @property
    def _weights_sum_to_one(self) -> bool:
        return self.config.norm_topk and self.config.route_scale == 1.0

    def mark_copies(self) -> bool:
        """Whether every expert is the same MLP, weighted by the router's scores (the block is
        then that MLP times the weights' sum: exactly the MLP when they are normalised); sets
        `copies` accordingly."""
        c = self.config
        same = all(torch.equal(w[0], w[e]) for w in (self.gate_up, self.down)
                   for e in range(1, c.n_experts))
        self.copies = bool(same and c.weighting == "scores")
        return self.copies

    def expert_load(self) -> torch.Tensor:
        """Tokens routed to each expert since the last reset."""
        return self.load.clone()

    def reset_load(self) -> None:
        self.load.zero_()


def load_entropy(load: torch.Tensor) -> float:
    """Normalised entropy of the expert load: 1.0 is perfectly balanced."""
    p = load.float() / load.sum().clamp(min=1)
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return float(entropy / torch.log(torch.tensor(float(len(load)))))
