import numpy as np
import polars as pl
import pytest

import llm
from llm.errors import ModelError
from llm.infer.engine import Engine
from llm.infer.error_patterns import pattern_metrics
from llm.infer.evaluate import classification_metrics, evaluate, read_labelled


def test_metrics_on_a_known_case():
    truth = ["bullish", "bullish", "bearish", "neutral"]
    predicted = ["bullish", "bearish", "bearish", "neutral"]
    probs = np.array([[0.1, 0.1, 0.8], [0.6, 0.2, 0.2], [0.7, 0.2, 0.1], [0.2, 0.6, 0.2]])
    m = classification_metrics(truth, predicted, probs, ("bearish", "neutral", "bullish"))
    assert m["accuracy"] == 0.75
    assert m["f1_by_class"] == {"bearish": pytest.approx(0.6667, abs=1e-4), "neutral": 1.0,
                                "bullish": pytest.approx(0.6667, abs=1e-4)}
    assert m["macro_f1"] == pytest.approx(7 / 9)
    assert m["confusion"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    expected_brier = np.mean([0.01 + 0.01 + 0.04, 0.36 + 0.04 + 0.64, 0.09 + 0.04 + 0.01,
                              0.04 + 0.16 + 0.04])
    assert m["brier"] == pytest.approx(expected_brier)
    assert 0 <= m["ece"] <= 1


def test_labels_are_mapped_and_unknown_ones_refused(tmp_path):
    path = tmp_path / "l.csv"
    pl.DataFrame({"t": ["a", "b", "c"], "y": ["Positive", "negative", "NEUTRAL"]}).write_csv(path)
    assert read_labelled(path, "t", "y")["label"].to_list() == ["bullish", "bearish", "neutral"]
    pl.DataFrame({"t": ["a"], "y": ["meh"]}).write_csv(path)
    with pytest.raises(ModelError, match="labels are not"):
        read_labelled(path, "t", "y")
    with pytest.raises(ModelError, match="no column"):
        read_labelled(path, "text", "y")


def test_evaluate_runs_end_to_end_on_the_tiny_model(tiny_qwen):
    frame = pl.DataFrame({"text": ["up", "down", "flat", "up again"],
                          "label": ["bullish", "bearish", "neutral", "bullish"]})
    metrics = evaluate(Engine(llm.load(str(tiny_qwen), "fp32"), min_label_mass=0.0), frame)
    assert metrics["n"] == 4 and sum(map(sum, metrics["confusion"])) == 4
    assert metrics["docs_per_s"] > 0


def test_an_empty_file_or_a_zero_limit_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ModelError, match="cannot read a labelled table|no rows"):
        read_labelled(empty, "text", "label")
    (tmp_path / "head.csv").write_text("text,label\n")
    with pytest.raises(ModelError, match="no rows to evaluate on"):
        read_labelled(tmp_path / "head.csv", "text", "label")
    with pytest.raises(ModelError, match="--limit must be at least 1"):
        read_labelled(tmp_path / "head.csv", "text", "label", limit=0)


def test_errors_are_split_by_the_patterns_of_the_text():
    frame = pl.DataFrame({
        "text": ["Operating profit rose to EUR 13.1 mn from EUR 8.7 mn",
                 "The company narrowed its net loss in the quarter",
                 "Sales grew 12% on strong demand",
                 "Shares were flat",
                 "Revenue may fall next year"],
        "label": ["bullish", "bullish", "bullish", "neutral", "bearish"],
        "entities": [1, 1, 1, 1, 2]})
    neutral, bullish, bearish = [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]
    probs = np.array([neutral, neutral, bullish, neutral, bearish])  # LABELS order
    by_name = {row["pattern"]: row for row in pattern_metrics(frame, probs)}
    numeric = by_name["numeric_comparison"]
    assert numeric["n"] == 1 and numeric["accuracy"] == 0.0
    assert numeric["accuracy_without"] == 0.75 and numeric["polar_read_neutral"] == 1.0
    assert by_name["loss_narrowed_or_widened"]["n"] == 1
    assert by_name["percentage"] == {"pattern": "percentage", "n": 1, "accuracy": 1.0,
                                     "accuracy_without": 0.5, "polar_read_neutral": 0.0}
    assert by_name["hedged_or_forward"]["n"] == 1
    assert by_name["multi_entity"]["n"] == 1 and by_name["multi_entity"]["accuracy"] == 1.0
    assert by_name["entity_contrast"] == {"pattern": "entity_contrast", "n": 0,
                                          "accuracy": None, "accuracy_without": 0.6,
                                          "polar_read_neutral": None}
