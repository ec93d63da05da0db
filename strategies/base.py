"""The `Strategy` protocol and the registry.

A strategy turns the daily panel (polars: ticker, session, sentiment columns, prices,
`in_universe`, ...) into target weights per (session, ticker). A weight at a session is the
position to hold from that session's open: the panel's decision time. A null weight means "no
order, keep what you hold"; a ticker absent on a session is the same as null.

A strategy may also define `weights_grid(panel, grid)`: the weights of every configuration in
`grid` (full parameter dicts) at once, as columns session, ticker and one weight column per
configuration in grid order. Sweeps use it when present, so work that configurations share
(ranking a signal, say) is done once.

A strategy that reads a column the panel does not always have declares it in `requires`
({column: how to get it}); a backtest without it is an error that says how. A strategy that
holds as much short as long declares `market_neutral = True`: its runs are measured against
cash, not the market (beta and alpha are still against the market).

To add one: write a module with a class like those below and register it
(`strategies.registry`):

    from strategies import register
    register(MyStrategy())
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
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


def with_defaults(weights: Callable) -> Callable:
    """Fill a `weights` method's parameters from the strategy's `defaults`, so they are
    declared once (the method's signature names them, without values)."""
    @functools.wraps(weights)
    def filled(self, panel: pl.DataFrame, **params: Any) -> pl.DataFrame:
        return weights(self, panel, **{**self.defaults, **params})
    return filled


def missing_columns(strategy: Strategy, panel: pl.DataFrame) -> str | None:
    """What the panel lacks of the strategy's `requires`, and how to get it; None if nothing."""
    for column, how in getattr(strategy, "requires", {}).items():
        if column not in panel.columns:
            return f"{strategy.name} needs a panel column {column!r} that this panel lacks; {how}"
    return None


def combinations(strategy: Strategy, fixed: dict[str, Any] | None = None
                 ) -> list[dict[str, Any]]:
    """Every point of the strategy's grid, `fixed` and then the defaults filling what the grid
    leaves out. A key both fixed and in the grid is an error: the caller would not know which
    of the two ran."""
    fixed = fixed or {}
    both = sorted(set(fixed) & set(strategy.grid))
    if both:
        raise ValueError(f"{strategy.name}: {both[0]} is fixed by params ({fixed[both[0]]!r}) "
                         f"and varied by the grid ({strategy.grid[both[0]]!r}); drop it from "
                         "params to sweep it, or run a single backtest to fix it")
    check_params(strategy, fixed)
    keys = list(strategy.grid)
    return [{**strategy.defaults, **fixed, **dict(zip(keys, values, strict=True))}
            for values in itertools.product(*(strategy.grid[k] for k in keys))]


def check_params(strategy: Strategy, params: dict[str, Any]) -> dict[str, Any]:
    """Defaults plus overrides; an unknown name, a value of the wrong kind or one outside the
    strategy's declared `bounds` ({name: (low, high)}, inclusive) is an error that says so."""
    unknown = set(params) - set(strategy.defaults)
    if unknown:
        raise ValueError(f"{strategy.name} has no parameter {sorted(unknown)[0]!r}; "
                         f"its parameters: {', '.join(sorted(strategy.defaults)) or '(none)'}")
    chosen = {**strategy.defaults, **params}
    for name, value in chosen.items():
        default = strategy.defaults[name]
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        if numeric and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{strategy.name}: {name} must be a number, not {value!r}")
        if numeric and isinstance(default, int) and isinstance(value, float) and (
                not value.is_integer()):
            raise ValueError(f"{strategy.name}: {name} must be a whole number, not {value!r}")
        low, high = getattr(strategy, "bounds", {}).get(name, (None, None))
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"{strategy.name}: {name} = {value!r} is outside its range "
                             f"{low} .. {high}")
    return chosen


def long_short_grid(panel: pl.DataFrame, configs: list[tuple[str, float, int, float]]
                    ) -> pl.DataFrame:
    """Long the top `quantile` of names by `score`, short the bottom, equal weights, on every
    `every`-th session (the first included); null (hold) in between. One weight column per
    (score, quantile, every, gross) in `configs`, in order. Each part is computed once however
    many configurations share it: the ranks per score, the book per (score, quantile, gross),
    the rebalance sessions per `every`."""
    frame = panel.with_columns(_position=pl.col("session").rank("dense") - 1)
    for score in dict.fromkeys(c[0] for c in configs):
        live = pl.col("in_universe") & pl.col(score).is_not_null()
        frame = frame.with_columns(**{
            f"_live_{score}": live, f"_n_{score}": live.sum().over("session"),
            f"_rank_{score}": pl.col(score).rank("ordinal").over("session", live)})
    books = {key: f"_book_{i}" for i, key in
             enumerate(dict.fromkeys((c[0], c[1], c[3]) for c in configs))}
    frame = frame.with_columns(
        *(_book(score, quantile, gross).alias(name)
          for (score, quantile, gross), name in books.items()),
        **{f"_every_{every}": pl.col("_position") % max(1, every) == 0
           for every in dict.fromkeys(c[2] for c in configs)})
    return frame.select("session", "ticker", *(
        pl.when(pl.col(f"_every_{every}")).then(pl.col(books[(score, quantile, gross)]))
        .otherwise(None).alias(f"weight_{i}")
        for i, (score, quantile, every, gross) in enumerate(configs)))


def _book(score: str, quantile: float, gross: float) -> pl.Expr:
    """Each live name's weight: +gross / 2k for the top k, -gross / 2k for the bottom k."""
    live, n, rank = (pl.col(f"_{part}_{score}") for part in ("live", "n", "rank"))
    k = (n * quantile).floor().clip(lower_bound=1)
    side = (pl.when(live & (n >= 2) & (rank > n - k)).then(1.0)
            .when(live & (n >= 2) & (rank <= k)).then(-1.0).otherwise(0.0))
    return side * gross / (2 * k)


def long_short(panel: pl.DataFrame, score: str, quantile: float, every: int,
               gross: float) -> pl.DataFrame:
    """One configuration of `long_short_grid`, as a `weight` column."""
    return long_short_grid(panel, [(score, quantile, every, gross)]).rename(
        {"weight_0": "weight"})
