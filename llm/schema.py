"""The signal contract: what a model emits about one (document, ticker), validated.

`SignalFields` is what the model decides; `ReasonOutput` is the bounded JSON the reason mode
generates under a grammar (integer percentages and a short rationale, because a grammar
bounds the shape of a number but not its length); provenance is added by `quant.text.scoring`.
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

TICKER_MAX = 12


class EventType(str, Enum):
    earnings = "earnings"
    guidance = "guidance"
    mna = "mna"
    legal_regulatory = "legal_regulatory"
    product = "product"
    management = "management"
    analyst = "analyst"
    macro = "macro"
    capital_return = "capital_return"
    other = "other"


def signal_ticker(entity: str) -> str:
    """The ticker field for a document about `entity`. A prompt names whatever entity the
    caller gave (evaluation passes company names such as "European shares"); the signal's
    ticker takes it only when it fits, else "-"."""
    return entity if 0 < len(entity) <= TICKER_MAX else "-"


class SignalFields(BaseModel):
    """A validated signal about one ticker in one document."""

    model_config = ConfigDict(extra="forbid")

    ticker: str = Field(min_length=1, max_length=TICKER_MAX)
    sentiment: float = Field(ge=-1, le=1)
    confidence: float = Field(ge=0, le=1)
    event_type: EventType
    horizon_days: int = Field(ge=1, le=60)
    rationale: str = Field(max_length=400)


class ReasonOutput(BaseModel):
    """The JSON object the reason mode writes (bounded so decoding always ends)."""

    model_config = ConfigDict(extra="forbid")

    sentiment: int = Field(ge=-100, le=100, description="percent, -100 bearish .. 100 bullish")
    confidence: int = Field(ge=0, le=100, description="percent")
    event_type: EventType
    horizon_days: int = Field(ge=1, le=60)
    rationale: str = Field(max_length=160)

    def to_fields(self, ticker: str) -> SignalFields:
        return SignalFields(ticker=ticker, sentiment=self.sentiment / 100,
                            confidence=self.confidence / 100, event_type=self.event_type,
                            horizon_days=self.horizon_days, rationale=self.rationale)


def reason_json_schema() -> dict:
    """JSON schema of `ReasonOutput`, flattened (no $refs) for the grammar compiler."""
    schema = ReasonOutput.model_json_schema()
    enum = schema.pop("$defs")["EventType"]
    schema["properties"]["event_type"] = {"type": "string", "enum": enum["enum"]}
    for prop in schema["properties"].values():
        prop.pop("title", None)
        prop.pop("description", None)
    schema.pop("title", None)
    schema["additionalProperties"] = False
    return schema
