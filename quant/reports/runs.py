"""A backtest run from end to end: panel -> strategy -> vectorbt -> run store -> report.

The period defaults to the sessions the signals cover (a backtest over years with no signal
says nothing about the signal). A run is stored under a deterministic id, so running the same
backtest again renders the stored one.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import date

import polars as pl

from quant.backtests import backtest as bt
from quant.backtests import positions
from quant.config import Config
from quant.errors import BacktestError
from quant.evaluate import evaluate_signal
from quant.pipeline import PanelParams, panel_from_warehouse
from quant.reports.report import write_index, write_report
from quant.reports.run_store import RunStore, StoredRun, run_id
from quant.reports.track_page import live_section
from quant.signal_store import SignalSet, filing_evidence
from quant.signals import check_panel, get_strategy_or_fail, prepare, traded_signal
from quant.text.distributed import ray_map
from strategies import get_strategy

MODES = ("single", "sweep", "walk_forward")
# Part of every run's key: a run stored by code that computed it otherwise is never reused.
# 2: params hold in sweeps and walk-forwards, the last partial window is traded, custom
# panels are keyed by panel_digest. 3: the book (positions, trades, account) is stored, and a
# market-neutral strategy is measured against cash.
RUN_FORMAT = 3


def signal_period(panel: pl.DataFrame) -> tuple[date, date]:
    live = panel.filter(pl.col("sentiment").is_not_null())
    if live.is_empty():
        raise BacktestError("no session in the period has a signal: score documents first, "
                            "or widen --since/--until")
    return live["session"].min(), live["session"].max()


def store_of(config: Config, wh) -> RunStore:
    return RunStore(wh, config.reports_dir)


def chunk_map(config: Config, engine: str | None) -> bt.ChunkMap:
    """Where a sweep's chunks run: here, or as Ray tasks."""
    if (engine or config.engine) != "ray":
        return bt.local_map

    return ray_map(config.ray_address or None)


def compute(config: Config, panel: pl.DataFrame, strategy_name: str, params: dict | None,
            mode: str, engine: str | None = None) -> bt.Result:
    """The backtest itself, on a panel already cut to its period."""
    if mode not in MODES:
        raise BacktestError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    strategy = get_strategy_or_fail(strategy_name)
    if mode == "sweep":  # params hold in every grid point, as in a single backtest
        return bt.sweep(panel, strategy, config.backtest, chunk_map=chunk_map(config, engine),
                        fixed=params)
    if mode == "walk_forward":
        return bt.walk_forward(panel, strategy, config.backtest,
                               chunk_map=chunk_map(config, engine), fixed=params)
    return bt.backtest(panel, strategy, params, config.backtest)


def execute(config: Config, wh, strategy_name: str, params: dict | None = None,
            mode: str = "single", since: date | None = None, until: date | None = None,
            params_panel: PanelParams | None = None, which: SignalSet | None = None,
            engine: str | None = None, panel: pl.DataFrame | None = None,
            notes: dict | None = None, trust_column: bool = False) -> StoredRun:
    """Run, store and report one backtest, or find it stored; the run, its `summary` saying
    which. `panel` replaces the warehouse's (a researcher's own signal columns); its content
    is part of the run's key. `notes` say where such a panel came from (a learned model's
    spec and features: `Fitted.notes()`) and are stored with the run for its report."""
    strategy = get_strategy_or_fail(strategy_name)
    if params is not None and not isinstance(params, dict):
        raise BacktestError(f"params are a dict of parameter name -> value (e.g. "
                            f"{{'quantile': 0.1}}), not {type(params).__name__}")
    params_panel = params_panel or config.pipeline
    traded = traded_signal(strategy, params)
    from_warehouse = panel is None
    if from_warehouse:
        panel, which = panel_from_warehouse(wh, params_panel, which,
                                            calendar=config.data.calendar)
    else:
        check_panel(panel)
    bt.require_columns(strategy, panel)  # before the signal: its message says how to get it
    if traded is not None:  # the warehouse's columns are the framework's own
        panel, _ = prepare(panel, traded, trust_column or from_warehouse)
    if from_warehouse:
        start, end = signal_period(panel)
        signals = which.provenance()
    else:
        start, end = panel["session"].min(), panel["session"].max()
        signals = {"panel": panel_digest(panel), **(notes or {})}
    first, last = start, end
    start, end = max(since, start) if since else start, min(until, end) if until else end
    if start > end:
        raise BacktestError(f"nothing to backtest between {since or first} and "
                            f"{until or last}: the data cover {first} .. {last}")
    panel = panel.filter(pl.col("session").is_between(start, end))
    if "n_docs" in panel.columns:
        signals["ok_signals"] = int(panel["n_docs"].sum())
    settings = config.backtest
    key = {"params": params or {}, "period": [start, end], "signals": signals,
           "settings": {f.name: getattr(settings, f.name) for f in fields(bt.Settings)},
           "panel": params_panel, "evaluate": asdict(config.evaluate), "format": RUN_FORMAT}
    rid = run_id(strategy_name, mode, key)
    store = store_of(config, wh)
    if store.has(rid):
        return rendered(config, wh, rid, cached=True)
    signals["signal"] = traded or config.evaluate.signal  # evaluated is traded, and said so
    if which is not None:  # not part of the key: derived from the signals that are
        signals["evidence"] = filing_evidence(wh, which, start, end)
    _compute_and_store(config, store, rid, panel, strategy, params, mode, engine, signals,
                       params_panel)
    write_reports_index(config, wh)
    return rendered(config, wh, rid, cached=False)


def write_reports_index(config: Config, wh, as_of: date | None = None) -> dict:
    """The reports' index page: the live deployments, then every stored run, newest first."""
    listing = store_of(config, wh).listing()
    path = write_index(config.reports_dir / "index.html", listing, as_of,
                       live_section(config.reports_dir))
    return {"index": str(path), "runs": len(listing)}


def _compute_and_store(config: Config, store: RunStore, rid: str, panel: pl.DataFrame,
                       strategy, params: dict | None, mode: str, engine: str | None,
                       signals: dict, params_panel: PanelParams) -> None:
    """The backtest, the market's, the chosen configuration's book and the signal's
    evaluation, stored under `rid`."""
    settings = config.backtest
    result = compute(config, panel, strategy.name, params, mode, engine)
    market = bt.backtest(panel, get_strategy(settings.benchmark), {}, settings)
    book = None if mode == "walk_forward" else positions.book(
        panel, strategy, result.params[result.best if mode == "sweep" else 0], settings)
    evaluation = evaluate_signal(panel, signals["signal"], params_panel.horizons,
                                 config.evaluate.quantiles)
    store.write(rid, result, market, evaluation, settings, signals,
                "cash" if getattr(strategy, "market_neutral", False) else "market", book)


def panel_digest(panel: pl.DataFrame) -> str:
    """A content key for a panel, the same in every process: floats rounded to 12
    significant digits first, because the panel's sums run in parallel, in any order, and
    differ by noise near 1e-16 from one process to the next; rows in any order."""
    floats = [c for c, t in panel.schema.items() if t.is_float()]
    canonical = panel.with_columns(pl.col(floats).round_sig_figs(12))
    total = int(canonical.hash_rows().cast(pl.UInt64).sum()) % (1 << 64)
    return f"{total:016x}-{panel.height}x{panel.width}"


def rendered(config: Config, wh, rid: str, **extra: object) -> StoredRun:
    """The stored run, read once, its report (re)written and its `summary` (plus `extra`).
    A cached run whose report is on disk keeps it: the run has not changed, and rendering
    takes seconds (`quant report` rewrites it)."""
    store = store_of(config, wh)
    stored = store.read(store.latest() if rid == "latest" else rid)
    path = store.folder(stored.run_id) / "report.html"
    if not (extra.get("cached") and path.exists()):
        path = write_report(store.folder(stored.run_id), stored, str(config.warehouse_path))
    stored.summary = summary(stored, path, store.folder(stored.run_id)) | extra
    return stored


def summary(stored: StoredRun, report_path, folder) -> dict:
    """What the CLI prints of a run: id, paths, period and the headline figures."""
    m = stored.metrics
    return {"run_id": stored.run_id, "report": str(report_path),
            "metrics_json": str(folder / "metrics.json"),
            "strategy": stored.strategy, "kind": stored.kind, "params": stored.params,
            "signal": stored.signals.get("signal"),
            "period": f"{stored.period[0]} .. {stored.period[1]}",
            "sharpe": m.get("sharpe"), "cagr": m.get("cagr"),
            "max_drawdown": m.get("max_drawdown"),
            "deflated_sharpe": (m.get("deflated_sharpe") or {}).get("dsr"),
            "pbo": (m.get("pbo") or {}).get("pbo")}
