"""Tomorrow's book, the paper record since go-live, and a replay that proves them.

`targets_for` decides a deployment's weights for one session from what was known before that
session's open: prices of earlier sessions, the signals published before the open, and a row
per name for the session itself with no price of its own (the panel's point-in-time rule).
The strategy sees the panel from the go-live session on, as a backtest from go-live does.
`paper` simulates the stored targets with the backtest's own order simulation and costs.
`replay` decides every session of a range as it would have been decided then; its paper
equity must equal a single backtest's over the same sessions, or one of them is not
point-in-time.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from data.calendar import get_calendar
from data.errors import DataError
from data.warehouse import Warehouse
from quant import signal_store
from quant.artefact import inside, write_file
from quant.config import Config
from quant.days import day_of
from quant.errors import ConfigError
from quant.learned import (
    Fitted,
    feature_names,
    fit_walk_forward,
    predict_session,
    walk_forward_design,
)
from quant.live import deployments
from quant.pipeline import build_panel, load_prices, no_signals
from quant.settings import ModelSpec
from quant.signal_store import SignalSet, choose_signal_set, load_signals
from quant.signals import get_strategy_or_fail, traded_signal
from strategies import get_strategy
from strategies.base import check_params


def freeze(config: Config, wh: Warehouse, name: str, strategy: str, params: dict | None,
           go_live: date, universe: list[str] | None = None,
           model: dict | str | None = None) -> deployments.Deployment:
    """Store a new deployment: `strategy` with `params` (checked), the warehouse's latest
    signal set (none: a strategy of prices alone), the configured costs and `universe`
    (default: every name with prices), from `go_live`. The `learned` strategy also freezes
    its `model`: `quant.settings.ModelSpec` fields and `since` (the first session of its
    training history), or the name of a model fitted with `fit_model`."""
    inside(config.reports_dir, name, "deployment")   # a name, never a path
    try:
        frozen = {k: v for k, v in check_params(get_strategy_or_fail(strategy),
                                                params or {}).items() if k in (params or {})}
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        which = choose_signal_set(wh)
    except DataError:
        which = None
    names = _universe(wh, universe)
    signals = ((which.model_fingerprint, which.prompt_version, which.mode) if which
               else (None, None, None))
    return deployments.create(wh, deployments.Deployment(
        name, strategy, frozen, *signals, asdict(config.backtest), tuple(names), go_live,
        model=_frozen_model(config, wh, strategy, model, go_live, which, names)))


def _universe(wh: Warehouse, universe: list[str] | None) -> list[str]:
    """The names a deployment trades: `universe` (upper-cased, each with prices), or every
    name with prices."""
    priced = set(wh.query("SELECT DISTINCT ticker FROM prices")["ticker"])
    if universe is None:
        return sorted(priced)
    names = sorted({str(t).strip().upper() for t in universe})
    if not names:
        raise ConfigError("the universe is empty: name the tickers to trade, or leave it out "
                          "for every name with prices")
    unknown = [t for t in names if t not in priced]
    if unknown:
        raise ConfigError(f"no prices for {', '.join(unknown[:10])}"
                          f"{' ...' if len(unknown) > 10 else ''} in the warehouse: ingest "
                          "them first, or leave them out of the universe")
    return names


def _frozen_model(config: Config, wh: Warehouse, strategy: str, model: dict | str | None,
                  go_live: date, which: SignalSet | None, universe: list[str]) -> dict | None:
    """The learned strategy's model as stored: its spec with the features resolved on the
    history before go-live (those that cannot vary there left out, once and for all) and the
    first session of the history it trains on."""
    if strategy != "learned" or model is None:
        if model is not None:
            raise ConfigError(f"{strategy} reads no model; only the learned strategy takes one")
        if strategy == "learned":
            raise ConfigError("a learned deployment needs its model: model={ModelSpec fields, "
                              "'since': the first session it trains on} or a fitted model's "
                              "name (`quant model fit --name NAME`, then --model NAME)")
        return None
    if isinstance(model, str):
        fitted = Fitted.load(inside(config.root / "models", model, "model"))
        spec, since = fitted.spec, fitted.meta.get("panel_since")
    else:
        chosen = dict(model)
        since = chosen.pop("since", None)
        spec = ModelSpec.of(chosen, "the model", extra=("since",))
    since = day_of(since) or wh.scalar("SELECT min(session) FROM prices")
    if since >= go_live:
        raise ConfigError(f"the model's history starts on {since}, not before go-live on "
                          f"{go_live}: a model needs sessions to learn from before it trades")
    history = universe_panel(config, wh, which, universe, since, spec.horizon).filter(
        pl.col("session") < go_live)
    spec = walk_forward_design(history, spec)[0]
    return {**asdict(spec), "features": feature_names(spec), "since": str(since)}


def universe_panel(config: Config, wh: Warehouse, which: SignalSet | None, universe,
                   since: date | None, horizon: int | None = None,
                   prices: pl.DataFrame | None = None) -> pl.DataFrame:
    """The panel of `universe`'s names alone from `since` (None: all history), with the
    signal set `which` (None: prices alone) and `horizon` among the forward returns; built
    from `prices` when given (`panel_at`'s, cut at a session's open)."""
    signals = no_signals() if which is None else load_signals(wh, which, since)
    if prices is None:
        prices = load_prices(wh, since=since).filter(pl.col("ticker").is_in(list(universe)))
    if prices.is_empty():
        raise DataError(f"no prices{f' since {since}' if since else ''} for the deployment's "
                        "names: ingest prices first")
    params = config.pipeline if horizon is None else replace(
        config.pipeline, horizons=tuple(sorted({*config.pipeline.horizons, horizon})))
    return build_panel(signals, prices, params, get_calendar(config.data.calendar))


def signal_set(deployment: deployments.Deployment) -> SignalSet | None:
    return None if deployment.model_fingerprint is None else SignalSet(
        deployment.model_fingerprint, deployment.prompt_version, deployment.mode)


def backtest_panel(config: Config, wh: Warehouse, deployment: deployments.Deployment,
                   start: date, end: date) -> tuple[pl.DataFrame, object]:
    """The panel a backtest of the deployment over `start` .. `end` reads (a learned one's
    with its walk-forward's predictions), and the deployment's strategy."""
    spec, since = spec_of(deployment) if deployment.model else (None, None)
    panel = universe_panel(config, wh, signal_set(deployment), deployment.universe, since,
                           spec.horizon if spec else None).filter(pl.col("session") <= end)
    if spec is not None:
        panel = walk_forward_panel(panel, spec)
    return (panel.filter(pl.col("session") >= start), get_strategy(deployment.strategy))


def spec_of(deployment: deployments.Deployment):
    """A learned deployment's (ModelSpec, first session of its training history)."""
    chosen = dict(deployment.model)
    since = day_of(chosen.pop("since"))
    return ModelSpec.of(chosen), since


def panel_at(config: Config, wh: Warehouse, deployment: deployments.Deployment,
             session: date) -> pl.DataFrame:
    """The panel as known at `session`'s open, from the go-live session on. A learned
    deployment's starts where its model's history does, built from that session's data alone
    with its model's horizon, as `fit_model(since=...)` builds it."""
    calendar = get_calendar(config.data.calendar)
    learned = deployment.model is not None
    spec, since = spec_of(deployment) if learned else (None, None)
    prices = load_prices(wh, since=since).filter(
        (pl.col("session") < session) & pl.col("ticker").is_in(list(deployment.universe)))
    if prices.is_empty():
        raise DataError(f"no prices before {session}: ingest prices first")
    last = prices["session"].max()
    before = calendar.sessions_between(last, session)
    if len(before) != 2 or before[-1] != session:
        raise DataError(f"{deployment.name}: the last prices are of {last}, not of the session "
                        f"before {session}; ingest them before deciding {session}'s book")
    today = prices.filter(pl.col("session") == last).select(
        "ticker", pl.lit(session, pl.Date).alias("session"),
        *(pl.lit(None, prices.schema[c]).alias(c) for c in ("open", "close", "adj_close")),
        pl.col("volume"))
    panel = universe_panel(config, wh, signal_set(deployment), deployment.universe, since,
                           spec.horizon if learned else None,
                           prices=pl.concat([prices, today.select(prices.columns)]))
    return panel if learned else panel.filter(pl.col("session") >= deployment.go_live)


def targets_for(config: Config, wh: Warehouse, deployment: deployments.Deployment,
                session: date, models: dict | None = None) -> pl.DataFrame:
    """The deployment's book for `session` (ticker, weight, signal, n_docs and the documents
    behind them), stored (replacing an earlier try's) and returned. A learned deployment's
    prediction comes from its walk-forward block's model, fitted on the history known at the
    open (`models` keeps each block's fit for the sessions after it, as a replay does)."""
    if session < deployment.go_live:
        raise DataError(f"{deployment.name} goes live on {deployment.go_live}, after {session}")
    calendar = get_calendar(config.data.calendar)
    if np.datetime64(session, "D") not in calendar.sessions:
        following = calendar.sessions_between(session, session + timedelta(days=14))
        raise DataError(f"{session} is not a {calendar.name} session; the next one is "
                        f"{following[0] if following else 'unknown'}")
    _check_scored(wh, deployment, session, config)
    panel = panel_at(config, wh, deployment, session)
    if deployment.model is not None:
        today = predict_session(panel, spec_of(deployment)[0], session,
                                {} if models is None else models)
        panel = panel.join(today.with_columns(session=pl.lit(session, pl.Date)),
                           on=["ticker", "session"], how="left")
    panel = panel.filter(pl.col("session") >= deployment.go_live)
    strategy = get_strategy(deployment.strategy)
    weights = strategy.weights(panel, **deployment.params)
    signal = traded_signal(strategy, deployment.params)
    book = panel.filter(pl.col("session") == session).join(
        weights.filter(pl.col("session") == session), on=["session", "ticker"], how="left")
    book = book.select("ticker", pl.col("weight").cast(pl.Float64),
                       (pl.col(signal) if signal in book.columns else pl.lit(None))
                       .cast(pl.Float64).alias("signal"),
                       pl.col("n_docs").cast(pl.Int32)).sort("ticker")
    book = book.join(_documents(config, wh, deployment, session), on="ticker", how="left")
    deployments.write_targets(wh, deployment.name, session, book, _open_of(config, session))
    return book


def _documents(config: Config, wh: Warehouse, deployment: deployments.Deployment,
               session: date) -> pl.DataFrame:
    """ticker, documents: the doc_ids of the signals aligned to `session` (published between
    the open before and its own, shifted by the execution lag), oldest first."""
    which = signal_set(deployment)
    calendar = get_calendar(config.data.calendar)
    index, lag = calendar.position(session), config.pipeline.execution_lag
    if which is None or index - lag - 1 < 0:
        return pl.DataFrame(schema={"ticker": pl.String, "documents": pl.List(pl.String)})
    since, until = (calendar.open_of(i) for i in (index - lag - 1, index - lag))
    return signal_store.documents_between(wh, which, since, until)


def _check_scored(wh: Warehouse, deployment: deployments.Deployment, session: date,
                  config: Config) -> None:
    """Refuse to decide while documents published before the open are not yet scored."""
    which = signal_set(deployment)
    if which is None:
        return
    pending = signal_store.unscored_before(wh, which, _open_of(config, session),
                                           list(deployment.universe))
    if pending:
        raise DataError(f"{deployment.name}: {pending} documents published before {session}'s "
                        "open are not scored by its model yet; run `quant score` first")


def _open_of(config: Config, session: date) -> datetime:
    calendar = get_calendar(config.data.calendar)
    return calendar.open_of(calendar.position(session))


def replay_sessions(config: Config, wh: Warehouse, deployment: deployments.Deployment,
                    start: date, end: date) -> list[date]:
    """The sessions from `start` (or go-live, if later) to `end` that have prices; an error
    saying why when there are none."""
    if start > end:
        raise DataError(f"a replay runs forward: --from {start} is after --to {end}")
    if end < deployment.go_live:
        raise DataError(f"nothing to replay: --to {end} is before {deployment.name} goes live "
                        f"on {deployment.go_live}")
    first = max(start, deployment.go_live)
    priced = set(load_prices(wh, since=first, until=end)["session"].unique().to_list())
    sessions = [d for d in get_calendar(config.data.calendar).sessions_between(first, end)
                if d in priced]
    if not sessions:
        raise DataError(f"nothing to replay: {deployment.name} goes live on "
                        f"{deployment.go_live}, and no session from {first} to {end} has "
                        "prices")
    return sessions


def replay(config: Config, wh: Warehouse, deployment: deployments.Deployment, start: date,
           end: date, on_session=None) -> int:
    """Decide every session from `start` to `end` with prices, as it would have been decided
    then; returns how many sessions were decided."""
    sessions = replay_sessions(config, wh, deployment, start, end)
    models: dict = {}   # each walk-forward block's model, fitted once (learned deployments)
    for session in sessions:
        targets_for(config, wh, deployment, session, models)
        if on_session is not None:
            on_session(session)
    return len(sessions)


def walk_forward_panel(panel: pl.DataFrame, spec) -> pl.DataFrame:
    """The panel over the walk-forward's out-of-sample sessions, with its `prediction`;
    empty when the history leaves no block."""
    try:
        fitted = fit_walk_forward(panel, spec)
    except ConfigError:
        return panel.clear()
    first = fitted.predictions["session"].min()
    return fitted.panel(panel).filter(pl.col("session") >= first)


def next_session(config: Config, wh: Warehouse, as_of: date) -> date:
    """The session a book decided on `as_of` is for: the first after the last session with
    prices on or before `as_of`."""
    last = wh.scalar("SELECT max(session) FROM prices WHERE session <= ?", [as_of])
    if last is None:
        raise DataError(f"no prices on or before {as_of}: ingest prices first")
    calendar = get_calendar(config.data.calendar)
    return calendar.sessions[calendar.position(last, after=True)].astype(date)


def daily_books(config: Config, wh: Warehouse, as_of: date, only: str | None = None,
                models: dict | None = None) -> dict:
    """Each live deployment's (or `only` that one's) book for the next session, stored and
    written as `reports/deployments/NAME/targets-SESSION.csv`; a deployment whose inputs are
    missing is reported with the reason, and the others still get theirs. `models`: as
    `targets_for` takes it."""
    out: dict = {}
    session = next_session(config, wh, as_of)
    for deployment in deployments.listing(wh, live_only=True):
        if only is not None and deployment.name != only:
            continue
        if session < deployment.go_live:
            out[deployment.name] = {"session": str(session), "skipped": "before go-live"}
            continue
        try:
            targets = targets_for(config, wh, deployment, session, models)
        except DataError as exc:
            out[deployment.name] = {"session": str(session), "refused": str(exc)}
            continue
        folder = folder_of(config, deployment.name)
        folder.mkdir(parents=True, exist_ok=True)
        write_file(folder / f"targets-{session}.csv", targets.with_columns(
            pl.col("documents").list.join(";")).write_csv)
        out[deployment.name] = {"session": str(session), "names": targets.height,
                                "gross": float(targets["weight"].abs().sum())}
    return out


def folder_of(config: Config, name: str):
    """reports/deployments/NAME: a deployment's books and track record."""
    return inside(config.reports_dir / "deployments", name, "deployment")
