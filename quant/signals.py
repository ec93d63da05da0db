"""A researcher's own signal, held to the same point-in-time standard as the framework's.

A signal given to `Workspace.evaluate` or `Workspace.backtest` is one of:

- a **polars expression** or a **function of the panel** (returning an expression or a
  Series): computed here and checked the way features are (`quant.features`): recomputed on
  the panel cut at a session — later sessions dropped, that session's prices and every forward
  return unknown — and refused with `LookAheadError` when its value at the cut changes;
- the **name of a column** the framework built point-in-time (the pipeline's text signals,
  the registered features, a learned model's out-of-sample `prediction`);
- the name of **any other column**, only with `trust_column=True`: the framework cannot tell
  how it was made.

Whatever the form, a signal whose mean daily rank IC with the forward return of the panel's
shortest horizon exceeds `IMPLAUSIBLE_RANK_IC` in size is refused: no honest signal comes near
it, a forward return leaking into the signal does.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from data.errors import DataError
from quant.errors import BacktestError
from quant.evaluate import check_evaluable, daily_ic, horizons_in, usable
from quant.features import FEATURES, PRICE_COLUMNS, TEXT_COLUMNS
from quant.pipeline import LookAheadError
from strategies import get_strategy

UserSignal = str | pl.Expr | Callable[[pl.DataFrame], pl.Expr | pl.Series]
# Columns the pipeline builds point-in-time (its look-ahead check covers them) and a learned
# model's out-of-sample prediction; registered features are checked when they are added.
PANEL_SIGNALS = frozenset({*TEXT_COLUMNS, "sentiment_z", "sentiment_rank", "prediction"})
IMPLAUSIBLE_RANK_IC = 0.5
CUTS = 4


def prepare(panel: pl.DataFrame, signal: UserSignal, trust_column: bool = False,
            name: str | None = None) -> tuple[pl.DataFrame, str]:
    """(the panel with the signal as a column, its name), after the checks above."""
    check_panel(panel)
    if not isinstance(signal, (str, pl.Expr)) and not callable(signal):
        raise DataError(f"a signal is a panel column's name, a polars expression or a function "
                        f"of the panel, not {type(signal).__name__} ({signal!r})")
    if isinstance(signal, str):
        check_evaluable(panel, signal)
        if signal not in PANEL_SIGNALS and signal not in FEATURES and not trust_column:
            raise LookAheadError(
                f"signal {signal!r} is a column the framework did not build, so it cannot "
                "check that it is point-in-time: give it as a polars expression or a function "
                "of the panel (signal=pl.col(...)...) and it is checked like a feature, or "
                "pass trust_column=True if you know it only reads what was known at each "
                "session's open")
        check_plausible(panel, signal)
        return panel, signal
    name = name or _output_name(signal) or "signal"
    if name in panel.columns:
        raise DataError(f"signal {name!r} has the name of a panel column: name it otherwise "
                        "(.alias(...)) so the panel's own value is not read as it")
    values = _compute(panel, signal, name)
    check_point_in_time(panel, signal, name, values)
    panel = panel.with_columns(values)
    check_evaluable(panel, name)
    check_plausible(panel, name)
    return panel, name


def check_panel(panel: object) -> None:
    """A clear DataError for what is not a usable panel: not polars, empty, or breaking the
    invariants every step relies on (one row per ticker and session, no missing keys, a
    boolean universe, finite forward returns, positive prices)."""
    if not isinstance(panel, pl.DataFrame):
        raise DataError(f"a panel is a polars DataFrame (Workspace.panel gives one), not "
                        f"{type(panel).__module__}.{type(panel).__name__}: convert it with "
                        "pl.from_pandas(frame.reset_index())")
    if panel.is_empty():
        raise DataError("the panel has no rows: widen since/until, or check the filter that "
                        "built it")
    kinds = {"session": (pl.Date,), "ticker": (pl.String, pl.Categorical),
             "in_universe": (pl.Boolean,)}
    for column, allowed in kinds.items():
        if column in panel.columns and panel.schema[column] not in allowed:
            raise DataError(f"panel column {column!r} is {panel.schema[column]}, not "
                            f"{allowed[0]}: keep the column as Workspace.panel builds it")
        if column in panel.columns and panel[column].null_count():
            raise DataError(f"panel column {column!r} has {panel[column].null_count()} missing "
                            "values: every row needs a ticker, a session and in_universe")
    if {"ticker", "session"} <= set(panel.columns):
        repeated = panel.height - panel.select("ticker", "session").n_unique()
        if repeated:
            raise DataError(f"the panel has {repeated} repeated (ticker, session) rows: one row "
                            "per ticker and session (a join that multiplied rows?)")
    for column in panel.columns:
        numeric = panel.schema[column].is_float()
        if column.startswith("fwd_ret_") and numeric and panel[column].is_infinite().any():
            raise DataError(f"panel column {column!r} has infinite values: forward returns "
                            "come from positive prices")
        if column in ("adj_open", "adj_close") and panel.schema[column].is_numeric() and (
                panel[column] <= 0).any():
            raise DataError(f"panel column {column!r} has {(panel[column] <= 0).sum()} prices "
                            "at or below zero: adjusted prices are positive")


def _output_name(signal: UserSignal) -> str | None:
    if isinstance(signal, pl.Expr):
        try:
            return signal.meta.output_name()
        except pl.exceptions.ComputeError:
            return None
    return getattr(signal, "__name__", None) if callable(signal) else None


def _compute(panel: pl.DataFrame, signal: UserSignal, name: str) -> pl.Series:
    """The signal's value on every row of `panel`, as a Float64 Series called `name`."""
    try:
        made = signal(panel) if callable(signal) and not isinstance(signal, pl.Expr) else signal
        if isinstance(made, pl.Expr):  # a scalar (pl.lit) is spread over the rows
            made = panel.select(pl.col(panel.columns[0]), made.alias(name)).to_series(1)
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"signal {name!r} cannot be computed on this panel: "
                        f"{str(exc).splitlines()[0]}") from None
    if not isinstance(made, pl.Series) or made.len() != panel.height:
        raise DataError(f"signal {name!r} must give one value per panel row ({panel.height}); "
                        f"it gave {type(made).__name__} of "
                        f"{getattr(made, 'len', lambda: '?')()}")
    if not made.dtype.is_numeric():
        raise DataError(f"signal {name!r} is {made.dtype}, not numeric")
    return made.cast(pl.Float64).fill_nan(None).alias(name)


def _known_at(panel: pl.DataFrame, cut) -> pl.DataFrame:
    """The panel as it is known at `cut`'s open: later sessions gone, that session's prices
    and every forward return (realised after each row's decision) unset."""
    labels = [c for c in panel.columns if c.startswith("fwd_ret_")]
    return panel.filter(pl.col("session") <= cut).with_columns(
        *[pl.when(pl.col("session") < cut).then(pl.col(c)).alias(c)
          for c in PRICE_COLUMNS if c in panel.columns],
        *[pl.lit(None, panel.schema[c]).alias(c) for c in labels])


def check_point_in_time(panel: pl.DataFrame, signal: UserSignal, name: str,
                        values: pl.Series) -> None:
    """Refuse a signal whose value at a session changes once the panel ends at its open,
    checked at `CUTS` sessions over the second half of those where it has a value (a sparse
    signal, news on some days, is checked where it says something)."""
    whole = panel.select("ticker", "session").with_columns(values)
    sessions = whole.filter(pl.col(name).is_not_null())["session"].unique().sort()
    if sessions.len() < 2:
        sessions = panel["session"].unique().sort()
    if sessions.len() < 2:
        return
    for i in range(CUTS):
        cut = sessions[sessions.len() // 2 + (sessions.len() // 2 - 1) * i // (CUTS - 1)]
        known = _known_at(panel, cut)
        at_cut = known.select("ticker", "session").with_columns(
            _compute(known, signal, name)).filter(pl.col("session") == cut)
        both = at_cut.join(whole.filter(pl.col("session") == cut), on="ticker",
                           suffix="_whole")
        a, b = both[name], both[f"{name}_whole"]
        differs = ((a.is_null() != b.is_null())
                   | ((a - b).abs() > 1e-9 * (1 + b.abs()))).fill_null(False)
        if differs.any():
            ticker = both.filter(differs)["ticker"][0]
            raise LookAheadError(
                f"look-ahead: signal {name!r} at {ticker} {cut} changes when the panel ends at "
                "that session's open: it reads a later row, a forward return or a price of "
                "the session itself (the panel's row is decided at its open). Read prices of "
                "earlier sessions: pl.col('adj_close').shift(1).over('ticker', "
                "order_by='session')")


def check_plausible(panel: pl.DataFrame, signal: str) -> None:
    """Refuse a signal whose mean daily rank IC at the shortest horizon the panel has
    exceeds IMPLAUSIBLE_RANK_IC."""
    horizons = horizons_in(panel)
    if not horizons:
        return
    rows, _ = usable(panel, signal, horizons[0])  # the evaluation's rows, thin sessions out
    daily = daily_ic(rows, signal, f"fwd_ret_{horizons[0]}")["rank_ic"]
    if daily.len() < 5:
        return
    ic = float(daily.mean())
    if abs(ic) > IMPLAUSIBLE_RANK_IC:
        raise LookAheadError(
            f"signal {signal!r} has a mean daily rank IC of {ic:.2f} with the return over the "
            f"next {horizons[0]} session(s), over {daily.len()} sessions; no honest signal "
            f"comes near {IMPLAUSIBLE_RANK_IC}. The likely cause is look-ahead: it reads a "
            "forward return or a price not known at the session's open")


def traded_signal(strategy, params: dict | None) -> str | None:
    """The panel column the strategy trades with these params (`signal`, in every mode: a
    sweep's params hold at every grid point), or the one it always trades (`learned`:
    prediction); None for a strategy that reads no signal (buy and hold)."""
    if "signal" in strategy.defaults and "signal" not in getattr(strategy, "grid", {}):
        return (params or {}).get("signal", strategy.defaults["signal"])
    return getattr(strategy, "signal", None)


def get_strategy_or_fail(name: str):
    try:
        return get_strategy(name)
    except KeyError as exc:
        raise BacktestError(str(exc.args[0])) from None
