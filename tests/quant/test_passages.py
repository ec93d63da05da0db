"""Passages: never cut inside a sentence, cover the text; the aggregate of known scores."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data.text import sentences
from quant.text.passages import PassageScore, aggregate, split


def words(texts):
    return [len(t.split()) for t in texts]


TEXT = ("Revenue rose 12% to $4.1 billion. Margins fell. The U.S. Government is a customer of "
        "Apple Inc. and others!\n\nRisk factors follow. \"We may lose money.\" Costs rose (as "
        "expected). No. 5 is a plant.")


def test_sentences_end_at_full_stops_and_paragraphs_not_at_abbreviations():
    got = [TEXT[a:b] for a, b in sentences(TEXT)]
    assert got == ["Revenue rose 12% to $4.1 billion.", "Margins fell.",
                   "The U.S. Government is a customer of Apple Inc. and others!",
                   "Risk factors follow.", "\"We may lose money.\"",
                   "Costs rose (as expected).", "No. 5 is a plant."]


def _covers(text, spans):
    """Every character outside the spans is white space, and the spans are in order."""
    assert all(a < b <= c for (a, b), (c, _) in zip(spans, spans[1:], strict=False))
    rest = list(text)
    for a, b in spans:
        rest[a:b] = [" "] * (b - a)
    assert "".join(rest).strip() == ""


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["Sales rose.", "Costs fell sharply in Europe.", "\n",
                                 "The U.S. unit lost money.", "See Note 7.", "Why?", " ",
                                 "word " * 30 + "end."]), max_size=40),
       st.integers(5, 60))
def test_passages_cover_the_text_and_cut_only_between_sentences(parts, budget):
    text = " ".join(parts)
    passages = split(text, budget, words)
    _covers(text, passages)
    ends = {b for _, b in sentences(text)}
    long_sentence = {b for a, b in sentences(text) if len(text[a:b].split()) > budget}
    for a, b in passages:
        assert len(text[a:b].split()) <= budget + 1
        # whole sentences only, unless one sentence alone is over the budget
        assert b in ends or any(a2 <= b <= b2 for a2, b2 in sentences(text)
                                if b2 in long_sentence), (text[a:b], budget)


def test_a_sentence_longer_than_a_passage_is_cut_at_spaces():
    text = " ".join(f"w{i}" for i in range(100)) + "."
    passages = split(text, 30, words)
    _covers(text, passages)
    assert len(passages) >= 4
    assert all(re.fullmatch(r"\S.*\S", text[a:b]) for a, b in passages)
    assert all(text[b] == " " for _, b in passages[:-1])  # at spaces, never inside a word


def test_the_aggregate_of_known_passage_scores():
    text = "a" * 100
    scores = [PassageScore(0, 10, "ok", 0.5, 1.0, 100), PassageScore(10, 20, "ok", -1.0, 0.5, 100),
              PassageScore(20, 30, "failed", None, None, 0),
              PassageScore(30, 40, "ok", 0.0, 0.0, 200)]
    total = aggregate(scores, text, keep=1)
    # tone: (1*0.5*100 + 0.5*-1*100 + 0) / (1*100 + 0.5*100 + 0) = 0; confidence 150 / 400
    assert total.status == "ok"
    assert total.sentiment == pytest.approx(0.0)
    assert total.confidence == pytest.approx(150 / 400)
    assert total.details == {"passages": 4, "passages_ok": 3, "share_positive": 1 / 3,
                             "share_negative": 1 / 3}
    assert total.rationale.startswith("[10:20] ")  # the most negative passage, with offsets
    failed = aggregate([PassageScore(0, 5, "failed", None, None, 0)], text)
    assert failed.status == "failed" and failed.sentiment is None
