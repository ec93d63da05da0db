import pytest

import llm
from llm.infer.engine import DocInput, Engine
from llm.schema import SignalFields

TEXTS = ["Apple beats earnings estimates; shares rise.",
         "Microsoft misses guidance, stock falls sharply after a weak quarter report.",
         "The company reported results in line with expectations.",
         "merger"]


@pytest.fixture(scope="module")
def engine(tiny_qwen):
    return Engine(llm.load(str(tiny_qwen), "fp32"), batch_size=4, min_label_mass=0.0)


def test_score_gives_valid_signals_with_bounds(engine):
    results = engine.score([DocInput("AAPL", t) for t in TEXTS])
    assert [r.status for r in results] == ["ok"] * 4
    for result in results:
        assert isinstance(result.fields, SignalFields)
        assert -1 <= result.fields.sentiment <= 1 and 0 <= result.fields.confidence <= 1
        assert abs(sum(result.probs.values()) - 1) < 1e-6
        assert result.fields.sentiment == pytest.approx(
            result.probs["bullish"] - result.probs["bearish"])
    assert engine.stats["docs_per_s"] > 0 and engine.stats["tokens"] > 0


def test_padding_and_batching_do_not_change_scores(tiny_qwen):
    loaded = llm.load(str(tiny_qwen), "fp32")
    batched = Engine(loaded, batch_size=4, min_label_mass=0.0).score(
        [DocInput("AAPL", t) for t in TEXTS])
    single = Engine(loaded, batch_size=1, min_label_mass=0.0).score(
        [DocInput("AAPL", t) for t in TEXTS])
    for a, b in zip(batched, single, strict=True):
        for label in a.probs:
            assert a.probs[label] == pytest.approx(b.probs[label], abs=1e-4)
        assert a.fields.event_type == b.fields.event_type


def test_a_token_budget_batches_short_documents_many_and_long_ones_few(tiny_qwen):
    """Each batch holds at most `batch_size` documents and at most the budget's tokens once
    padded to its longest (a longer document goes alone); every document once, shortest
    first; and the budget changes no score."""
    loaded = llm.load(str(tiny_qwen), "fp32")
    engine = Engine(loaded, batch_size=4, min_label_mass=0.0)
    texts = TEXTS + ["word " * n for n in (3, 40, 90, 7, 25)]
    built = engine._score_inputs([DocInput("AAPL", t) for t in texts])
    sizes = sorted(len(ids) for ids, *_ in built if ids is not None)
    engine.batch_tokens = 3 * sizes[2]   # three of the shortest fit, the longest goes alone
    batches = list(engine.batches(built, engine.batch_tokens))
    order = [i for batch in batches for i in batch]
    assert sorted(order) == [i for i, b in enumerate(built) if b[0] is not None]
    lengths = [len(built[i][0]) for i in order]
    assert lengths == sorted(lengths)
    for batch in batches:
        longest = max(len(built[i][0]) for i in batch)
        assert len(batch) <= 4 and (len(batch) * longest <= engine.batch_tokens
                                    or len(batch) == 1)
    assert any(len(b) == 1 for b in batches) and any(len(b) > 1 for b in batches)
    by_count = Engine(loaded, batch_size=4, batch_tokens=0, min_label_mass=0.0)
    assert list(by_count.batches(built)) == [order[i:i + 4] for i in range(0, len(order), 4)]
    docs = [DocInput("AAPL", t) for t in texts]
    for a, b in zip(engine.score(docs), by_count.score(docs), strict=True):
        for label in a.probs:
            assert a.probs[label] == pytest.approx(b.probs[label], abs=1e-4)


def test_failures_are_results_not_exceptions(tiny_qwen):
    engine = Engine(llm.load(str(tiny_qwen), "fp32"), max_input_tokens=400, min_label_mass=0.0)
    results = engine.score([DocInput("AAPL", ""), DocInput("AAPL", "word " * 2000),
                            DocInput("AAPL", "fine")])
    assert results[0].status == "failed" and "empty text" in results[0].reason
    assert results[1].status == "ok" and results[1].decoding["truncated"] is True
    assert results[2].status == "ok" and results[2].decoding["truncated"] is False
    tight = Engine(engine.loaded, max_input_tokens=10)  # not even the prompt fits
    assert tight.score([DocInput("AAPL", "x")])[0].status == "failed"


def test_abstain_when_the_model_puts_no_mass_on_labels(tiny_qwen):
    engine = Engine(llm.load(str(tiny_qwen), "fp32"), min_label_mass=0.9)
    result = engine.score([DocInput("AAPL", "anything")])[0]
    assert result.status == "abstain" and "label probability mass" in result.reason


def test_reason_mode_never_raises_and_reports_the_cap(tiny_qwen):
    engine = Engine(llm.load(str(tiny_qwen), "fp32"), max_new_tokens=12)
    results = engine.reason([DocInput("AAPL", t) for t in TEXTS[:2]])
    for result in results:
        assert result.status == "failed" and "token cap (12)" in result.reason
        assert result.decoding["new_tokens"] <= 12


def test_a_reasoned_signal_about_a_named_entity_keeps_the_ticker_field_valid(engine):
    """Evaluation names entities such as "European shares" (longer than a ticker): the
    answer is still a signal, its ticker "-", rather than an error that stops the batch."""
    from llm.infer.grammar import new_matcher
    from llm.infer.reason import _reason_result
    from llm.train.reason_cold_start import target_completion

    completion, _ = target_completion("bearish", "European shares", "Shares slide.", 80)
    tokens = engine.tokenizer(completion, add_special_tokens=False)["input_ids"]
    matcher = new_matcher(engine.tokenizer)
    assert all(matcher.consume_token(t) for t in tokens)
    for entity, ticker in (("European shares", "-"), ("AAPL", "AAPL"), ("", "-")):
        result = _reason_result(engine, DocInput(entity, "Shares slide."), tokens, matcher,
                                1.0, False)
        assert result.status == "ok" and result.fields.ticker == ticker
        assert result.fields.sentiment == -0.7


def test_contextual_calibration_divides_out_the_label_bias(tiny_qwen):
    loaded = llm.load(str(tiny_qwen), "fp32")
    plain = Engine(loaded, min_label_mass=0.0, calibrate=False)
    calibrated = Engine(loaded, min_label_mass=0.0)
    prior = calibrated.prior["sentiment"]
    assert set(prior) == {"bullish", "bearish", "neutral"}
    raw = plain.score([DocInput("AAPL", TEXTS[0])])[0].probs
    fixed = calibrated.score([DocInput("AAPL", TEXTS[0])])[0]
    expected = {k: raw[k] / prior[k] for k in raw}
    total = sum(expected.values())
    for label, value in expected.items():
        assert fixed.probs[label] == pytest.approx(value / total, rel=1e-4)
    assert fixed.decoding["calibrated"] is True


def test_a_runaway_think_block_is_cut_at_its_budget_and_the_json_still_comes(tiny_qwen):
    """The tiny random model never closes its <think> block: the budget cuts it, the block is
    closed, and the grammar still yields a valid signal whose rationale is the trace."""
    loaded = llm.load(str(tiny_qwen), "fp32")
    engine = Engine(loaded, think_tokens=6, max_new_tokens=400)
    results = engine.reason([DocInput("AAPL", t) for t in TEXTS[:2]])
    for result in results:
        assert result.status == "ok", result.reason
        assert isinstance(result.fields, SignalFields)
        assert result.decoding["think_tokens"] == 6
        assert 0 < result.decoding["thought_tokens"] <= 8  # re-encoded: a token or two of slack
        assert result.fields.rationale and "answer_rationale" in result.decoding
    assert engine.prompt_version("reason").endswith("-think6")
    assert Engine(loaded).prompt_version("reason") != engine.prompt_version("reason")


def test_an_entity_named_in_words_is_read_and_one_invalid_signal_fails_alone(engine,
                                                                          monkeypatch):
    # evaluation names companies, not tickers: the prompt reads the name, the signal's ticker
    # field (at most 12 characters) says there is none
    results = engine.score([DocInput("Financial Technologies", TEXTS[0]),
                            DocInput("AAPL", TEXTS[0])])
    assert [r.status for r in results] == ["ok", "ok"]
    assert results[0].fields.ticker == "-" and results[1].fields.ticker == "AAPL"
    assert results[0].probs != results[1].probs          # the entity is part of the prompt
    real = Engine._score_result

    def invalid_for_msft(self, doc, *args):
        if doc.ticker == "MSFT":
            raise ValueError("sentiment out of range")
        return real(self, doc, *args)

    monkeypatch.setattr(Engine, "_score_result", invalid_for_msft)
    results = engine.score([DocInput("AAPL", TEXTS[0]), DocInput("MSFT", TEXTS[1])])
    assert [r.status for r in results] == ["ok", "failed"]
    assert "invalid signal" in results[1].reason
