"""Where a base model reads sentiment best: a linear probe at each of a few layers.

The documents run once through the frozen base in the score-mode prompt, exactly as
fine-tuning lays them out (`llm.train.finetune.batches`, the shared opening); at each asked
layer the document tokens' mean (what the sentiment head pools) is kept, a logistic regression
is fitted on the training sample and scored on each validation file. The best layer is where a
head goes (`quant llm finetune --layers START:STOP`, the head reading layer STOP's input); two
bases need not have it at the same relative depth.
"""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import torch

from llm.errors import ModelError
from llm.infer.evaluate import sentiment_metrics
from llm.infer.prefix import SharedPrefix
from llm.model import adapter as adapters
from llm.model.loaded import LoadedModel
from llm.settings import FinetuneSettings, Log
from llm.train.finetune import batches, goal_metric, pooled, prompt_prefix


def pooled_by_layer(loaded: LoadedModel, frame: pl.DataFrame, layers: list[int],
                    settings: FinetuneSettings) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """({layer: (rows, hidden) mean-pooled document states entering that layer}, labels), in
    the frame's row order; layer L is the input of layer L (the output of layer L - 1)."""
    runner = SharedPrefix(loaded.model, prompt_prefix(loaded.tokenizer), frozen=True)
    wanted = sorted(set(layers))
    kept = {layer: [] for layer in wanted}
    rows, labels = [], []
    with torch.no_grad():
        for batch in batches(loaded.tokenizer, frame, settings):
            hidden, at = runner.embed(batch.ids), 0
            for layer in wanted:
                hidden, at = runner.run(hidden, at, layer), layer
                kept[layer].append(pooled(hidden, batch.mask).float())
            rows += batch.rows
            labels.append(batch.labels)
    order = np.argsort(rows)
    return ({layer: torch.cat(parts).numpy()[order] for layer, parts in kept.items()},
            torch.cat(labels).numpy()[order])


def probe(loaded: LoadedModel, train: pl.DataFrame, valid: dict[str, pl.DataFrame],
          layers: list[int], settings: FinetuneSettings | None = None,
          log: Log = print) -> dict:
    """Per layer, the probe's goal metric on each validation file (weighted F1 on three
    classes, accuracy on two) and their mean; `best` is the layer with the highest mean."""
    from sklearn.linear_model import LogisticRegression  # only when a probe runs
    from sklearn.preprocessing import StandardScaler

    n_layers = len(adapters.decoder_layers(loaded.model))
    if not layers or not all(1 <= layer <= n_layers for layer in layers):
        raise ModelError(f"probe layers must lie in 1..{n_layers} (the model's layers), not "
                         f"{layers}")
    settings = settings or FinetuneSettings()
    began = time.perf_counter()
    x_train, y_train = pooled_by_layer(loaded, train, layers, settings)
    x_valid = {name: pooled_by_layer(loaded, frame, layers, settings)
               for name, frame in valid.items()}
    log(f"pooled {train.height + sum(f.height for f in valid.values())} documents at layers "
        f"{sorted(set(layers))} in {time.perf_counter() - began:.0f} s")
    table = {}
    for layer in sorted(set(layers)):
        scaler = StandardScaler().fit(x_train[layer])
        fitted = LogisticRegression(max_iter=2000, C=0.1, class_weight="balanced").fit(
            scaler.transform(x_train[layer]), y_train)
        scores = {}
        for name, (x, y) in x_valid.items():
            probs = np.zeros((len(y), len(adapters.LABELS)))
            probs[:, fitted.classes_] = fitted.predict_proba(scaler.transform(x[layer]))
            scores[name] = round(goal_metric(sentiment_metrics(
                [adapters.LABELS[i] for i in y], probs)), 4)
        table[layer] = {"files": scores, "mean": round(float(np.mean(list(scores.values()))), 4)}
        log(f"layer {layer}: " + ", ".join(f"{n} {v:.4f}" for n, v in scores.items())
            + f", mean {table[layer]['mean']:.4f}")
    best = max(table, key=lambda layer: table[layer]["mean"])
    return {"layers": table, "best": best, "seconds": round(time.perf_counter() - began, 1)}
