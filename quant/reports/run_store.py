"""Stored backtest runs: a `backtests` row and the run's artifacts in `reports/<run_id>/`,
written and read back by one pair of methods so the two never drift apart.

A run id is deterministic (strategy, kind and everything that shaped the result), so running
the same backtest again finds the stored one. The row is written last: a run whose row exists
has its artifacts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import polars as pl

from data.warehouse import Warehouse
from quant import artefact, jsonable
from quant.backtests.backtest import Result, Settings
from quant.backtests.positions import costs
from quant.backtests.stats import PERIODS
from quant.backtests.tearsheet import tear_sheet
from quant.errors import BacktestError
from quant.evaluate import Evaluation


def run_id(strategy: str, kind: str, key: object) -> str:
    """Deterministic: the same strategy, parameters, period, signals and costs give the same
    id."""
    digest = hashlib.sha256(json.dumps([strategy, kind, key], default=str, sort_keys=True)
                            .encode()).hexdigest()[:10]
    return f"{strategy}-{kind}-{digest}"


@dataclass
class StoredRun:
    """What a report is made of."""

    run_id: str
    strategy: str
    kind: str
    params: dict
    metrics: dict
    period: tuple[date, date]
    signals: dict
    settings: dict
    created_at: datetime
    returns: pd.DataFrame            # session index; strategy, benchmark
    turnover: pd.Series | None       # the traded share of the book per session
    sweep: pd.DataFrame | None       # one row per configuration: its parameters and Sharpe
    windows: list[dict]              # walk-forward windows
    evaluation: Evaluation
    summary: dict = field(default_factory=dict)   # what `runs.execute` said of it (cached, paths)
    folder: Path | None = None                    # where its files are

    @property
    def market(self) -> pd.Series:
        """The market's daily returns (runs stored before they were kept: the benchmark,
        which was then always the market)."""
        return self.returns["market"] if "market" in self.returns else self.returns["benchmark"]

    @property
    def benchmark(self) -> str:
        """What the run is measured against: `cash` (a market-neutral book) or the market
        strategy's name."""
        return self.settings.get("benchmark", "buy_and_hold")

    def weights(self) -> pl.DataFrame:
        """The weights the strategy targeted and those held after trading: session, ticker,
        target (NaN: no order), weight."""
        return self._book("positions").select("session", "ticker", "target", "weight")

    def positions(self) -> pl.DataFrame:
        """Every holding each session: session, ticker, target, shares, price, value,
        weight (of the account's value)."""
        return self._book("positions")

    def trades(self) -> pl.DataFrame:
        """Every fill: session, ticker, side, shares, price, fees."""
        return self._book("trades")

    def account(self) -> pl.DataFrame:
        """Each session's value, cash, fees paid, and long, short, gross and net exposure;
        its value gives back the stored returns exactly."""
        return self._book("account")

    def _book(self, name: str) -> pl.DataFrame:
        path = (self.folder or Path("")) / f"{name}.parquet"
        if self.folder is None or not path.is_file():
            raise BacktestError(f"run {self.run_id} has no {name}: a walk-forward stitches "
                                "windows of several configurations and keeps no single book; "
                                "run a single backtest or a sweep for one")
        return pl.read_parquet(path)

    def __repr__(self) -> str:
        m = self.metrics
        return (f"StoredRun({self.run_id!r}, {self.period[0]}..{self.period[1]}, "
                f"sharpe={m.get('sharpe', 0):.3f}, cagr={m.get('cagr', 0):.3f}, "
                f"max_drawdown={m.get('max_drawdown', 0):.3f})")

    def metrics_frame(self) -> pl.DataFrame:
        """The headline metrics, one row per metric (nested ones flattened)."""
        rows = [{"metric": f"{k}.{k2}" if isinstance(v, dict) else k,
                 "value": float(v2) if isinstance(v2, (int, float)) else None}
                for k, v in self.metrics.items()
                for k2, v2 in (v.items() if isinstance(v, dict) else [(k, v)])]
        return pl.DataFrame(rows, schema={"metric": pl.String, "value": pl.Float64})

    def tear_sheet(self) -> dict:
        """Against the benchmark, the distribution, calendar returns and the worst drawdowns
        (`quant.backtests.tearsheet`), as plain data; the report draws the same."""
        return tear_sheet(self.returns["strategy"], self.returns["benchmark"],
                          self.market, self._costs())

    def _costs(self) -> dict | None:
        try:
            return costs(self.account(), self.settings.get("init_cash", 1e6), PERIODS)
        except BacktestError:
            return None

    def figures(self) -> dict:
        """The report's plotly figures by name (equity, drawdown, ..., sweep, windows); in a
        notebook each also leaves a static PNG (`quant.notebook_figure`)."""
        from quant.reports.report import notebook_figures  # plotly: only when asked for

        return notebook_figures(self)

    def _repr_html_(self) -> str:
        return f"<b>{self!r}</b>" + self.metrics_frame()._repr_html_()


def headline(result: Result) -> dict:
    """The row's metrics: the chosen configuration's, with the sweep's honest statistics."""
    chosen = result.best if result.kind == "sweep" else 0
    metrics = dict(result.metrics[chosen])
    metrics |= {k: v for k, v in result.extra.items() if k in ("deflated_sharpe", "pbo")}
    if result.kind == "sweep":
        metrics["configurations"] = len(result.params)
    if result.kind == "walk_forward":
        metrics["windows"] = len(result.extra["windows"])
        metrics |= result.extra["sweep"]
    return metrics


class RunStore:
    def __init__(self, wh: Warehouse, directory: Path) -> None:
        self.wh, self.directory = wh, directory

    def folder(self, rid: str) -> Path:
        return artefact.inside(self.directory, rid, "run")

    def has(self, rid: str) -> bool:
        return (self.folder(rid) / artefact.MANIFEST).exists() and bool(self.wh.scalar(
            "SELECT count(*) FROM backtests WHERE run_id = ?", [rid]))

    def latest(self) -> str:
        rid = self.wh.scalar("SELECT run_id FROM backtests ORDER BY created_at DESC LIMIT 1")
        if rid is None:
            raise BacktestError("no backtest has been run yet: run `quant backtest` first")
        return rid

    def write(self, rid: str, result: Result, market: Result, evaluation: Evaluation,
              settings: Settings, signals: dict, benchmark: str = "market",
              book: dict[str, pl.DataFrame] | None = None) -> None:
        """The run's files and row. `market` is the market strategy's result; `benchmark` is
        what the run is measured against: `market`, or `cash` (zero) for a market-neutral
        book. `book`: the chosen configuration's positions, trades and account
        (`quant.backtests.positions`)."""
        chosen = result.best if result.kind == "sweep" else 0
        returns = result.returns[chosen].rename("strategy")
        market_returns = market.returns[0].reindex(returns.index).fillna(0.0).rename("market")
        against = (market_returns * 0.0 if benchmark == "cash" else market_returns).rename(
            "benchmark")
        frames = {"returns.parquet": pd.concat([returns, against, market_returns], axis=1)}
        if result.kind != "walk_forward":
            frames["turnover.parquet"] = result.turnover[chosen].fillna(0.0).rename("turnover")
        texts = {"evaluation.json": json.dumps(evaluation.to_json(), default=jsonable.default),
                 "windows.json": json.dumps(result.extra.get("windows", []),
                                            default=jsonable.default)}
        files = {name: _parquet(frame.rename_axis("session").reset_index())
                 for name, frame in frames.items()}
        if result.kind == "sweep":
            files["sweep.parquet"] = _parquet(pd.DataFrame(
                [{**p, "sharpe": m["sharpe"]}
                 for p, m in zip(result.params, result.metrics, strict=True)]))
        files |= {name: _text(text) for name, text in texts.items()}
        files |= {f"{name}.parquet": frame.write_parquet for name, frame in (book or {}).items()}
        stored_settings = {**asdict(settings), "benchmark": benchmark if benchmark == "cash"
                           else getattr(settings, "benchmark", "market")}
        # The artifacts whole first, the row last: a run whose row exists has its artifacts.
        artefact.write(self.folder(rid), files)
        index = result.returns.index
        self.wh.con.execute(
            "INSERT INTO backtests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [rid, result.strategy, result.kind,
             json.dumps(result.params[chosen], default=str), index[0].date(),
             index[-1].date(), json.dumps(headline(result), default=jsonable.default),
             json.dumps(signals), json.dumps(stored_settings), datetime.now(timezone.utc)])

    def listing(self) -> list[dict]:
        """Every stored run, newest first: id, strategy, kind, period and headline figures."""
        return self.wh.query("""
            SELECT run_id, strategy, kind, period_start, period_end,
                   TRY_CAST(metrics->>'sharpe' AS DOUBLE) AS sharpe,
                   TRY_CAST(metrics->>'cagr' AS DOUBLE) AS cagr,
                   TRY_CAST(metrics->>'max_drawdown' AS DOUBLE) AS max_drawdown,
                   TRY_CAST(metrics->'deflated_sharpe'->>'dsr' AS DOUBLE) AS deflated_sharpe,
                   created_at
            FROM backtests ORDER BY created_at DESC""").to_dicts()

    def read(self, rid: str) -> StoredRun:
        row = self.wh.con.execute("SELECT * FROM backtests WHERE run_id = ?", [rid]).fetchone()
        if row is None:
            raise BacktestError(f"no backtest run {rid!r}: see the backtests table "
                                "(`quant db status`)")
        record = dict(zip([d[0] for d in self.wh.con.description], row, strict=True))
        folder = artefact.verified(self.folder(rid), f"artifacts of run {rid}",
                                   "run the backtest again")
        turnover = _series(folder / "turnover.parquet", "turnover")
        sweep = pd.read_parquet(folder / "sweep.parquet") if (
            folder / "sweep.parquet").exists() else None
        return StoredRun(
            rid, record["strategy"], record["kind"], json.loads(record["params"]),
            json.loads(record["metrics"]), (record["period_start"], record["period_end"]),
            json.loads(record["signals"] or "{}"), json.loads(record["settings"] or "{}"),
            record["created_at"], _frame(folder / "returns.parquet"), turnover, sweep,
            json.loads((folder / "windows.json").read_text()),
            Evaluation.from_json(json.loads((folder / "evaluation.json").read_text())),
            folder=folder)


def _parquet(frame: pd.DataFrame):
    return frame.to_parquet


def _text(text: str):
    return lambda path: path.write_text(text)


def _frame(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path).set_index("session")
    frame.index = pd.DatetimeIndex(frame.index)
    return frame


def _series(path: Path, column: str) -> pd.Series | None:
    return _frame(path)[column] if path.exists() else None
