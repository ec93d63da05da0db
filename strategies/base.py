"""The `Strategy` protocol and the registry.

A strategy turns the daily panel (polars: ticker, session, sentiment columns, prices,
`in_universe`, ...) into target weights per (session, ticker). A weight at a session is the
position to hold from that session's open: the panel's decision time. A null weight means "no
order, keep what you hold"; a ticker absent on a session is the same as null.

To add one: write a module with a class like those below and register it:

    from strategies import register
    register(MyStrategy())
"""

from __future__ import annotations

import itertools
from typing import Any, Protocol, runtime_checkable

import polars as pl


@runtime_checkable
class Strategy(Protocol):
    name: str
    description: str
    defaults: dict[str, Any]
    grid: dict[str, list[Any]]

    def weights(self, panel: pl.DataFrame, **params: Any) -> pl.DataFrame:
        """Columns session, ticker, weight (null = hold)."""
        ...


def combinations(strategy: Strategy) -> list[dict[str, Any]]:
    """Every point of the strategy's grid, defaults filling what the grid leaves out."""
    keys = list(strategy.grid)
    return [{**strategy.defaults, **dict(zip(keys, values, strict=True))}
            for values in itertools.product(*(strategy.grid[k] for k in keys))]


def check_params(strategy: Strategy, params: dict[str, Any]) -> dict[str, Any]:
    """Defaults plus overrides; an unknown name, a value of the wrong kind or one outside the
    strategy's declared `bounds` ({name: (low, high)}, inclusive) is an error that says so."""
    unknown = set(params) - set(strategy.defaults)
    if unknown:
        raise ValueError(f"{strategy.name} has no parameter {sorted(unknown)[0]!r}; "
                         f"its parameters: {', '.join(sorted(strategy.defaults))}")
    chosen = {**strategy.defaults, **params}
    for name, value in chosen.items():
        default = strategy.defaults[name]
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        if numeric and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{strategy.name}: {name} must be a number, not {value!r}")
        if isinstance(default, int) and numeric and not isinstance(default, bool) and (
                isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"{strategy.name}: {name} must be a whole number, not {value!r}")
        low, high = getattr(strategy, "bounds", {}).get(name, (None, None))
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"{strategy.name}: {name} = {value!r} is outside its range "
                             f"{low} .. {high}")
    return chosen


REGISTRY: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    if not isinstance(strategy, Strategy):
        raise TypeError(f"{strategy!r} does not implement the Strategy protocol")
    REGISTRY[strategy.name] = strategy
    return strategy


def get_strategy(name: str) -> Strategy:
    from strategies import builtin  # noqa: F401  (registers the built-ins)

    if name not in REGISTRY:
        raise KeyError(f"unknown strategy {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def rebalance_days(panel: pl.DataFrame, every: int) -> pl.Expr:
    """True on every `every`-th session of the panel (the first included)."""
    sessions = panel["session"].unique().sort()
    chosen = sessions.gather(list(range(0, len(sessions), max(1, every))))
    return pl.col("session").is_in(chosen.implode())


def long_short(panel: pl.DataFrame, score: str, quantile: float, every: int,
               gross: float) -> pl.DataFrame:
    """Long the top `quantile` of names by `score`, short the bottom, equal weights, on
    rebalance sessions; null (hold) in between."""
    live = pl.col("in_universe") & pl.col(score).is_not_null()
    n = live.sum().over("session")
    k = (n * quantile).floor().clip(lower_bound=1)
    rank = pl.col(score).rank("ordinal").over("session", live)
    side = (pl.when(live & (n >= 2) & (rank > n - k)).then(1.0)
            .when(live & (n >= 2) & (rank <= k)).then(-1.0).otherwise(0.0))
    weight = side * gross / (2 * k)
    return panel.select(
        "session", "ticker",
        weight=pl.when(rebalance_days(panel, every)).then(weight).otherwise(None))
