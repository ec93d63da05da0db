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

import math
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import polars as pl

from data.calendar import get_calendar
from data.errors import DataError
from data.warehouse import Warehouse
from quant import deployments
from quant.config import Config
from quant.pipeline import SignalSet, build_panel, load_prices, load_signals, no_signals
from quant.runs import traded_signal
from strategies import get_strategy


def freeze(config: Config, wh: Warehouse, name: str, strategy: str, params: dict | None,
           go_live: date, universe: list[str] | None = None) -> deployments.Deployment:
    """Store a new deployment: `strategy` with `params` (checked), the warehouse's latest
    signal set (none: a strategy of prices alone), the configured costs and `universe`
    (default: every name with prices), from `go_live`."""
    from dataclasses import asdict

    from quant.artefact import inside
    from quant.errors import ConfigError
    from quant.pipeline import choose_signal_set
    from quant.runs import get_strategy_or_fail
    from strategies.base import check_params

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
    names = universe or sorted(wh.query("SELECT DISTINCT ticker FROM prices")["ticker"])
    signals = ((which.model_fingerprint, which.prompt_version, which.mode) if which
               else (None, None, None))
    return deployments.create(wh, deployments.Deployment(
        name, strategy, frozen, *signals, asdict(config.backtest), tuple(names), go_live))


def panel_at(config: Config, wh: Warehouse, deployment: deployments.Deployment,
             session: date) -> pl.DataFrame:
    """The panel as known at `session`'s open, from the go-live session on."""
    calendar = get_calendar(config.data.calendar)
    prices = load_prices(wh).filter((pl.col("session") < session)
                                    & pl.col("ticker").is_in(list(deployment.universe)))
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
    signals = no_signals()
    if deployment.model_fingerprint is not None:
        signals = load_signals(wh, SignalSet(deployment.model_fingerprint,
                                             deployment.prompt_version, deployment.mode))
    panel = build_panel(signals, pl.concat([prices, today.select(prices.columns)]),
                        config.pipeline, calendar)
    return panel.filter(pl.col("session") >= deployment.go_live)


def targets_for(config: Config, wh: Warehouse, deployment: deployments.Deployment,
                session: date) -> pl.DataFrame:
    """The deployment's book for `session` (ticker, weight, signal, n_docs and the documents
    behind them), stored (replacing an earlier try's) and returned."""
    if session < deployment.go_live:
        raise DataError(f"{deployment.name} goes live on {deployment.go_live}, after {session}")
    calendar = get_calendar(config.data.calendar)
    if np.datetime64(session, "D") not in calendar.sessions:
        following = calendar.sessions_between(session, session + timedelta(days=14))
        raise DataError(f"{session} is not a {calendar.name} session; the next one is "
                        f"{following[0] if following else 'unknown'}")
    _check_scored(wh, deployment, session, config)
    panel = panel_at(config, wh, deployment, session)
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
    empty = pl.DataFrame(schema={"ticker": pl.String, "documents": pl.List(pl.String)})
    if deployment.model_fingerprint is None:
        return empty
    calendar = get_calendar(config.data.calendar)
    index = int(np.searchsorted(calendar.sessions, np.datetime64(session, "D")))
    lag = config.pipeline.execution_lag
    if index - lag - 1 < 0:
        return empty
    since, until = (calendar.opens[i].astype(datetime).replace(tzinfo=timezone.utc)
                    for i in (index - lag - 1, index - lag))
    return wh.con.execute("""
        SELECT ticker, list(doc_id ORDER BY published_at, doc_id) AS documents FROM signals
        WHERE status = 'ok' AND model_fingerprint = $fp AND prompt_version = $pv
          AND mode = $mode AND published_at >= $since AND published_at < $until
        GROUP BY ticker""", {"fp": deployment.model_fingerprint,
                             "pv": deployment.prompt_version, "mode": deployment.mode,
                             "since": since, "until": until}).pl().cast(empty.schema)


def _check_scored(wh: Warehouse, deployment: deployments.Deployment, session: date,
                  config: Config) -> None:
    """Refuse to decide while documents published before the open are not yet scored."""
    if deployment.model_fingerprint is None:
        return
    pending = wh.scalar("""
        SELECT count(*) FROM documents d WHERE d.published_at < $open
          AND list_has_any(d.tickers, $universe)
          AND NOT EXISTS (SELECT 1 FROM signals s WHERE s.doc_id = d.doc_id
                          AND s.model_fingerprint = $fp AND s.prompt_version = $pv
                          AND s.mode = $mode)""", {
        "open": _open_of(config, session), "universe": list(deployment.universe),
        "fp": deployment.model_fingerprint, "pv": deployment.prompt_version,
        "mode": deployment.mode})
    if pending:
        raise DataError(f"{deployment.name}: {pending} documents published before {session}'s "
                        "open are not scored by its model yet; run `quant score` first")


def _open_of(config: Config, session: date) -> datetime:
    calendar = get_calendar(config.data.calendar)
    index = int(np.searchsorted(calendar.sessions, np.datetime64(session, "D")))
    return calendar.opens[index].astype(datetime).replace(tzinfo=timezone.utc)


def paper(config: Config, wh: Warehouse, deployment: deployments.Deployment
          ) -> pd.Series:
    """Daily returns of the stored targets since go-live, through the backtest's own order
    simulation and costs, up to the last session with prices."""
    targets = deployments.read_targets(wh, deployment.name)
    if targets.is_empty():
        raise DataError(f"{deployment.name} has no targets yet: the daily job writes them, or "
                        "`quant replay` for past sessions")
    prices = load_prices(wh, since=deployment.go_live).filter(
        pl.col("ticker").is_in(list(deployment.universe)))
    panel = build_panel(no_signals(), prices, config.pipeline,
                        get_calendar(config.data.calendar))
    sessions = targets["session"].unique()
    panel = panel.filter(pl.col("session").is_in(sessions.implode()))
    if panel.is_empty():  # only tomorrow's book so far: nothing has traded yet
        return pd.Series([], index=pd.DatetimeIndex([]), name="paper", dtype=float)
    from quant.backtest import Simulation

    class Stored:  # the targets as a strategy, so the simulation places them as any other
        name = deployment.name

        def weights(self, frame: pl.DataFrame, **_: object) -> pl.DataFrame:
            return frame.select("session", "ticker").join(
                targets.select("session", "ticker", "weight"), on=["session", "ticker"],
                how="left")

    returns, _, _ = Simulation(panel, Stored(), deployment.backtest_settings)([{}])
    return returns[0].rename("paper")


def replay(config: Config, wh: Warehouse, deployment: deployments.Deployment, start: date,
           end: date, on_session=None) -> int:
    """Decide every session from `start` to `end` with prices, as it would have been decided
    then; returns how many sessions were decided."""
    if start > end:
        raise DataError(f"a replay runs forward: --from {start} is after --to {end}")
    priced = set(load_prices(wh, since=start, until=end)["session"].unique().to_list())
    sessions = [d for d in get_calendar(config.data.calendar).sessions_between(
        max(start, deployment.go_live), end) if d in priced]
    for session in sessions:
        targets_for(config, wh, deployment, session)
        if on_session is not None:
            on_session(session)
    return len(sessions)


def expectation(config: Config, wh: Warehouse, deployment: deployments.Deployment
                ) -> dict | None:
    """What a backtest of the deployment expected: its single run over the sessions with
    signals before go-live (sharpe, cagr, max_drawdown, sessions); None without any."""
    from quant import backtest as bt
    from quant.pipeline import panel_from_warehouse

    which = None if deployment.model_fingerprint is None else SignalSet(
        deployment.model_fingerprint, deployment.prompt_version, deployment.mode)
    try:
        panel, _ = panel_from_warehouse(wh, config.pipeline, which,
                                        calendar=config.data.calendar)
    except DataError:
        return None
    panel = panel.filter((pl.col("session") < deployment.go_live)
                         & pl.col("ticker").is_in(list(deployment.universe)))
    if "sentiment" in panel.columns and which is not None:
        live = panel.filter(pl.col("sentiment").is_not_null())
        panel = panel.filter(pl.col("session") >= live["session"].min()) if live.height else (
            panel.clear())
    if panel["session"].n_unique() < 20:
        return None
    result = bt.backtest(panel, get_strategy(deployment.strategy), deployment.params,
                         deployment.backtest_settings)
    metrics = result.metrics[0]
    return {"sharpe": metrics["sharpe"], "cagr": metrics["cagr"],
            "max_drawdown": metrics["max_drawdown"], "sessions": len(result.returns),
            "period": f"{panel['session'].min()} .. {panel['session'].max()}"}


def next_session(config: Config, wh: Warehouse, as_of: date) -> date:
    """The session a book decided on `as_of` is for: the first after the last session with
    prices on or before `as_of`."""
    last = wh.scalar("SELECT max(session) FROM prices WHERE session <= ?", [as_of])
    if last is None:
        raise DataError(f"no prices on or before {as_of}: ingest prices first")
    calendar = get_calendar(config.data.calendar)
    index = int(np.searchsorted(calendar.sessions, np.datetime64(last, "D"), side="right"))
    return calendar.sessions[index].astype(date)


def daily_books(config: Config, wh: Warehouse, as_of: date) -> dict:
    """Each live deployment's book for the next session, stored and written as
    `reports/deployments/NAME/targets-SESSION.csv`; a deployment whose inputs are missing is
    reported with the reason, and the others still get theirs."""
    from quant.artefact import inside, write_file

    out: dict = {}
    session = next_session(config, wh, as_of)
    for deployment in deployments.listing(wh, live_only=True):
        if session < deployment.go_live:
            out[deployment.name] = {"session": str(session), "skipped": "before go-live"}
            continue
        try:
            targets = targets_for(config, wh, deployment, session)
        except DataError as exc:
            out[deployment.name] = {"session": str(session), "refused": str(exc)}
            continue
        folder = inside(config.reports_dir / "deployments", deployment.name, "deployment")
        folder.mkdir(parents=True, exist_ok=True)
        write_file(folder / f"targets-{session}.csv", targets.with_columns(
            pl.col("documents").list.join(";")).write_csv)
        out[deployment.name] = {"session": str(session), "names": targets.height,
                                "gross": float(targets["weight"].abs().sum())}
        _write_track(config, wh, deployment, folder)
    return out


def _write_track(config: Config, wh: Warehouse, deployment: deployments.Deployment,
                 folder) -> None:
    """The deployment's track record beside its books (`quant.track_page`)."""
    from quant.track_page import write_track

    write_track(folder, config.reports_dir, track_record(config, wh, deployment))


def track_record(config: Config, wh: Warehouse, deployment: deployments.Deployment) -> dict:
    """The paper record since go-live (`returns`, Sharpe, CAGR, worst drawdown) beside the
    backtest's expectation, and the interval the live Sharpe would fall in 95% of the time
    were the backtest right."""
    from quant import stats

    returns = paper(config, wh, deployment)
    expected = expectation(config, wh, deployment)
    live = stats.performance(returns).iloc[0].to_dict()
    record = {"deployment": deployment.name, "since": str(deployment.go_live),
              "sessions": len(returns), "returns": returns,
              "live": {k: live[k] for k in ("sharpe", "cagr", "max_drawdown", "volatility")},
              "backtest": expected}
    if expected and expected.get("sharpe") is not None and len(returns) > 1:
        daily = expected["sharpe"] / math.sqrt(stats.PERIODS)
        half = 1.96 * math.sqrt((1 + daily ** 2 / 2) / len(returns)) * math.sqrt(stats.PERIODS)
        low, high = expected["sharpe"] - half, expected["sharpe"] + half
        record["interval"] = {"low": low, "high": high,
                              "inside": low <= record["live"]["sharpe"] <= high}
    return record
