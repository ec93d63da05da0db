"""Reason mode trained with verifiable rewards: GRPO over the model's own trace and JSON.

A cold start comes first (`llm.train.reason_cold_start`): supervised, teacher-forced
completions that state the gold label, as R1 began, so that the samples GRPO draws differ in
the label at all.

Each GRPO step then draws a few labelled documents and samples a group of reason-mode
completions for each, under the same grammar reason mode decodes with. Rules score every
completion, with no learned reward model: the JSON parses and validates (format), its sentiment
gives the gold label (accuracy), and a penalty grows with its length, so traces stay short and
always finish before the token cap. A completion's advantage is its reward standardised within
its group; the loss is -advantage x the mean log-probability of its tokens, plus a KL penalty
(the k3 estimator, per token) to the reference: the model as GRPO found it.

Cheap on a CPU by construction: low-rank deltas on the attention projections of the layers from
the sentiment head's layer up, so the layers below run once per step without gradients (for the
policy and the reference alike) and score mode, which stops at the head's layer, is untouched;
the experts are left as they are, so copied experts still run as one MLP; small groups, short
completions, and a wall-time budget.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import polars as pl
import torch
from pydantic import ValidationError
from torch.nn.utils import parametrize
from transformers import LogitsProcessorList

from llm.errors import ModelError
from llm.infer.engine import DocInput, Engine
from llm.infer.grammar import GrammarLogitsProcessor, new_matcher
from llm.infer.reason import label_of
from llm.model import adapter as adapters
from llm.model.load import load
from llm.model.loaded import LoadedModel, adapter_path
from llm.schema import ReasonOutput
from llm.settings import Log, ReasonTrainSettings
from llm.train.completions import Completions, completion_logprobs, reason_prompts, snapshot
from llm.train.grpo import REASON_EPS, group_advantages
from llm.train.reason_cold_start import cold_start
from llm.train.training_files import read_training_files

ATTENTION = ("q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight")


def reward(text: str, finished: bool, label: str, tokens: int,
           settings: ReasonTrainSettings) -> dict[str, float]:
    """The rule-based reward of one completion and its parts."""
    _, _, payload = text.partition("\nJSON: ")
    valid, correct = 0.0, 0.0
    if finished:
        try:
            output = ReasonOutput.model_validate_json(payload)
            valid, correct = 1.0, float(label_of(output.sentiment / 100) == label)
        except ValidationError:
            pass
    length = tokens / settings.max_new_tokens
    total = settings.format_weight * valid + correct - settings.length_penalty * length
    return {"reward": total, "format": valid, "accuracy": correct, "length": length}


def sample(engine: Engine, docs: list[DocInput], settings: ReasonTrainSettings
           ) -> Completions:
    """`group` completions per document, sampled under the reason grammar."""
    ids, mask = reason_prompts(engine, docs)
    tokenizer, eos = engine.tokenizer, engine.tokenizer.eos_token_id
    matchers = [new_matcher(tokenizer) for _ in range(len(docs) * settings.group)]
    out = engine.model.generate(
        input_ids=ids, attention_mask=mask, do_sample=True, temperature=settings.temperature,
        top_k=0, top_p=1.0, num_return_sequences=settings.group,
        max_new_tokens=settings.max_new_tokens, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=eos, logits_processor=LogitsProcessorList(
            [GrammarLogitsProcessor(matchers, ids.shape[1], eos)]))
    completion = out[:, ids.shape[1]:]
    # a completion runs up to and including its first end token
    ended = (completion == eos).long()
    keep = (ended.cumsum(1) - ended) == 0
    texts = [tokenizer.decode(row[k], skip_special_tokens=True)
             for row, k in zip(completion, keep, strict=True)]
    prompt_mask = mask.repeat_interleave(settings.group, 0)
    return Completions(out, torch.cat([prompt_mask, keep.long()], 1), ids.shape[1], texts,
                       [m.is_stopped() or m.is_accepting() for m in matchers])


def grpo_loss(policy: torch.Tensor, reference: torch.Tensor, completion_mask: torch.Tensor,
              advantages: torch.Tensor, kl: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The GRPO objective (one update per sample, so the ratio is 1) and the mean KL."""
    log_ratio = reference - policy
    k3 = log_ratio.exp() - log_ratio - 1
    per_token = -advantages[:, None] * policy + kl * k3
    weights = completion_mask.float()
    per_row = (per_token * weights).sum(1) / weights.sum(1).clamp(min=1)
    mean_kl = (k3.detach() * weights).sum() / weights.sum().clamp(min=1)
    return per_row.mean(), mean_kl


def balanced_order(labels: list[str], seed: int) -> list[int]:
    """Row indices taking the labels in turn, each label's rows shuffled (as many rounds as
    the rarest label has rows): a policy that always answers the commonest label then earns
    no more than any other, as it would on an imbalanced file (two thirds of TFNS is
    neutral, and a first run learned to answer neutral to everything)."""
    generator = torch.Generator().manual_seed(seed)
    by_label: dict[str, list[int]] = {}
    for row, label in enumerate(labels):
        by_label.setdefault(label, []).append(row)
    shuffled = [[rows[i] for i in torch.randperm(len(rows), generator=generator).tolist()]
                for _, rows in sorted(by_label.items())]
    return [rows[i] for i in range(min(map(len, shuffled))) for rows in shuffled]


def attach_attention_deltas(model: torch.nn.Module, start: int, rank: int, alpha: float
                            ) -> dict[str, adapters.LowRank]:
    """Freeze the model; low-rank deltas on the attention projections of layers [start, end)."""
    for param in model.parameters():
        param.requires_grad_(False)
    stop = len(adapters.decoder_layers(model))
    names = [n for n in adapters.band_targets(model, start, stop)
             if n.rsplit(".", 2)[-2] + ".weight" in ATTENTION]
    if not names:
        raise ModelError(f"layers {start}-{stop - 1} have no attention projections to train")
    return adapters.add_low_rank(model, names, rank, alpha)


def reason_train(loaded: LoadedModel, train: pl.DataFrame, settings: ReasonTrainSettings,
                 rank: int, alpha: float, log: Log) -> tuple[dict[str, torch.Tensor], dict]:
    """GRPO on `train` (text, label, entity) within the wall-time budget; returns the
    low-rank tensors (adapter keys) and a report with the reward history."""
    began = time.perf_counter()
    torch.manual_seed(settings.seed)
    model = loaded.model
    start = settings.start if settings.start is not None else (
        loaded.head_layer or len(adapters.decoder_layers(model)) // 2)
    deltas = attach_attention_deltas(model, start, rank, alpha)
    trainable = [p for d in deltas.values() for p in (d.A, d.B)]
    optimiser = torch.optim.AdamW(trainable, lr=settings.lr, weight_decay=0.0)
    engine = Engine(loaded, batch_size=settings.prompts * settings.group,
                    max_new_tokens=settings.max_new_tokens)
    cold = (cold_start(engine, deltas, start, train, settings.cold_start_minutes,
                       settings.cold_start_batch, settings.cold_start_lr, settings.seed, log)
            if settings.cold_start_minutes > 0 else None)
    reference = snapshot(deltas)
    order = balanced_order(train["label"].to_list(), settings.seed)
    history, step = [], 0
    while (step < settings.max_steps and (step + 1) * settings.prompts <= len(order)
           and time.perf_counter() - began < settings.minutes * 60):
        rows = order[step * settings.prompts:(step + 1) * settings.prompts]
        history.append(_step(engine, deltas, reference, optimiser, train[rows], start,
                             settings))
        step += 1
        if step % 5 == 0 or step == 1:
            log(_summary(step, history[-5:], time.perf_counter() - began))
    tensors = adapters.low_rank_tensors(deltas)
    adapters.remove_low_rank(model, deltas)
    report = {"settings": asdict(settings), "layers": [start, len(adapters.decoder_layers(model))],
              "targets": list(ATTENTION), "steps": step, "documents": step * settings.prompts,
              "wall_seconds": round(time.perf_counter() - began, 1),
              "cold_start": cold, "history": _windows(history, 10)}
    return tensors, report


def _step(engine: Engine, deltas: dict[str, adapters.LowRank], reference: dict, optimiser,
          rows: pl.DataFrame, start: int, settings: ReasonTrainSettings) -> dict[str, float]:
    docs = [DocInput(entity, text) for entity, text in zip(rows["entity"], rows["text"],
                                                          strict=True)]
    with parametrize.cached():   # the deltas are fixed while sampling: merge them once
        batch = sample(engine, docs, settings)
    completion_mask = batch.mask[:, batch.prompt_length:]
    labels = [label for label in rows["label"] for _ in range(settings.group)]
    parts = [reward(text, done, label, int(n), settings) for text, done, label, n in
             zip(batch.texts, batch.finished, labels, completion_mask.sum(1), strict=True)]
    rewards = torch.tensor([p["reward"] for p in parts]).view(len(docs), settings.group)
    policy, fixed = completion_logprobs(engine.model, start, batch, deltas, reference)
    loss, kl = grpo_loss(policy, fixed, completion_mask,
                         group_advantages(rewards, REASON_EPS), settings.kl)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    return _mean(parts) | {"kl": float(kl)}


def _mean(entries: list[dict[str, float]]) -> dict[str, float]:
    return {key: sum(e[key] for e in entries) / len(entries) for key in entries[0]}


def _summary(step: int, recent: list[dict], seconds: float) -> str:
    mean = _mean(recent)
    return (f"step {step}: reward {mean['reward']:+.3f}, valid JSON {mean['format']:.2f}, "
            f"correct {mean['accuracy']:.2f}, length {mean['length']:.2f} of the cap, "
            f"KL {mean['kl']:.4f}, {seconds / 60:.1f} min")


def _windows(history: list[dict], size: int) -> list[dict]:
    """The history averaged over consecutive windows of `size` steps (what the report keeps)."""
    out = []
    for first in range(0, len(history), size):
        window = history[first:first + size]
        out.append({"steps": f"{first + 1}-{first + len(window)}"} | {
            k: round(v, 4) for k, v in _mean(window).items()})
    return out


def train_reason_adapter(adapter: str, train_files: list[str], text_col: str,
                         label_cols: list[str], out: str, settings: ReasonTrainSettings,
                         base: str = "default", cache_dir=None, names=None, command: str = "",
                         log: Log = print) -> dict:
    """Load `base` in fp32 with `adapter`, train reason mode on the files, and write a copy
    of the adapter with the reason deltas added to `out` (score mode reads it unchanged)."""
    train = read_training_files(train_files, text_col, label_cols)
    train = train.filter(pl.col("text").str.strip_chars().str.len_chars() > 0)
    source = adapters.read(adapter_path(adapter))
    loaded = load(base, "fp32", cache_dir=cache_dir, names=names, adapter=adapter)
    rank, alpha = source.meta["rank"], source.meta["alpha"]  # one scale for every delta
    log(f"reason training on {train.height} documents, {settings.minutes:g} minutes at most")
    tensors, report = reason_train(loaded, train, settings, rank, alpha, log)
    clash = set(tensors) & set(source.tensors)
    if clash:
        raise ModelError(f"{adapter} already trains {sorted(clash)[0]}: start the reason "
                         "band above its layers (--start)")
    kept = {k: v for k, v in source.meta.items() if k not in ("sha256", "format", "command")}
    meta = kept | {"name": Path(out).name, "reasoning": report | {
        "from_adapter": source.meta.get("name", str(adapter)), "command": command,
        "train_files": {f: int(train.filter(pl.col("source") == f).height)
                        for f in train_files}}}
    return adapters.save(Path(out), source.tensors | tensors, meta).meta
