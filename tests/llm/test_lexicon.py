"""The Loughran-McDonald dictionary baseline: the lists it ships, the counting rules, and the
comparator `quant llm eval` reports beside the model."""

import polars as pl
import pytest

from llm import lexicon
from llm.infer.evaluate import dictionary_metrics


def test_the_shipped_lists_are_the_2018_master_dictionary():
    sizes = {name: len(words) for name, words in lexicon.word_lists().items()}
    assert sizes == {"positive": 354, "negative": 2355, "uncertainty": 297, "litigious": 904}
    lists = lexicon.word_lists()
    assert {"LOSS", "IMPAIRMENT"} <= lists["negative"] and "ACHIEVE" in lists["positive"]
    assert "LIABILITY" not in lists["negative"]   # the finance lists, not a general one


def test_words_are_matched_whole_and_negated_positives_do_not_count():
    counted = lexicon.counts("We achieved record growth, but the impairment caused a loss.")
    assert counted["words"] == 10
    assert counted["positive"] == pytest.approx(1 / 10)        # achieved
    assert counted["negative"] == pytest.approx(2 / 10)        # impairment, loss
    assert counted["tone"] == pytest.approx((1 - 2) / 3)
    assert lexicon.counts("Results were not good.")["positive"] == 0     # negated
    assert lexicon.counts("Good results, not bad.")["positive"] == 0.25  # negation precedes
    assert lexicon.counts("")["tone"] == 0 and lexicon.label(0.0) == "neutral"
    assert lexicon.counts("achievements")["positive"] == 1                # no stemming
    assert lexicon.counts("achievemen")["positive"] == 0


def test_the_dictionary_is_scored_on_the_same_rows_as_the_model():
    frame = pl.DataFrame({
        "text": ["Profit gains strongly", "Net loss widened on impairment", "Shares traded",
                 "Litigation losses mounted"],
        "label": ["bullish", "bearish", "neutral", "bearish"]})
    found = dictionary_metrics(frame)
    assert found["n"] == 4 and found["coverage"] == 0.75
    assert found["accuracy"] == 1.0 and found["weighted_f1"] == 1.0
    binary = pl.DataFrame({"text": ["Gains", "Losses", "Shares traded"],
                           "label": ["bullish", "bearish", "bullish"]})
    assert dictionary_metrics(binary)["accuracy"] == pytest.approx(2 / 3)  # a tie: bearish
