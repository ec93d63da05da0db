"""Do the experts specialise? Routing distributions per data source, and how far apart they are.

For each source (tweets, news headlines, ...) the documents are scored in score mode and every
MoE block counts the tokens it sends to each expert; a layer's distribution is those counts as
fractions. Specialisation is the Jensen-Shannon divergence between the sources' distributions
(base 2: 0 when every source is routed alike, 1 when they use disjoint experts), beside each
source's normalised load entropy (1.0 = balanced). Only the layers the pass runs are counted
(score mode with a head stops at the head's layer).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from llm.infer.engine import DocInput, Engine
from llm.model.moe import load_entropy
from llm.model.upcycle import moe_blocks


def routing_by_source(engine: Engine, sources: dict[str, Sequence[DocInput]]
                      ) -> dict[str, np.ndarray]:
    """Per source, a (layers, experts) array of the fraction of tokens each expert received;
    layers that routed no token are left out."""
    blocks = moe_blocks(engine.model)
    if not blocks:
        raise ValueError(f"{engine.loaded.model_id} has no MoE blocks of ours to measure")
    engine.score(next(iter(sources.values()))[:1])   # the shared opening is routed once here
    out = {}
    for name, docs in sources.items():
        for block in blocks:
            block.reset_load()
        engine.score(list(docs))
        loads = np.stack([block.expert_load().cpu().numpy().astype(float) for block in blocks])
        used = loads.sum(1) > 0
        out[name] = loads[used] / loads[used].sum(1, keepdims=True)
    return out


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits between two distributions."""
    m = (p + q) / 2

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        mask = a > 0
        return float((a[mask] * np.log2(a[mask] / b[mask])).sum())
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def specialisation(routing: dict[str, np.ndarray]) -> list[dict]:
    """Per layer: each source's load entropy and the mean pairwise JS divergence."""
    names = list(routing)
    layers = min(len(r) for r in routing.values())
    rows = []
    for layer in range(layers):
        pairs = [js_divergence(routing[a][layer], routing[b][layer])
                 for i, a in enumerate(names) for b in names[i + 1:]]
        rows.append({"layer": layer,
                     **{f"entropy {n}": round(load_entropy(torch.from_numpy(routing[n][layer])), 4)
                        for n in names},
                     "js_divergence": round(float(np.mean(pairs)), 4) if pairs else 0.0})
    return rows

