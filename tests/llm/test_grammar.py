import json

import pytest

from llm.infer.grammar import allowed_tokens, new_matcher, reason_grammar
from llm.schema import ReasonOutput, reason_json_schema
from tests.llm.tiny import train_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer()


def consume(tokenizer, text: str) -> tuple[bool, bool]:
    """(every token accepted, grammar complete) for `text`."""
    matcher = new_matcher(tokenizer)
    for token in tokenizer(text, add_special_tokens=False)["input_ids"]:
        if not allowed_tokens(matcher, len(tokenizer))[token]:
            return False, False
        matcher.consume_token(token)
    return True, matcher.is_accepting()


def test_schema_is_flat_and_bounded():
    schema = reason_json_schema()
    assert "$defs" not in json.dumps(schema) and schema["additionalProperties"] is False
    assert schema["properties"]["sentiment"]["minimum"] == -100
    assert schema["properties"]["rationale"]["maxLength"] == 160
    assert "Reasoning" not in reason_grammar() and "%json" in reason_grammar()


def test_valid_output_is_accepted_and_parses(tokenizer):
    payload = {"sentiment": -40, "confidence": 70, "event_type": "earnings",
               "horizon_days": 5, "rationale": "Missed estimates."}
    text = " Weak quarter.\nJSON: " + json.dumps(payload, separators=(",", ":"))
    accepted, complete = consume(tokenizer, text)
    assert accepted and complete
    assert ReasonOutput.model_validate_json(json.dumps(payload)).to_fields("X").sentiment == -0.4


@pytest.mark.parametrize("bad", [
    '{"sentiment": 101, "confidence": 1, "event_type": "earnings", "horizon_days": 5, '
    '"rationale": "x"}',
    '{"sentiment": 5, "confidence": 1, "event_type": "weather", "horizon_days": 5, '
    '"rationale": "x"}',
    '{"sentiment": 5, "confidence": 1, "event_type": "earnings", "horizon_days": 61, '
    '"rationale": "x"}',
    '{"sentiment": 5, "confidence": 1, "event_type": "earnings", "horizon_days": 5, '
    '"rationale": "x", "extra": 1}',
])
def test_out_of_schema_output_is_masked(tokenizer, bad):
    accepted, complete = consume(tokenizer, " ok\nJSON: " + bad)
    assert not (accepted and complete)


def test_reasoning_is_one_bounded_line(tokenizer):
    accepted, _ = consume(tokenizer, " line one\nline two")
    assert not accepted
    accepted, _ = consume(tokenizer, " " + "x" * 300)
    assert not accepted
