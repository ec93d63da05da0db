"""A backtest run from end to end: panel -> strategy -> vectorbt -> stored row -> report.

The period defaults to the sessions the signals cover (a backtest over years with no signal
says nothing about the signal). Each run keeps its artifacts (daily returns, the sweep table,
the walk-forward windows, the evaluation) beside its report so `quant report RUN_ID` can
render it again.
"""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import polars as pl

from quant import backtest as bt
from quant.config import Config
from quant.errors import BacktestError
from quant.evaluate import evaluate_signal
from quant.pipeline import PanelParams, SignalSet, panel_from_warehouse
from quant.report import write_report
from strategies import get_strategy


def settings_of(config: Config) -> bt.Settings:
    b = config.backtest
    return bt.Settings(fees_bps=b.fees_bps, slippage_bps=b.slippage_bps, init_cash=b.init_cash,
                       max_leverage=b.max_leverage)


def signal_period(panel: pl.DataFrame) -> tuple[date, date]:
    live = panel.filter(pl.col("sentiment").is_not_null())
    if live.is_empty():
        raise BacktestError("no session in the period has a signal: score documents first, "
                            "or widen --since/--until")
    return live["session"].min(), live["session"].max()


def run(config: Config, wh, strategy_name: str, params: dict | None = None,
        mode: str = "single", since: date | None = None, until: date | None = None,
        params_panel: PanelParams | None = None, which: SignalSet | None = None,
        engine: str | None = None) -> dict:
    """Run, store and report one backtest; returns the run summary."""
    try:
        strategy = get_strategy(strategy_name)
    except KeyError as exc:
        raise BacktestError(str(exc.args[0])) from None
    from quant.workspace import panel_params

    params_panel = params_panel or panel_params(config)
    panel, which = panel_from_warehouse(wh, params_panel, which, calendar=config.data.calendar)
    start, end = signal_period(panel)
    start, end = max(since, start) if since else start, min(until, end) if until else end
    panel = panel.filter(pl.col("session").is_between(start, end))
    settings = settings_of(config)
    signals = {"model_id": which.model_id, "fingerprint": which.model_fingerprint,
               "prompt_version": which.prompt_version, "mode": which.mode,
               "ok_signals": int(panel["n_docs"].sum())}
    key = {"params": params or {}, "period": [start, end], "signals": signals,
           "settings": settings, "panel": params_panel,
           "walk_forward": [config.backtest.walk_forward_train, config.backtest.walk_forward_test,
                            config.backtest.metric] if mode == "walk_forward" else None,
           "evaluate": [config.evaluate.signal, config.evaluate.quantiles]}
    run_id = bt.run_id(strategy.name, mode, key)
    if (config.reports_dir / run_id / "returns.parquet").exists() and wh.scalar(
            "SELECT count(*) FROM backtests WHERE run_id = ?", [run_id]):
        return {**render(config, wh, run_id), "cached": True}
    distributed = {"engine": engine or config.engine,
                   "ray_address": config.ray_address or None}
    if mode == "sweep":
        result = bt.sweep(panel, strategy, settings, **distributed)
    elif mode == "walk_forward":
        result = bt.walk_forward(panel, strategy, settings, config.backtest.walk_forward_train,
                                 config.backtest.walk_forward_test, config.backtest.metric,
                                 **distributed)
    else:
        result = bt.backtest(panel, strategy, params, settings)
    benchmark = bt.backtest(panel, get_strategy(config.backtest.benchmark), {}, settings)
    evaluation = evaluate_signal(panel, config.evaluate.signal, params_panel.horizons,
                                 config.evaluate.quantiles)
    best = result.best if result.kind == "sweep" else 0
    directory = config.reports_dir / run_id
    directory.mkdir(parents=True, exist_ok=True)
    returns = result.returns[best].rename("strategy")
    bench = benchmark.returns[0].reindex(returns.index).fillna(0.0).rename("benchmark")
    pd.concat([returns, bench], axis=1).rename_axis("session").reset_index().to_parquet(
        directory / "returns.parquet")
    if "daily_turnover" in result.extra:
        result.extra["daily_turnover"].rename("turnover").rename_axis(
            "session").reset_index().to_parquet(directory / "turnover.parquet")
    if result.kind == "sweep":
        pd.DataFrame([{**p, "sharpe": m["sharpe"]} for p, m in
                      zip(result.params, result.metrics, strict=True)]).to_parquet(
            directory / "sweep.parquet")
    (directory / "evaluation.json").write_text(json.dumps(evaluation, default=str))
    (directory / "windows.json").write_text(json.dumps(result.extra.get("windows", []),
                                                       default=str))
    bt.save(wh, result, settings, run_id, signals)  # last: the artifacts exist once it is stored
    return {**render(config, wh, run_id), "cached": False}


def render(config: Config, wh, run_id: str) -> dict:
    """(Re)write the report of a stored run; `latest` picks the newest."""
    if run_id == "latest":
        run_id = wh.scalar("SELECT run_id FROM backtests ORDER BY created_at DESC LIMIT 1")
        if run_id is None:
            raise BacktestError("no backtest has been run yet: run `quant backtest` first")
    row = wh.con.execute("SELECT * FROM backtests WHERE run_id = ?", [run_id]).fetchone()
    if row is None:
        raise BacktestError(f"no backtest run {run_id!r}: see the backtests table "
                            "(`quant db status`)")
    columns = [d[0] for d in wh.con.description]
    record = dict(zip(columns, row, strict=True))
    directory = config.reports_dir / run_id
    if not (directory / "returns.parquet").exists():
        raise BacktestError(f"the artifacts of {run_id} are missing from {directory}: "
                            "run the backtest again")
    frame = pd.read_parquet(directory / "returns.parquet").set_index("session")
    frame.index = pd.DatetimeIndex(frame.index)
    turnover = None
    if (directory / "turnover.parquet").exists():
        turnover = pd.read_parquet(directory / "turnover.parquet").set_index("session")[
            "turnover"]
        turnover.index = pd.DatetimeIndex(turnover.index)
    sweep = pd.read_parquet(directory / "sweep.parquet") if (
        directory / "sweep.parquet").exists() else None
    windows = json.loads((directory / "windows.json").read_text())
    evaluation = json.loads((directory / "evaluation.json").read_text())
    metrics = json.loads(record["metrics"])
    run = {
        "run_id": run_id, "strategy": record["strategy"], "kind": record["kind"],
        "params": json.loads(record["params"]), "metrics": metrics,
        "provenance": {
            "period": f"{record['period_start']} .. {record['period_end']}",
            "strategy": record["strategy"], "kind": record["kind"],
            "params": record["params"], **json.loads(record["signals"] or "{}"),
            "settings": record["settings"], "created_at": str(record["created_at"]),
            "warehouse": str(config.warehouse_path),
        },
    }
    path = write_report(directory, run, frame["strategy"], frame["benchmark"], evaluation,
                        turnover, sweep, windows)
    return {"run_id": run_id, "report": str(path), "metrics_json": str(
        directory / "metrics.json"), "strategy": record["strategy"], "kind": record["kind"],
        "params": run["params"], "period": run["provenance"]["period"],
        "sharpe": metrics.get("sharpe"), "cagr": metrics.get("cagr"),
        "max_drawdown": metrics.get("max_drawdown"),
        "deflated_sharpe": (metrics.get("deflated_sharpe") or {}).get("dsr"),
        "pbo": (metrics.get("pbo") or {}).get("pbo")}
