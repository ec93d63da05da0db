"""The registry: strategies by name, the built-ins first; `register` adds a researcher's own."""

from __future__ import annotations

from strategies.base import Strategy
from strategies.builtin import BUILTIN

REGISTRY: dict[str, Strategy] = {strategy.name: strategy for strategy in BUILTIN}


def register(strategy: Strategy) -> Strategy:
    if not isinstance(strategy, Strategy):
        raise TypeError(f"{strategy!r} does not implement the Strategy protocol")
    REGISTRY[strategy.name] = strategy
    return strategy


def get_strategy(name: str) -> Strategy:
    if name not in REGISTRY:
        raise KeyError(f"unknown strategy {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]
