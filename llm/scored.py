"""What the engine takes and gives: a document to read and the result of reading it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from llm.schema import SignalFields

Progress = Callable[[int], None]   # called with how many documents were just done


@dataclass
class DocInput:
    ticker: str
    text: str


@dataclass
class Scored:
    status: str                         # ok | abstain | failed
    fields: SignalFields | None = None
    reason: str | None = None
    latency_ms: float = 0.0
    tokens: int = 0
    probs: dict[str, float] = field(default_factory=dict)
    decoding: dict = field(default_factory=dict)
