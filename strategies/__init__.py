"""The strategy library: small classes behind one protocol, listed in an explicit registry."""

from strategies.base import Strategy
from strategies.registry import REGISTRY, get_strategy, register

__all__ = ["REGISTRY", "Strategy", "get_strategy", "register"]
