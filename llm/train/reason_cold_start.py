"""Reason mode's cold start: supervised completions before the rewards, as R1 began.

A small model that has never written the signal answers at chance, so the completions GRPO
samples from it rarely differ in the label within a group and the rewards teach format and
brevity but not the verdict (two runs of GRPO alone ended answering neutral to everything).
The cold start first teaches, by teacher forcing on the training files' gold labels, a
verdict-first completion:

    Reasoning: The text reads bearish for ALLY.
    JSON: {"sentiment":-70,"confidence":83,"event_type":"other","horizon_days":5,
           "rationale":"Ally Financial pulls outlook"}

- sentiment is -70, 0 or 70 by the gold label (reason mode reads a side past 50);
- confidence is the sentiment head's probability of the gold label, so reason mode learns a
  graded confidence rather than a constant;
- the event type's tokens carry no loss: the labelled files have none, and the model keeps its
  own reading;
- horizon is score mode's documented default; the rationale quotes the start of the text.

The same low-rank attention deltas above the head's layer are trained as in GRPO, so score
mode is unchanged and GRPO can go on from where the cold start ends.
"""

from __future__ import annotations

import json
import time

import polars as pl
import torch

from llm.infer import prompts
from llm.infer.engine import DocInput, Engine
from llm.model import adapter as adapters
from llm.settings import Log
from llm.train.completions import Completions, completion_logprobs, reason_prompts

SIDE = {"bearish": -70, "neutral": 0, "bullish": 70}
RATIONALE_CHARS = 60
PLACEHOLDER_EVENT = "other"   # stands in the teacher text; its tokens are not trained


def target_completion(label: str, ticker: str | None, text: str, confidence: int
                      ) -> tuple[str, list[tuple[int, int]]]:
    """The completion taught for one document after the prompt's `Reasoning:`, and the
    character spans of it that carry no loss (the event type's value)."""
    about = f" for {ticker}" if ticker else ""
    quote = prompts.normalise(text)[:RATIONALE_CHARS + 1]
    quote = (quote.rsplit(" ", 1)[0] if len(quote) > RATIONALE_CHARS else quote) or "-"
    signal = {"sentiment": SIDE[label], "confidence": confidence,
              "event_type": PLACEHOLDER_EVENT, "horizon_days": prompts.SCORE_HORIZON_DAYS,
              "rationale": quote}
    completion = (f" The text reads {label}{about}.\nJSON: "
                  + json.dumps(signal, separators=(",", ":"), ensure_ascii=False))
    start = completion.index(f'"{PLACEHOLDER_EVENT}"')
    return completion, [(start, start + len(PLACEHOLDER_EVENT) + 2)]


def teacher_batch(engine: Engine, docs: list[DocInput],
                  completions: list[tuple[str, list[tuple[int, int]]]]):
    """The reason prompts (left-padded) followed by the taught completions (right-padded),
    as sampled `Completions`, and each completion token's loss weight (R, T)."""
    ids, mask = reason_prompts(engine, docs)
    encoded = [engine.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
               for text, _ in completions]
    width = max(len(e["input_ids"]) for e in encoded)
    pad = engine.tokenizer.pad_token_id
    rows, keep, weights = [], [], []
    for e, (_, untrained) in zip(encoded, completions, strict=True):
        gap = width - len(e["input_ids"])
        rows.append(e["input_ids"] + [pad] * gap)
        keep.append([1] * len(e["input_ids"]) + [0] * gap)
        weights.append([0.0 if any(a < hi and lo < b for lo, hi in untrained) else 1.0
                        for a, b in e["offset_mapping"]] + [0.0] * gap)
    batch = Completions(torch.cat([ids, torch.tensor(rows, device=ids.device)], 1),
                        torch.cat([mask, torch.tensor(keep, device=mask.device)], 1),
                        ids.shape[1], [text for text, _ in completions], [True] * len(docs))
    return batch, torch.tensor(weights, device=ids.device)


def head_confidences(engine: Engine, docs: list[DocInput], labels: list[str]) -> list[int]:
    """The sentiment head's probability of each gold label, in percent (50 where the head
    gave none)."""
    scored = engine.score(docs)
    return [round(100 * s.probs[label]) if s.status == "ok" and s.probs else 50
            for s, label in zip(scored, labels, strict=True)]


def cold_start(engine: Engine, deltas: dict[str, adapters.LowRank], start: int,
               train: pl.DataFrame, minutes: float, batch_size: int, lr: float, seed: int,
               log: Log) -> dict:
    """Teacher-forced training of the deltas on the taught completions, documents in a
    shuffled order, for `minutes` or one pass over `train`; returns its report."""
    began = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(train.height, generator=generator).tolist()
    optimiser = torch.optim.AdamW([p for d in deltas.values() for p in (d.A, d.B)], lr=lr,
                                  weight_decay=0.0)
    losses, step = [], 0
    while ((step + 1) * batch_size <= len(order)
           and time.perf_counter() - began < minutes * 60):
        rows = train[order[step * batch_size:(step + 1) * batch_size]]
        docs = [DocInput(e, t) for e, t in zip(rows["entity"], rows["text"], strict=True)]
        labels = rows["label"].to_list()
        confidences = head_confidences(engine, docs, labels)
        batch, weights = teacher_batch(engine, docs, [
            target_completion(label, doc.ticker, doc.text, c)
            for doc, label, c in zip(docs, labels, confidences, strict=True)])
        policy, _ = completion_logprobs(engine.model, start, batch, deltas, None)
        loss = -(policy * weights).sum() / weights.sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % 20 == 0 or step == 1:
            recent = losses[-20:]
            log(f"cold start step {step}: loss {sum(recent) / len(recent):.4f} per token, "
                f"{(time.perf_counter() - began) / 60:.1f} min")
    return {"steps": step, "documents": step * batch_size, "batch_size": batch_size, "lr": lr,
            "wall_seconds": round(time.perf_counter() - began, 1),
            "loss": [round(sum(w) / len(w), 4) for w in
                     (losses[i:i + 20] for i in range(0, len(losses), 20))]}
