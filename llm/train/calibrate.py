"""Temperature scaling of an adapter's sentiment head (Guo et al., 2017).

Downstream, the head's probabilities are the signal's confidence, so they should mean what
they say. One temperature T divides the head's logits; it is fitted on the validation files
by minimising the negative log-likelihood of their labels, read on the inference path (the
engine in score mode, the same prompt and precision as scoring). Dividing the head's last
linear layer by T is the same as dividing its logits, so a calibrated adapter has the same
format and costs nothing more to run. ECE before and after is reported per file.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl

from llm.infer.evaluate import evaluate, sentiment_metrics
from llm.model import adapter as adapters

GRID = np.exp(np.linspace(math.log(0.25), math.log(4.0), 97))   # T from 1/4 to 4


def log_probs(engine, frame: pl.DataFrame) -> tuple[np.ndarray, dict]:
    """The head's log-probabilities on `frame` (LABELS order) and the file's metrics."""
    metrics = evaluate(engine, frame, with_probs=True)
    probs = metrics.pop("probs")
    return np.log(np.clip(probs, 1e-12, 1.0)), metrics


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def fit_temperature(logits: np.ndarray, truth: np.ndarray) -> float:
    """The T on `GRID` that minimises the mean NLL of `truth` (label indices)."""
    rows = np.arange(len(logits))
    return float(min(GRID, key=lambda t: -log_softmax(logits / t)[rows, truth].mean()))


def scaled(probs_log: np.ndarray, temperature: float) -> np.ndarray:
    return np.exp(log_softmax(probs_log / temperature))


def calibrate(engine, adapter_dir: str | Path, valid: dict[str, pl.DataFrame],
              out: str | Path | None = None) -> dict:
    """Fit T on `valid` (read with `engine`, which carries the adapter) and write the adapter
    with its head divided by T to `out` (in place by default); returns the report."""
    read = {name: log_probs(engine, frame) for name, frame in valid.items()}
    logits = np.concatenate([lp for lp, _ in read.values()])
    truth = np.concatenate([[adapters.LABELS.index(x) for x in frame["label"]]
                            for frame in valid.values()])
    temperature = fit_temperature(logits, truth)
    report = {"temperature": round(temperature, 4), "files": {}}
    for name, (lp, before) in read.items():
        after = sentiment_metrics(valid[name]["label"].to_list(), scaled(lp, temperature))
        # a temperature never changes the most likely label: accuracy and F1 stay
        report["files"][name] = {"n": before["n"], "accuracy": round(before["accuracy"], 4),
                                 "macro_f1": round(before["macro_f1"], 4),
                                 "weighted_f1": round(before["weighted_f1"], 4),
                                 "ece_before": round(before["ece"], 4),
                                 "ece_after": round(after["ece"], 4),
                                 "brier_after": round(after["brier"], 4)}
        if "multi_entity" in before:
            report["files"][name]["multi_entity"] = before["multi_entity"]
    found = adapters.read(adapter_dir)
    tensors = dict(found.tensors)
    for key in ("head.linear.weight", "head.linear.bias"):
        tensors[key] = tensors[key] / temperature
    meta = {k: v for k, v in found.meta.items() if k not in ("sha256", "format")}
    adapters.save(Path(out or adapter_dir), tensors, meta | {"calibration": report})
    return report
