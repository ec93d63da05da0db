"""Documents that share one prompt opening: the opening runs once and every document attends to
its cached keys and values, so a document costs its own tokens only.

One runner serves inference and fine-tuning. At inference the weights never change
(`frozen=True`): the opening's keys and values are computed once, layer by layer as deeper
layers are asked for, and reused by every batch of the run. In fine-tuning the band being
trained changes every step, so the opening runs through the band again on each call (with
gradients) and only its state entering the band is kept.

Documents are right-padded: with causal attention no real token ever sees a pad, so no key
mask is needed, and every row's tokens sit at the same positions after the opening.

Layers of different kinds (Gemma 3: five sliding-window layers to one global) each get their
kind's mask and rotary embedding: a sliding-window layer sees only the last `sliding_window`
keys, and Gemma 3 rotates local and global layers with different bases.
"""

from __future__ import annotations

import inspect

import torch

from llm.model.adapter import decoder_layers


class _Recorder:
    """Stands in for transformers' cache in the opening's pass: keeps each layer's keys and
    values."""

    def __init__(self) -> None:
        self.stored: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def update(self, keys, values, layer_idx, *args, **kwargs):
        self.stored[layer_idx] = (keys, values)
        return keys, values


class _AfterOpening:
    """Stands in for transformers' cache in the documents' pass: prepends the opening's keys
    and values (broadcast over the batch) to the documents' own."""

    def __init__(self, stored: dict[int, tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.stored = stored

    def update(self, keys, values, layer_idx, *args, **kwargs):
        opening_keys, opening_values = self.stored[layer_idx]
        batch = keys.shape[0]
        return (torch.cat([opening_keys.expand(batch, *opening_keys.shape[1:]), keys], -2),
                torch.cat([opening_values.expand(batch, *opening_values.shape[1:]), values], -2))


class SharedPrefix:
    """Runs a decoder's layers over documents that all follow one prompt opening."""

    def __init__(self, model: torch.nn.Module, prefix_ids: list[int],
                 frozen: bool = False) -> None:
        self.model = model
        self.inner = model.model
        self.layers = decoder_layers(model)
        self.frozen = frozen
        device = next(model.parameters()).device
        self.prefix_ids = torch.tensor([prefix_ids], device=device)
        config = self.inner.config
        self.kinds = list(getattr(config, "layer_types", None)
                          or ["full_attention"] * len(self.layers))
        self.window = getattr(config, "sliding_window", None)
        self._rotary_by_kind = "layer_type" in inspect.signature(
            self.inner.rotary_emb.forward).parameters
        self._entering: dict[int, torch.Tensor] = {}  # the opening's state entering a layer
        self._kv = _Recorder()                        # frozen: the opening's keys and values

    @property
    def length(self) -> int:
        return self.prefix_ids.shape[1]

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.inner.embed_tokens(ids)

    def prefix_at(self, layer: int) -> torch.Tensor:
        """The opening's hidden state entering `layer` (computed once, without gradients)."""
        if layer not in self._entering:
            known = max((i for i in self._entering if i < layer), default=0)
            with torch.no_grad():
                hidden = self._entering.get(known)
                if hidden is None:
                    hidden = self.embed(self.prefix_ids)
                    self._entering[0] = hidden
                for index in range(known, layer):
                    hidden = self._opening_layer(index, hidden, self._kv if self.frozen
                                                 else _Recorder())
                    self._entering[index + 1] = hidden
        return self._entering[layer]

    def run(self, hidden: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Documents' hidden states entering layer `start` -> leaving layer `stop - 1`."""
        if self.frozen:
            self.prefix_at(stop)  # fills the keys and values of layers [0, stop) once
            stored = self._kv.stored
        else:  # the band's weights change between calls: run the opening through it again
            recorder, opening = _Recorder(), self.prefix_at(start)
            for index in range(start, stop):
                opening = self._opening_layer(index, opening, recorder)
            stored = recorder.stored
        cache = _AfterOpening(stored)
        p, length = self.length, hidden.shape[1]
        positions = torch.arange(p, p + length, device=hidden.device)[None]
        # Every document token sees the whole opening and the document tokens up to itself.
        allowed = torch.ones(length, p + length, dtype=torch.bool, device=hidden.device)
        allowed[:, p:] = torch.tril(allowed[:, p:])
        inputs = self._by_kind(hidden, positions, allowed, range(start, stop))
        for index in range(start, stop):
            mask, rotary = inputs[self.kinds[index]]
            hidden = layer_output(self.layers[index](
                hidden, attention_mask=mask, position_ids=positions, cache=cache,
                position_embeddings=rotary))
        return hidden

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Next-token logits from hidden states leaving the last layer."""
        return self.model.lm_head(self.inner.norm(hidden)).float()

    def _opening_layer(self, index: int, hidden: torch.Tensor, recorder: _Recorder
                       ) -> torch.Tensor:
        length = hidden.shape[1]
        positions = torch.arange(length, device=hidden.device)[None]
        causal = torch.tril(torch.ones(length, length, dtype=torch.bool, device=hidden.device))
        mask, rotary = self._by_kind(hidden, positions, causal, [index])[self.kinds[index]]
        return layer_output(self.layers[index](
            hidden, attention_mask=mask, position_ids=positions, cache=recorder,
            position_embeddings=rotary))

    def _by_kind(self, hidden: torch.Tensor, positions: torch.Tensor, allowed: torch.Tensor,
                 layers) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """(additive mask, rotary embedding) for each kind among `layers`; `allowed` is
        (query, key), the keys at positions 0, 1, ... and the queries at `positions`."""
        inputs = {}
        for kind in {self.kinds[i] for i in layers}:
            seen = allowed
            if kind == "sliding_attention" and self.window:
                keys = torch.arange(allowed.shape[-1], device=allowed.device)
                seen = allowed & (positions[0][:, None] - keys[None] < self.window)
            rotary = (self.inner.rotary_emb(hidden, positions, kind) if self._rotary_by_kind
                      else self.inner.rotary_emb(hidden, positions))
            inputs[kind] = additive_mask(seen[None, None], hidden.dtype), rotary
        return inputs


def additive_mask(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean (batch, head, query, key) mask as the additive float mask every attention
    backend reads."""
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(
        ~allowed, torch.finfo(dtype).min)


def layer_output(result):
    return result[0] if isinstance(result, tuple) else result
