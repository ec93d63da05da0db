"""Where an MoE checkpoint's experts run.

transformers 5 computes the experts of Mixtral, Qwen3-MoE, OLMoE and DeepSeek-V3 through a
registry of implementations. A dense model has nothing to attach; an MoE architecture that the
registry does not cover keeps transformers' own implementation, and the note says so.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def is_moe(config) -> bool:
    return any(getattr(config, key, None) for key in
               ("num_experts", "n_routed_experts", "num_local_experts"))


def attach_experts(loaded) -> list[str]:
    """Choose the experts implementation; returns notes for `quant llm info`."""
    if not is_moe(loaded.config):
        return ["dense model: no experts"]
    return ["experts: transformers' own implementation"]
