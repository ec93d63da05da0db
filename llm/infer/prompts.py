"""Prompts, versioned by their own text: change a word and the version changes, so signals
from an old prompt are never mistaken for the new one's (the version is part of a signal's key).
"""

from __future__ import annotations

import hashlib

from llm.schema import EventType

SYSTEM = ("You are a financial analyst. You read one news item or filing excerpt and judge "
          "its likely effect on one company's stock price.")

SCORE_USER = ("Company ticker: {ticker}\nText: {text}\n\nClassify the event type and whether "
              "the text is bullish, bearish or neutral for {ticker}.")
SCORE_EVENT_CUE = "Event type:"
SCORE_SENTIMENT_CUE = "\nSentiment:"
# Read at the cue; the first token of each word is what the model is scored on.
SENTIMENT_WORDS = {"bullish": " bullish", "bearish": " bearish", "neutral": " neutral"}
EVENT_WORDS = {
    EventType.earnings: " earnings", EventType.guidance: " guidance", EventType.mna: " merger",
    EventType.legal_regulatory: " legal", EventType.product: " product",
    EventType.management: " management", EventType.analyst: " analyst",
    EventType.macro: " macro", EventType.capital_return: " dividend", EventType.other: " other",
}
SCORE_HORIZON_DAYS = 5  # score mode reads no horizon; this is the documented default
# Content-free inputs for contextual calibration of score mode (the model's label bias).
CONTENT_FREE = ("N/A", "", "[MASK]", "The company issued a statement.")

REASON_USER = (
    "Company ticker: {ticker}\nText: {text}\n\n"
    "First write one short sentence of reasoning after 'Reasoning:'. Then write 'JSON:' and a "
    "JSON object with: sentiment (integer percent, -100 very bearish to 100 very bullish), "
    "confidence (integer percent 0-100), event_type (one of: "
    + ", ".join(e.value for e in EventType) + "), horizon_days (1-60), rationale (short).")
REASON_PREFIX = "Reasoning:"
# A thinking model (Qwen3, R1 distillations) thinks inside these tags before it answers.
THINK_OPEN, THINK_END = "<think>\n", "</think>"
THINK_CLOSE = "\n</think>\n\n"
JSON_PREFIX = "JSON: "

# A model without a chat template gets this plain layout.
PLAIN = "### System\n{system}\n\n### User\n{user}\n\n### Assistant\n"


def _version(kind: str, *parts: object) -> str:
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()[:8]
    return f"{kind}-{digest}"


SCORE_VERSION = _version("score", SYSTEM, SCORE_USER, SCORE_EVENT_CUE, SCORE_SENTIMENT_CUE,
                         SENTIMENT_WORDS, {k.value: v for k, v in EVENT_WORDS.items()}, PLAIN,
                         CONTENT_FREE, "calibrated")
REASON_VERSION = _version("reason", SYSTEM, REASON_USER, REASON_PREFIX, PLAIN, "compact JSON")


# Score mode that stops at the sentiment head's layer reads no event type: its signals are
# kept apart from those of the full pass, which does.
SCORE_HEAD_VERSION = _version("score-head", SCORE_VERSION)


def prompt_version(mode: str, events: bool = True, think_tokens: int = 0) -> str:
    if mode != "score":
        return f"{REASON_VERSION}-think{think_tokens}" if think_tokens else REASON_VERSION
    return SCORE_VERSION if events else SCORE_HEAD_VERSION


BODY_MARK = "\x00BODY\x00"  # where the document goes while a prompt is laid out
TICKER_MARK = "\x00TICKER\x00"


def normalise(text: str | None) -> str:
    """A document's text as every prompt carries it: whitespace runs become one space (a
    missing text is an empty one)."""
    return " ".join((text or "").split())


def around_document(tokenizer, user: str, ticker: str) -> tuple[str, str]:
    """The prompt text before and after the document, for a user template and a ticker."""
    head, tail = chat(tokenizer, user.format(ticker=ticker or "the company",
                                             text=BODY_MARK)).split(BODY_MARK)
    return head, tail


def opening(tokenizer, user: str) -> str:
    """The prompt text before the ticker: the same for every document, so its keys and values
    are computed once per run (llm/infer/prefix.py)."""
    head, _ = around_document(tokenizer, user, TICKER_MARK)
    # The space before the ticker stays with it: " AAPL" is one token, " " + "AAPL" are two.
    return head.split(TICKER_MARK)[0].rstrip(" ")


def chat(tokenizer, user: str) -> str:
    """The conversation up to where the assistant starts answering."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
            tokenize=False, add_generation_prompt=True)
    return _bos(tokenizer) + PLAIN.format(system=SYSTEM, user=user)


def _bos(tokenizer) -> str:
    """The beginning-of-sequence token, as text, for a tokenizer that starts every text with
    one (Gemma reads badly without it): prompts are encoded without special tokens, so the
    layout carries it. Empty for the others."""
    bos = getattr(tokenizer, "bos_token_id", None)
    starts = tokenizer("a")["input_ids"][:1] if bos is not None else []
    return tokenizer.bos_token if starts == [bos] else ""
