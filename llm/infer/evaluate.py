"""How well a model reads sentiment, on any labelled file: accuracy, macro/weighted F1, the
confusion matrix, and calibration (Brier score, expected calibration error).

Labels bullish/bearish/neutral or positive/negative/neutral (any case) are mapped to ours. On a
two-class file the prediction is bullish vs bearish only; on three classes, the most likely label.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import polars as pl

from llm import lexicon
from llm.errors import ModelError
from llm.infer.engine import DocInput, Engine
from llm.infer.error_patterns import pattern_metrics
from llm.model.adapter import LABELS

_LABEL_MAP = {"bullish": "bullish", "positive": "bullish", "bearish": "bearish",
              "negative": "bearish", "neutral": "neutral", "1": "bullish", "0": "bearish",
              "2": "neutral"}


def read_labelled(path: str | Path, text_col: str, label_col: str,
                  limit: int | None = None, seed: int = 0) -> pl.DataFrame:
    path = Path(path)
    if not path.exists():
        raise ModelError(f"no such evaluation file: {path}")
    if limit is not None and limit < 1:
        raise ModelError(f"--limit must be at least 1, not {limit}")
    try:
        frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path)
    except Exception as exc:  # polars raises many types for empty or malformed files
        raise ModelError(f"{path}: cannot read a labelled table ({exc})") from None
    if frame.is_empty():
        raise ModelError(f"{path}: no rows to evaluate on")
    for column in (text_col, label_col):
        if column not in frame.columns:
            raise ModelError(f"{path}: no column {column!r} (columns: {frame.columns})")
    frame = frame.select(text=pl.col(text_col).cast(pl.String),
                         label=pl.col(label_col).cast(pl.String).str.to_lowercase()
                         .replace_strict(_LABEL_MAP, default=None),
                         entity=_entity(frame, text_col),
                         entities=(pl.col("entities_in_headline").cast(pl.Int64)
                                   if "entities_in_headline" in frame.columns
                                   else pl.lit(1, dtype=pl.Int64)))
    empty = frame.with_row_index("row", offset=1).filter(
        pl.col("text").is_null() | (pl.col("text").str.strip_chars() == ""))
    if empty.height:
        raise ModelError(f"{path}: {empty.height} rows have no text in column {text_col!r} "
                         f"(data rows {', '.join(map(str, empty['row'].head(5)))}"
                         f"{', ...' if empty.height > 5 else ''}); remove or fill them: an "
                         "evaluation reads every row")
    unknown = frame.filter(pl.col("label").is_null()).height
    if unknown:
        raise ModelError(f"{path}: {unknown} labels are not bullish/bearish/neutral or "
                         "positive/negative/neutral")
    if limit is not None and limit < frame.height:  # a stratified-enough random sample
        frame = frame.sample(limit, seed=seed, shuffle=True)
    return frame


def _entity(frame: pl.DataFrame, text_col: str) -> pl.Expr:
    """What a row's label is about: its `entity` (SEntFiN) or `ticker` column, else the
    first cashtag in its text, else "" (the prompt then says "the company")."""
    if "entity" in frame.columns or "ticker" in frame.columns:
        column = "entity" if "entity" in frame.columns else "ticker"
        return pl.col(column).cast(pl.String).fill_null("")
    return (pl.col(text_col).cast(pl.String).str.extract(r"\$([A-Za-z][A-Za-z.]{0,5})\b", 1)
            .str.to_uppercase().fill_null(""))


def classification_metrics(truth: list[str], predicted: list[str],
                           probs: np.ndarray | None, labels: tuple[str, ...]) -> dict:
    """Accuracy, per-class and averaged F1, confusion matrix; Brier and ECE given probs."""
    index = {label: i for i, label in enumerate(labels)}
    t = np.array([index[x] for x in truth])
    p = np.array([index[x] for x in predicted])
    k = len(labels)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (t, p), 1)
    f1s, supports = [], []
    for c in range(k):
        tp = confusion[c, c]
        precision = tp / confusion[:, c].sum() if confusion[:, c].sum() else 0.0
        recall = tp / confusion[c].sum() if confusion[c].sum() else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
        supports.append(confusion[c].sum())
    present = [c for c in range(k) if supports[c]]
    out = {
        "n": int(len(t)),
        "accuracy": float((t == p).mean()) if len(t) else 0.0,
        "macro_f1": float(np.mean([f1s[c] for c in present])) if present else 0.0,
        "weighted_f1": float(np.average(f1s, weights=supports)) if sum(supports) else 0.0,
        "f1_by_class": {labels[c]: round(float(f1s[c]), 4) for c in range(k)},
        "labels": list(labels),
        "confusion": confusion.tolist(),  # rows: truth, columns: predicted
    }
    if probs is not None and len(t):
        onehot = np.eye(k)[t]
        out["brier"] = float(((probs - onehot) ** 2).sum(1).mean())
        confidence = probs.max(1)
        correct = (probs.argmax(1) == t).astype(float)
        bins = np.minimum((confidence * 10).astype(int), 9)
        out["ece"] = float(sum(abs(correct[bins == b].mean() - confidence[bins == b].mean())
                               * (bins == b).mean() for b in range(10) if (bins == b).any()))
    return out


def sentiment_metrics(truth: list[str], probs: np.ndarray) -> dict:
    """Metrics from (n, 3) probabilities in LABELS order; where the truth has no neutral
    label the prediction is bullish vs bearish only (the two renormalised)."""
    labels = LABELS if "neutral" in set(truth) else ("bearish", "bullish")
    p = probs[:, [LABELS.index(label) for label in labels]]
    total = p.sum(1, keepdims=True)
    p = p / np.where(total > 0, total, 1.0)
    predicted = [labels[i] for i in p.argmax(1)]
    return classification_metrics(truth, predicted, p, labels)


def evaluate(engine: Engine, frame: pl.DataFrame, mode: str = "score",
             with_probs: bool = False) -> dict:
    """Run the model on `frame` (text, label; entity when it has one) and compute the
    metrics; `with_probs` adds each row's probabilities in LABELS order ("probs")."""
    entities = frame["entity"] if "entity" in frame.columns else [""] * frame.height
    docs = [DocInput(entity, text) for entity, text in zip(entities, frame["text"],
                                                           strict=True)]
    started = time.perf_counter()
    results = engine.score(docs) if mode == "score" else engine.reason(docs)
    seconds = time.perf_counter() - started
    # A document that was not scored is counted, and scored as chance.
    probs = np.array([[r.probs.get(label, 0.0) for label in LABELS] if r.status == "ok"
                      else [1 / len(LABELS)] * len(LABELS) for r in results])
    failed = sum(r.status != "ok" for r in results)
    metrics = sentiment_metrics(frame["label"].to_list(), probs)
    if "entities" in frame.columns and (frame["entities"] > 1).any():
        # headlines naming several entities, each row about one of them: the hard cases
        multi = (frame["entities"] > 1).to_numpy()
        subset = sentiment_metrics(frame["label"].filter(multi).to_list(), probs[multi])
        metrics["multi_entity"] = {k: subset[k] for k in ("n", "accuracy", "weighted_f1")}
    metrics |= {"mode": mode, "not_ok": failed, "seconds": round(seconds, 2),
                "docs_per_s": round(len(docs) / seconds, 2) if seconds else None,
                "model_id": engine.loaded.model_id, "fingerprint": engine.loaded.fingerprint}
    metrics["patterns"] = pattern_metrics(frame, probs)
    metrics["dictionary"] = dictionary_metrics(frame)
    metrics["above_dictionary"] = round(metrics["weighted_f1"]
                                        - metrics["dictionary"]["weighted_f1"], 4)
    if with_probs:
        metrics["probs"] = probs
    return metrics


def dictionary_metrics(frame: pl.DataFrame) -> dict:
    """The Loughran-McDonald dictionary's reading of the same rows (`llm.lexicon`): n,
    accuracy, weighted F1 and coverage (the share of texts with a positive or negative word).
    A text without net tone is neutral; where the labels have no neutral it is a tie, which
    falls to bearish."""
    found = [lexicon.counts(t) for t in frame["text"]]
    as_probs = {"bearish": (1.0, 0.0, 0.0), "neutral": (0.25, 0.5, 0.25),  # LABELS' order
                "bullish": (0.0, 0.0, 1.0)}
    probs = np.array([as_probs[lexicon.label(c["tone"])] for c in found])
    metrics = sentiment_metrics(frame["label"].to_list(), probs)
    covered = sum(c["positive"] + c["negative"] > 0 for c in found)
    return {"n": metrics["n"], "accuracy": metrics["accuracy"],
            "weighted_f1": metrics["weighted_f1"],
            "coverage": round(covered / max(frame.height, 1), 4)}
