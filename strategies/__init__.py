"""The strategy library: small classes behind one protocol, listed in an explicit registry."""

from strategies.base import REGISTRY, Strategy, get_strategy, register

__all__ = ["REGISTRY", "Strategy", "get_strategy", "register"]
