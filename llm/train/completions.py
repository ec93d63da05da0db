"""Completions of reason prompts and their log-probabilities: what the supervised cold start
(`llm.train.reason_cold_start`) and GRPO (`llm.train.reason_train`) share.

A batch is the documents' reason prompts, left-padded exactly as reason mode lays them out,
followed by completions (sampled, or taught); `completion_logprobs` scores the completion
tokens under the policy and, with the low-rank deltas set to a `snapshot`, under the reference.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from llm.errors import ModelError
from llm.infer.engine import DocInput, Engine
from llm.infer.prefix import additive_mask, layer_output
from llm.model import adapter as adapters


@dataclass
class Completions:
    """One step's samples: prompts (left-padded, each repeated `group` times) + completions."""

    ids: torch.Tensor             # (R, P + T)
    mask: torch.Tensor            # (R, P + T): real prompt tokens and completion tokens
    prompt_length: int
    texts: list[str]
    finished: list[bool]          # the grammar accepted the completion


def reason_prompts(engine: Engine, docs: list[DocInput]) -> tuple[torch.Tensor, torch.Tensor]:
    """The documents' reason prompts, left-padded (ids, mask), as reason mode lays them out."""
    user, cues, _ = engine.prompt_parts("reason")
    sequences = [ids for ids, *_ in engine.build_prompts(docs, user, cues)]
    if any(ids is None for ids in sequences):
        raise ModelError("a training document does not fit the reason prompt")
    return engine.pad_left(sequences)


def completion_logprobs(model: torch.nn.Module, start: int, batch: Completions,
                        deltas: dict[str, adapters.LowRank],
                        reference: dict[str, tuple[torch.Tensor, torch.Tensor]] | None
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probabilities of the completions (R, T): under the policy (with
    gradients) and under the reference, the deltas set to the `reference` snapshot (None: no
    reference). Layers below `start` run once."""
    inner, layers = model.model, adapters.decoder_layers(model)
    mask = batch.mask
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    length = mask.shape[1]
    causal = torch.tril(torch.ones(length, length, dtype=torch.bool, device=mask.device))
    allowed = (causal[None] & mask.bool()[:, None, :])[:, None]
    with torch.no_grad():
        hidden = inner.embed_tokens(batch.ids)
        additive = additive_mask(allowed, hidden.dtype)
        rotary = inner.rotary_emb(hidden, positions)
        for index in range(start):
            hidden = layer_output(layers[index](
                hidden, attention_mask=additive, position_ids=positions,
                position_embeddings=rotary))
    targets = batch.ids[:, batch.prompt_length:]

    def upper(x: torch.Tensor) -> torch.Tensor:
        for index in range(start, len(layers)):
            x = layer_output(layers[index](x, attention_mask=additive, position_ids=positions,
                                           position_embeddings=rotary))
        logits = model.lm_head(inner.norm(x[:, batch.prompt_length - 1:-1])).float()
        return logits.log_softmax(-1).gather(2, targets.unsqueeze(-1)).squeeze(-1)

    if reference is None:
        return upper(hidden), None
    with torch.no_grad(), deltas_at(deltas, reference):
        fixed = upper(hidden)
    return upper(hidden), fixed


def snapshot(deltas: dict[str, adapters.LowRank]
             ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The deltas' values now: GRPO's reference model (before any training it is the
    starting model, every B being zero; after the cold start, the cold-started one)."""
    return {name: (d.A.detach().clone(), d.B.detach().clone()) for name, d in deltas.items()}


@contextlib.contextmanager
def deltas_at(deltas: dict[str, adapters.LowRank],
              values: dict[str, tuple[torch.Tensor, torch.Tensor]]):
    """The model with the deltas set to a snapshot's values for the duration."""
    current = snapshot(deltas)
    with torch.no_grad():
        for name, delta in deltas.items():
            delta.A.copy_(values[name][0])
            delta.B.copy_(values[name][1])
    try:
        yield
    finally:
        with torch.no_grad():
            for name, delta in deltas.items():
                delta.A.copy_(current[name][0])
                delta.B.copy_(current[name][1])
