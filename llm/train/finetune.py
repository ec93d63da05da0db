"""Supervised fine-tuning for financial sentiment, cheaply, on a CPU.

The frozen lower layers run once over the training set and their outputs at layer `start` are
cached; only the band `[start, stop)` (low-rank deltas on attention and every expert, routers
whole, bias balancing on) and a sentiment head on the mean-pooled document tokens at layer
`stop` are trained, for several epochs, on that cache. Documents sit in the score-mode prompt,
whose opening is the same for all of them: it runs once per step and every document attends to
its keys and values (`llm.infer.prefix.SharedPrefix`), so a step costs the documents' own tokens and
the few that name the entity the label is about (" AAPL\nText:"), laid out as scoring lays
them out.

The validation files choose the epoch whose head is kept; they are never trained on.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F

from llm.errors import ModelError
from llm.infer import prompts
from llm.infer.evaluate import sentiment_metrics
from llm.infer.prefix import SharedPrefix
from llm.model import adapter as adapters
from llm.model.load import load
from llm.model.loaded import LoadedModel
from llm.model.moe import load_entropy
from llm.model.upcycle import moe_blocks, upcycle_of
from llm.settings import FinetuneSettings, Log
from llm.train.training_files import read_training_files, source_name, with_source_weights


def pooled(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real (unpadded) document tokens."""
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)


def prompt_prefix(tokenizer) -> list[int]:
    """Token ids of the score prompt's opening, the same for every document and entity (its
    keys and values are computed once: `llm.infer.prefix.SharedPrefix`)."""
    return tokenizer(prompts.opening(tokenizer, prompts.SCORE_USER),
                     add_special_tokens=False)["input_ids"]


def entity_heads(tokenizer, entities: set[str]) -> dict[str, list[int]]:
    """Per entity, the prompt's tokens between the opening and the document (" AAPL\nText:"),
    laid out as the engine lays them out: training sees the entity where scoring shows it."""
    opening = prompts.opening(tokenizer, prompts.SCORE_USER)
    heads = {}
    for entity in entities:
        head, _ = prompts.around_document(tokenizer, prompts.SCORE_USER, entity)
        heads[entity] = tokenizer(head[len(opening):], add_special_tokens=False)["input_ids"]
    return heads


# ---------------------------------------------------------------- data


@dataclass
class Batch:
    rows: list[int]         # the frame rows in this batch
    ids: torch.Tensor       # (B, L) right-padded: the entity's head, then the document
    mask: torch.Tensor      # (B, L) 1 on the document's own tokens (what the head pools)
    labels: torch.Tensor    # (B,) index into adapters.LABELS (0 for a frame without labels)
    lengths: torch.Tensor   # (B,) tokens before the padding
    weights: torch.Tensor   # (B,) each example's loss weight (the frame's `weight`, else 1)
    hidden: torch.Tensor | None = None  # cached input to the band


def batches(tokenizer, frame: pl.DataFrame, settings: FinetuneSettings) -> list[Batch]:
    """Length-bucketed batches of `frame`'s text about its `entity` (the company, when the
    frame has none), with the label when it has one; sorted by length so padding is small;
    empty texts are left out."""
    texts = [prompts.normalise(t) for t in frame["text"]]
    entities = (frame["entity"].fill_null("").to_list() if "entity" in frame.columns
                else [""] * len(texts))
    heads = entity_heads(tokenizer, set(entities))
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    labels = ([adapters.LABELS.index(x) for x in frame["label"]] if "label" in frame.columns
              else [0] * len(ids))
    weights = frame["weight"].to_list() if "weight" in frame.columns else [1.0] * len(ids)
    kept = sorted((i for i in range(len(ids)) if ids[i]),
                  key=lambda i: len(heads[entities[i]]) + len(ids[i]))
    pad = tokenizer.pad_token_id
    out = []
    for begin in range(0, len(kept), settings.batch_size):
        rows = kept[begin:begin + settings.batch_size]
        parts = [(heads[entities[i]], ids[i][:settings.max_doc_tokens]) for i in rows]
        width = max(len(h) + len(d) for h, d in parts)
        out.append(Batch(
            rows=rows,
            ids=torch.tensor([h + d + [pad] * (width - len(h) - len(d)) for h, d in parts]),
            mask=torch.tensor([[0] * len(h) + [1] * len(d) + [0] * (width - len(h) - len(d))
                               for h, d in parts]),
            labels=torch.tensor([labels[i] for i in rows]),
            lengths=torch.tensor([len(h) + len(d) for h, d in parts]),
            weights=torch.tensor([weights[i] for i in rows], dtype=torch.float32)))
    return out


def cache_inputs(runner: SharedPrefix, data: list[Batch], start: int, log: Log) -> None:
    """The frozen layers, once: each batch keeps its hidden state entering layer `start`."""
    began, tokens = time.perf_counter(), 0
    with torch.no_grad():
        for n, batch in enumerate(data, 1):
            batch.hidden = runner.run(runner.embed(batch.ids), 0, start)
            tokens += int(batch.mask.sum())
            if n % 50 == 0 or n == len(data):
                log(f"cached {n}/{len(data)} batches, "
                    f"{tokens / (time.perf_counter() - began):.0f} tok/s")


# ---------------------------------------------------------------- training


@dataclass
class Band:
    """What fine-tuning trains: low-rank deltas on the band's projections, its routers in
    full, and a sentiment head on the band's output."""

    names: list[str]
    full: list[str]
    deltas: dict
    routers: list[torch.nn.Parameter]
    head: adapters.SentimentHead
    moe: list
    low_rank: list[torch.nn.Parameter]

    def parameters(self) -> list[torch.nn.Parameter]:
        return self.low_rank + self.routers + list(self.head.parameters())


def attach_band(model: torch.nn.Module, settings: FinetuneSettings, merged: bool = False
                ) -> Band:
    """Freeze the model and add the trainable band (removed again by `remove_low_rank`); its
    deltas act on the activations unless `merged` (`adapters.add_low_rank`)."""
    for param in model.parameters():
        param.requires_grad_(False)
    names = adapters.band_targets(model, settings.start, settings.stop)
    full = adapters.band_full(model, settings.start, settings.stop)
    deltas = adapters.add_low_rank(model, names, settings.rank, settings.alpha, merged)
    routers = [p for n, p in model.named_parameters() if n in full]
    for param in routers:
        param.requires_grad_(True)
    head = adapters.SentimentHead(model.config.hidden_size)
    band_moe = [m for i in range(settings.start, settings.stop)
                for m in moe_blocks(adapters.decoder_layers(model)[i])]
    return Band(names, full, deltas, routers, head, band_moe,
                [p for d in deltas.values() for p in (d.A, d.B)])


def train_epoch(runner: SharedPrefix, band: Band, data: list[Batch], order: list[int],
                step_fn: Callable[[torch.Tensor], None], weights: torch.Tensor,
                settings: FinetuneSettings, epoch: int, log: Log) -> list[float]:
    """One pass over the training batches in `order`; returns the losses."""
    for moe in band.moe:
        moe.balance = True
        moe.reset_load()
    losses, seen, began = [], 0, time.perf_counter()
    for step, index in enumerate(order, 1):
        batch = data[index]
        logits = band.head(pooled(runner.run(batch.hidden, settings.start, settings.stop),
                                  batch.mask))
        loss = weighted_loss(logits, batch, weights)
        step_fn(loss)
        losses.append(float(loss.detach()))
        seen += len(batch.labels)
        if step % 50 == 0 or step == len(order):
            log(f"epoch {epoch} step {step}/{len(order)} loss {np.mean(losses[-50:]):.4f} "
                f"{seen / (time.perf_counter() - began):.1f} examples/s")
    for moe in band.moe:
        moe.balance = False
    return losses


def weighted_loss(logits: torch.Tensor, batch: Batch, class_weights: torch.Tensor
                  ) -> torch.Tensor:
    """Class-weighted cross-entropy, each example also weighted by its source's weight; the
    sum is divided by the class weights alone, so a batch of a weighted source counts more
    (with every source at 1 this is `F.cross_entropy(..., weight=class_weights)`)."""
    per_example = F.cross_entropy(logits, batch.labels, reduction="none")
    label_weights = class_weights[batch.labels]
    return (per_example * label_weights * batch.weights).sum() / label_weights.sum()


def finetune(loaded: LoadedModel, train: pl.DataFrame, valid: dict[str, pl.DataFrame],
             settings: FinetuneSettings, base_id: str, log: Log = print
             ) -> tuple[dict[str, torch.Tensor], dict]:
    """Train; returns (adapter tensors of the best epoch, report)."""
    if loaded.precision != "fp32":
        raise ModelError("fine-tuning needs the model in fp32 (load it with precision='fp32')")
    if train.height == 0:
        raise ModelError("no training examples")
    torch.manual_seed(settings.seed)
    model, tokenizer = loaded.model, loaded.tokenizer
    runner = SharedPrefix(model, prompt_prefix(tokenizer))
    began = time.perf_counter()
    if settings.source_weights:
        train = with_source_weights(train, settings.source_weights)
    train_batches = batches(tokenizer, train, settings)
    valid_batches = {name: batches(tokenizer, frame, settings) for name, frame in valid.items()}
    for data in [train_batches, *valid_batches.values()]:
        cache_inputs(runner, data, settings.start, log)
    timings = {"cache_seconds": round(time.perf_counter() - began, 1)}
    band = attach_band(model, settings)
    optimiser = torch.optim.AdamW(
        [{"params": band.low_rank + band.routers, "lr": settings.lr},
         {"params": list(band.head.parameters()), "lr": settings.head_lr}],
        weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, _warmup_cosine(settings.epochs * len(train_batches)))

    def step(loss: torch.Tensor) -> None:
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(band.parameters(), 1.0)
        optimiser.step()
        schedule.step()

    weights, rng = _class_weights(train), random.Random(settings.seed)
    history, best, best_score, train_began = [], None, -math.inf, time.perf_counter()
    try:
        for epoch in range(1, settings.epochs + 1):
            model.train()
            order = list(range(len(train_batches)))
            rng.shuffle(order)
            epoch_began = time.perf_counter()
            losses = train_epoch(runner, band, train_batches, order, step, weights, settings,
                                 epoch, log)
            model.eval()
            entry = _epoch_entry(runner, band, valid_batches, settings, epoch, losses,
                                 epoch_began, log)
            history.append(entry)
            if entry["score"] > best_score:
                best_score, best = entry["score"], adapters.collect(model, band.deltas,
                                                                    band.head, band.full)
    finally:
        adapters.remove_low_rank(model, band.deltas)  # the loaded model is left as it came
    timings |= {"train_seconds": round(time.perf_counter() - train_began, 1),
                "wall_seconds": round(time.perf_counter() - began, 1)}
    return best, _report(train, settings, history, band, timings)


def _epoch_entry(runner: SharedPrefix, band: Band, valid: dict[str, list[Batch]],
                 settings: FinetuneSettings, epoch: int, losses: list[float], began: float,
                 log: Log) -> dict:
    """Validate after an epoch: the history entry, with the score that picks the best."""
    entropy = {f"layer {settings.start + i}": round(load_entropy(m.expert_load()), 4)
               for i, m in enumerate(band.moe)}
    metrics = {name: _evaluate(runner, band.head, data, settings)
               for name, data in valid.items()}
    score = float(np.mean([goal_metric(m) for m in metrics.values()])) if metrics \
        else -float(np.mean(losses))
    log(f"epoch {epoch}: loss {np.mean(losses):.4f}, validation "
        + ", ".join(f"{n} {goal_metric(m):.4f}" for n, m in metrics.items()))
    return {"epoch": epoch, "train_loss": round(float(np.mean(losses)), 4), "valid": metrics,
            "expert_load_entropy": entropy, "seconds": round(time.perf_counter() - began, 1),
            "score": score}


def _report(train: pl.DataFrame, settings: FinetuneSettings, history: list[dict], band: Band,
            timings: dict) -> dict:
    best = max(history, key=lambda e: e["score"])  # the first of equals, as training kept
    history = [{k: v for k, v in e.items() if k != "score"} for e in history]
    return {
        "settings": asdict(settings), "train_examples": train.height,
        "train_label_counts": dict(train["label"].value_counts().iter_rows()),
        "history": history, "best_epoch": best["epoch"], "valid": best["valid"], **timings,
        "targets": len(band.names), "full": band.full,
        "trainable_parameters": sum(p.numel() for p in band.parameters()),
    }


def goal_metric(metrics: dict) -> float:
    """Weighted F1 on three classes, accuracy on two (the figures the goals are set in)."""
    return metrics["weighted_f1"] if len(metrics["labels"]) == 3 else metrics["accuracy"]


@torch.no_grad()
def _evaluate(runner: SharedPrefix, head, data: list[Batch], settings) -> dict:
    truth, probs = [], []
    for batch in data:
        logits = head(pooled(runner.run(batch.hidden, settings.start, settings.stop),
                             batch.mask))
        probs.append(logits.softmax(-1))
        truth.append(batch.labels)
    t = [adapters.LABELS[i] for i in torch.cat(truth).tolist()]
    metrics = sentiment_metrics(t, torch.cat(probs).numpy())
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()}


def _class_weights(train: pl.DataFrame) -> torch.Tensor:
    """Inverse class frequency (65% of TFNS is neutral); absent classes weigh nothing."""
    counts = dict(train["label"].value_counts().iter_rows())
    present = [label for label in adapters.LABELS if counts.get(label)]
    return torch.tensor([train.height / (len(present) * counts[label]) if counts.get(label)
                         else 0.0 for label in adapters.LABELS])


def _warmup_cosine(total: int, warmup_fraction: float = 0.05):
    warmup = max(1, int(total * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
    return factor


# ---------------------------------------------------------------- the command


def train_adapter(base: str, train_files: list[str], valid_files: list[str], text_col: str,
                  label_cols: list[str], out: str, settings: FinetuneSettings,
                  cache_dir=None, names=None, command: str = "", log: Log = print,
                  upcycle: dict | None = None) -> dict:
    """Load `base` in fp32, fine-tune, and write the adapter of the best epoch to `out`;
    `upcycle` (e.g. {"top_k": 2}) changes how the bundled model is upcycled, and is recorded
    so the adapter loads on the same upcycle."""
    train = read_training_files(train_files, text_col, label_cols)
    valid = {source_name(f): read_training_files([f], text_col, label_cols)
             for f in valid_files}
    loaded = load(base, "fp32", cache_dir=cache_dir, names=names, upcycle=upcycle)
    if loaded.adapter:
        raise ModelError(f"{base} already has an adapter ({loaded.adapter}); fine-tune the base "
                         "model (e.g. default-base)")
    tensors, report = finetune(loaded, train, valid, settings, loaded.base_id, log)
    meta = {"name": Path(out).name, "base_model_id": loaded.model_id, "base_id": loaded.base_id,
            "start": settings.start, "stop": settings.stop, "rank": settings.rank,
            "alpha": settings.alpha, "labels": list(adapters.LABELS),
            "train_files": {f: int(train.filter(pl.col("source") == f).height)
                            for f in train_files},
            "valid_files": list(valid_files), "command": command, "report": report}
    if upcycle is not None:
        meta["upcycle"] = upcycle_of(None, upcycle)
    saved = adapters.save(Path(out), tensors, meta)
    return saved.meta
