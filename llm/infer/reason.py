"""Reason mode: a short reasoning, then the JSON signal under a grammar (llguidance), validated
with pydantic. A thinking model (`think_tokens`) first thinks freely in its <think> block, up to
the budget; the block is then closed and the answer forced as compact JSON."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from pydantic import ValidationError
from transformers import LogitsProcessorList

from llm.infer import prompts
from llm.infer.grammar import GrammarLogitsProcessor, new_matcher, signal_grammar
from llm.model.adapter import LABELS
from llm.schema import ReasonOutput, signal_ticker
from llm.scored import DocInput, Progress, Scored

if TYPE_CHECKING:  # the engine runs this module; it is only a type here
    from llm.infer.engine import Engine


@torch.inference_mode()
def reason(engine: Engine, docs: Sequence[DocInput], progress: Progress | None = None
           ) -> list[Scored]:
    """A short reasoning and the JSON signal under the grammar. With `think_tokens`, a
    model that thinks in <think> blocks first thinks freely up to that many tokens; the
    block is then closed (cut if it ran over) and the JSON forced as usual."""
    thinking = engine.options.think_tokens > 0
    user, cues, _ = engine.prompt_parts("reason")
    built = engine.build_prompts(docs, user, cues)
    results: list[Scored | None] = [None] * len(docs)
    eos = engine.tokenizer.eos_token_id
    started, tokens = time.perf_counter(), 0
    for batch in engine.batches(built):
        t0 = time.perf_counter()
        sequences = [built[i][0] for i in batch]
        traces = _think(engine, sequences) if thinking else [""] * len(batch)
        if thinking:  # the block closed, the answer is the JSON signal alone
            close = engine.encode(prompts.THINK_CLOSE + prompts.JSON_PREFIX)
            sequences = [s + engine.encode(t) + close for s, t in
                         zip(sequences, traces, strict=True)]
        ids, mask = engine.pad_left(sequences)
        grammar = signal_grammar() if thinking else None
        matchers = [new_matcher(engine.tokenizer, grammar) for _ in batch]
        processor = GrammarLogitsProcessor(matchers, ids.shape[1], eos)
        try:
            out = engine.model.generate(
                input_ids=ids, attention_mask=mask, do_sample=False,
                max_new_tokens=engine.max_new_tokens, pad_token_id=engine.tokenizer.pad_token_id,
                eos_token_id=eos, logits_processor=LogitsProcessorList([processor]))
        except RuntimeError as exc:
            for i in batch:
                results[i] = Scored("failed", reason=f"generation failed: {exc}")
            continue
        per_doc = (time.perf_counter() - t0) * 1000 / len(batch)
        for row, i in enumerate(batch):
            new = [t for t in out[row, ids.shape[1]:].tolist() if t != eos]
            tokens += int(mask[row].sum()) + len(new)
            results[i] = _reason_result(engine, docs[i], new, matchers[row], per_doc,
                                        built[i][1], traces[row])
        if progress:
            progress(len(batch))
    return engine.finish(results, started, tokens)

def _think(engine: Engine, sequences: list[list[int]]) -> list[str]:
    """Each prompt's free thinking, greedy, up to `think_tokens` or its closing tag (the
    text before the tag)."""
    ids, mask = engine.pad_left(sequences)
    out = engine.model.generate(
        input_ids=ids, attention_mask=mask, do_sample=False,
        max_new_tokens=engine.options.think_tokens, pad_token_id=engine.tokenizer.pad_token_id,
        eos_token_id=engine.tokenizer.eos_token_id, stop_strings=[prompts.THINK_END],
        tokenizer=engine.tokenizer)
    texts = engine.tokenizer.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)
    return [text.split(prompts.THINK_END)[0].rstrip() for text in texts]

def _reason_result(engine: Engine, doc: DocInput, new_tokens: list[int], matcher,
                   latency_ms: float, truncated: bool, trace: str = "") -> Scored:
    text = engine.tokenizer.decode(new_tokens, skip_special_tokens=True)
    decoding = {"truncated": truncated, "new_tokens": len(new_tokens),
                "max_new_tokens": engine.max_new_tokens, "constrained": True}
    if engine.options.think_tokens > 0:
        decoding |= {"think_tokens": engine.options.think_tokens,
                     "thought_tokens": len(engine.encode(trace)) if trace else 0}
    common = {"latency_ms": latency_ms, "tokens": len(new_tokens), "decoding": decoding}
    if not matcher.is_stopped() and not matcher.is_accepting():
        return Scored("failed", reason=f"decode hit the token cap ({engine.max_new_tokens}) "
                      "before the JSON ended", **common)
    reasoning, _, payload = ("", "", text) if engine.options.think_tokens > 0 else (
        text.partition("\nJSON: "))
    try:
        output = ReasonOutput.model_validate_json(payload)
    except ValidationError as exc:
        return Scored("failed", reason=f"invalid JSON signal: {exc.errors()[0]['msg']}",
                      **common)
    fields = output.to_fields(signal_ticker(doc.ticker))
    decoding["reasoning"] = reasoning.strip()[:240]
    if trace.strip():  # a thinking model's trace is its rationale (the answer's is kept)
        decoding["answer_rationale"] = fields.rationale
        fields = fields.model_copy(update={"rationale": " ".join(trace.split())[-400:]})
    return Scored("ok", fields=fields, probs=sentiment_probs(fields.sentiment), **common)


def sentiment_probs(sentiment: float) -> dict[str, float]:
    """A reasoned sentiment in [-1, 1] read as label probabilities: its size goes to its
    side, the rest to neutral."""
    bullish, bearish = max(0.0, sentiment), max(0.0, -sentiment)
    return {"bullish": bullish, "bearish": bearish, "neutral": 1 - bullish - bearish}


def label_of(sentiment: float) -> str:
    """The label evaluation reads from a reasoned sentiment: the most likely one (ties go to
    the first in LABELS order, as numpy's argmax does)."""
    probs = sentiment_probs(sentiment)
    return max(LABELS, key=lambda label: (probs[label], -LABELS.index(label)))

