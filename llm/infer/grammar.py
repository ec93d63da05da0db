"""Grammar-constrained decoding with llguidance: reasoning text, then a JSON signal.

The grammar is Lark with an embedded JSON schema: `Reasoning: <one line>` then `JSON: {...}`.
A grammar guarantees a valid prefix, not an end, so every field is bounded (integer percents,
a short rationale) and the decoder has a token cap; the result is validated with pydantic.
"""

from __future__ import annotations

import json
from functools import lru_cache

import llguidance
import llguidance.hf
import numpy as np
import torch
from transformers import LogitsProcessor

from llm.schema import reason_json_schema

MAX_REASONING_CHARS = 240


def reason_grammar() -> str:
    """A one-line reasoning, then the JSON signal, compact (no free white space: the tokens go
    to what the signal says)."""
    schema = json.dumps(reason_json_schema() | {"x-guidance": {"whitespace_flexible": False}})
    return (f"start: REASONING \"\\nJSON: \" signal\n"
            f"REASONING: /[^\\n{{}}]{{1,{MAX_REASONING_CHARS}}}/\n"
            f"signal: %json {schema}\n")


def signal_grammar() -> str:
    """The JSON signal alone, compact (no free white space between its tokens, so a model
    cannot pad it past the token cap): what a thinking model writes after its <think>
    block."""
    schema = reason_json_schema() | {"x-guidance": {"whitespace_flexible": False}}
    return f"start: signal\nsignal: %json {json.dumps(schema)}\n"


@lru_cache(maxsize=4)
def _ll_tokenizer(tokenizer) -> llguidance.LLTokenizer:
    return llguidance.hf.from_tokenizer(tokenizer)


def new_matcher(tokenizer, grammar: str | None = None) -> llguidance.LLMatcher:
    matcher = llguidance.LLMatcher(_ll_tokenizer(tokenizer), grammar or reason_grammar(),
                                   log_level=0)
    if matcher.is_error():
        raise ValueError(f"invalid grammar: {matcher.get_error()}")
    return matcher


def allowed_tokens(matcher: llguidance.LLMatcher, vocab_size: int) -> torch.Tensor:
    """A boolean mask over the model's vocabulary (rows past the tokenizer's are False)."""
    bits = np.unpackbits(np.frombuffer(matcher.compute_bitmask(), dtype=np.uint8),
                         bitorder="little").astype(bool)
    mask = np.zeros(vocab_size, dtype=bool)
    n = min(vocab_size, bits.size)
    mask[:n] = bits[:n]
    return torch.from_numpy(mask)


class GrammarLogitsProcessor(LogitsProcessor):
    """Masks each row's logits to what its matcher allows; ends rows whose grammar finished."""

    def __init__(self, matchers: list[llguidance.LLMatcher], prompt_length: int,
                 eos_token_id: int) -> None:
        self.matchers = matchers
        self.prompt_length = prompt_length
        self.eos = eos_token_id

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor):
        fresh = input_ids.shape[1] > self.prompt_length
        for row, matcher in enumerate(self.matchers):
            if fresh and not matcher.is_stopped():
                matcher.consume_token(int(input_ids[row, -1]))
            if matcher.is_stopped() or matcher.is_error():
                scores[row] = -torch.inf
                scores[row, self.eos] = 0.0
                continue
            allowed = allowed_tokens(matcher, scores.shape[-1]).to(scores.device)
            scores[row] = scores[row].masked_fill(~allowed, -torch.inf)
        return scores
