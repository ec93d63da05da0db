"""Where the reader goes wrong: the model's accuracy on the rows that show a pattern of
financial language, beside its accuracy on the rest.

The patterns are those formal financial text leans on and a small model is known to misread:
a number compared with another ("rose to EUR 13.1 mn from EUR 8.7 mn"), a loss that narrowed
or widened (good and bad news in a negative word), hedged or forward-looking statements,
negation, percentages, and two entities set against each other in one headline. They are
found by regular expressions on the text alone, never on the label, so the same split applies
to any labelled file. For each: how many rows show it, the accuracy on them and on the rest,
and the share of its bullish and bearish rows read as neutral, the model's most common
mistake on formal text.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from llm.model.adapter import LABELS

PATTERNS = {
    "numeric_comparison": re.compile(
        r"\b(rose|fell|increased|decreased|grew|declined|dropped|climbed|jumped|slipped|"
        r"up|down)\b[^.]*\b(to|from)\b[^.]*\d|\bfrom\b[^.]*\d[^.]*\bto\b[^.]*\d", re.I),
    "loss_narrowed_or_widened": re.compile(
        r"\b(narrow|widen)\w*\b[^.]{0,40}\bloss|\bloss\w*\b[^.]{0,40}\b(narrow|widen)", re.I),
    "hedged_or_forward": re.compile(
        r"\b(may|might|could|expects?|expected|anticipat\w*|plans?|aims?|seeks?|likely|"
        r"outlook|guidance|forecast\w*|estimat\w*|intends?|will)\b", re.I),
    "negation": re.compile(r"\b(not|no|never|without|fail\w*|n't)\b", re.I),
    "percentage": re.compile(r"\d+(\.\d+)?\s?(%|per ?cent|pct)", re.I),
    "entity_contrast": re.compile(r"\b(while|whereas|but|however|versus|vs\.?|unlike)\b",
                                  re.I),
}


def pattern_metrics(frame: pl.DataFrame, probs: np.ndarray) -> list[dict]:
    """One row per pattern (and `multi_entity` where the frame says how many entities a
    headline names): n, accuracy with and without it, and the share of its non-neutral rows
    read as neutral. `probs` are the model's, in LABELS order, one row per frame row."""
    truth = np.array(frame["label"].to_list())
    predicted = np.array(LABELS)[probs.argmax(1)]
    right = predicted == truth
    masks = {name: np.array([bool(pattern.search(t or "")) for t in frame["text"]])
             for name, pattern in PATTERNS.items()}
    if "entities" in frame.columns:
        masks["multi_entity"] = (frame["entities"] > 1).to_numpy()
    rows = []
    for name, shown in masks.items():
        polar = shown & (truth != "neutral")
        rows.append({
            "pattern": name, "n": int(shown.sum()),
            "accuracy": _share(right[shown]), "accuracy_without": _share(right[~shown]),
            "polar_read_neutral": _share(predicted[polar] == "neutral"),
        })
    return rows


def _share(flags: np.ndarray) -> float | None:
    return round(float(flags.mean()), 4) if flags.size else None
