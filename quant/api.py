"""The Python API: a workspace opened from a script or a notebook, with results as objects.

    import quant
    ws = quant.open("research/")                     # read-only unless write=True
    panel = ws.panel(horizons=(1, 5))                # the point-in-time panel (polars)
    ev = ws.evaluate(panel.with_columns(...), signal="my_signal")
    run = quant.open("research/", write=True).backtest("sentiment_long_short", sweep=True)
    run.figures()                                    # plotly figures; the run renders in Jupyter

The command line is a thin layer over these methods. Each call opens the warehouse and closes it
again, so a notebook never holds DuckDB's single writer lock between cells; a read-only
workspace refuses to write. Nothing here prints: progress goes to the callback a caller gives.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from data.calendar import get_calendar
from data.errors import DataError
from data.ingest import ingest_files
from data.search import search
from data.status import warehouse_status
from data.warehouse import Warehouse
from quant import lexicon_store
from quant.artefact import inside, write_file
from quant.config import CONFIG_NAME, DEFAULT_TOML, Config, load_config, workspace_config
from quant.days import day_of
from quant.errors import ConfigError
from quant.evaluate import evaluate_signal, horizons_in
from quant.features import with_features
from quant.learned import Fitted, fit_walk_forward
from quant.live.methods import LiveMethods
from quant.models import Model, load_request, make_engine, model
from quant.pipeline import build_panel, load_prices, no_signals, panel_from_warehouse
from quant.settings import ModelSpec
from quant.signals import PANEL_SIGNALS, prepare
from quant.text.distributed import ray_scorer
from quant.text.scoring import score_pending

if TYPE_CHECKING:
    from quant.evaluate import Evaluation
    from quant.reports.run_store import StoredRun
    from quant.signals import UserSignal

__all__ = ["Model", "Workspace", "init_workspace", "model", "open_workspace"]


def open_workspace(root: str | Path = ".", write: bool = False) -> Workspace:
    """A workspace made by `quant init` (or `init_workspace`); read-only unless `write`."""
    return Workspace(root, write)


def init_workspace(root: str | Path) -> dict:
    """Create (or complete) a workspace folder: quant.toml, the inbox folders, the warehouse
    at the current schema."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if not (root / CONFIG_NAME).exists():
        write_file(root / CONFIG_NAME, DEFAULT_TOML)
    config = load_config(root)
    for kind in ("prices", "news", "filings"):
        (config.inbox_dir / kind).mkdir(parents=True, exist_ok=True)
    with Warehouse(config.warehouse_path) as wh:
        version = wh.scalar("SELECT max(version) FROM schema_version")
    return {"workspace": str(config.root), "warehouse": str(config.warehouse_path),
            "schema_version": version}


def _runs():
    """quant.reports.runs: backtests, their store and reports."""
    from quant.reports import runs  # pandas and plotly: only when a backtest is run or read

    return runs


def _period(since: str | date | None, until: str | date | None) -> tuple:
    start, end = day_of(since), day_of(until)
    if start and end and start > end:
        raise ConfigError(f"since {start} is after until {end}: swap them")
    return start, end


def _cut(panel: pl.DataFrame, start: date | None, end: date | None) -> pl.DataFrame:
    """The panel's sessions from `start` to `end` (either open)."""
    if start is None and end is None:
        return panel
    cut = panel.filter(pl.col("session").is_between(start or date.min, end or date.max))
    if cut.is_empty():
        raise DataError(f"the panel has no session between {start or '...'} and "
                        f"{end or '...'}: it covers {panel['session'].min()} .. "
                        f"{panel['session'].max()}")
    return cut


class Workspace(LiveMethods):
    """A workspace folder: its quant.toml (`config`) and warehouse, as methods."""

    def __init__(self, root: str | Path = ".", write: bool = False) -> None:
        self.config: Config = workspace_config(root)
        self.writable = write
        self._open: Warehouse | None = None
        if not write and not self.config.warehouse_path.exists():
            raise DataError(f"no warehouse at {self.config.warehouse_path}: create the "
                            "workspace first (`quant init DIR` or quant.init_workspace(DIR))")

    @classmethod
    def on(cls, config: Config, wh: Warehouse) -> Workspace:
        """The workspace of `config` working in a warehouse its caller holds open (a batch
        job's, for all of its steps); writable unless that warehouse is read-only."""
        ws = cls.__new__(cls)
        ws.config, ws.writable, ws._open = config, not wh.read_only, wh
        return ws

    def __repr__(self) -> str:
        mode = "read-write" if self.writable else "read-only"
        return f"Workspace({str(self.config.root)!r}, {mode})"

    @contextmanager
    def warehouse(self, write: bool = False):
        """The warehouse for one operation (closed afterwards)."""
        if write and not self.writable:
            raise ConfigError(f"{self.config.root} was opened read-only: "
                              f"quant.open({str(self.config.root)!r}, write=True) to change it")
        if self._open is not None:
            yield self._open
            return
        with Warehouse(self.config.warehouse_path, read_only=not write) as wh:
            yield wh

    # ------------------------------------------------------------ data

    def status(self) -> dict:
        """Tables, row counts, date ranges and rejects."""
        with self.warehouse() as wh:
            return warehouse_status(wh)

    def ingest(self, kind: str, paths: Iterable[str | Path], **options: object) -> list:
        """Load files of `kind` (prices, news, filings); one `IngestResult` per file."""
        if kind == "news":
            options.setdefault("assume_zone", self.config.data.assume_zone)
        options.setdefault("max_bytes", self.config.data.max_bytes)
        with self.warehouse(write=True) as wh:
            results = ingest_files(wh, kind, paths, **options)
            lexicon_store.complete(wh)  # the dictionary's reading of what came in
            return results

    def documents(self, ticker: str | None = None, kind: str | None = None,
                  since: str | date | None = None, until: str | date | None = None,
                  limit: int | None = None) -> pl.DataFrame:
        """Documents, newest first, optionally for one ticker, kind and period."""
        with self.warehouse() as wh:
            return wh.con.execute("""
                SELECT doc_id, kind, source, published_at, tickers, title, body, form_type
                FROM documents
                WHERE ($ticker IS NULL OR list_contains(tickers, upper($ticker)))
                  AND ($kind IS NULL OR kind = $kind)
                  AND ($since IS NULL OR published_at >= $since::DATE)
                  AND ($until IS NULL OR published_at < $until::DATE + INTERVAL 1 DAY)
                ORDER BY published_at DESC LIMIT $limit""", {
                "ticker": ticker, "kind": kind, "since": day_of(since), "until": day_of(until),
                "limit": limit if limit is not None else 2**62}).pl()

    def search(self, query: str, ticker: str | None = None, kind: str | None = None,
               since: str | date | None = None, limit: int = 10) -> pl.DataFrame:
        """News and filing sections ranked by BM25."""
        with self.warehouse() as wh:
            return search(wh, query, ticker=ticker, kind=kind, since=day_of(since), limit=limit)

    def filings(self, ticker: str | None = None, table: str = "changes") -> pl.DataFrame:
        """What the filings say beyond their text, newest first: `changes` (each section's
        similarity to the company's previous filing of that form, the sentences added and
        removed), `facts` (the inline XBRL numbers) or `passages` (how each scored section
        was read, passage by passage)."""
        sources = {"changes": "filing_changes", "facts": "filing_facts",
                   "passages": "signal_passages"}
        if table not in sources:
            raise ValueError(f"table must be one of {', '.join(sources)}, not {table!r}")
        with self.warehouse() as wh:
            return wh.con.execute(f"""
                SELECT d.tickers, d.form_type, d.published_at, t.* FROM {sources[table]} t
                JOIN documents d USING (doc_id)
                WHERE $ticker IS NULL OR list_contains(d.tickers, upper($ticker))
                ORDER BY d.published_at DESC""", {"ticker": ticker}).pl()

    # ------------------------------------------------------------ signals

    def score(self, limit: int | None = None, mode: str | None = None, model: str | None = None,
              since: str | date | None = None, sample: bool = False,
              on_progress: Callable[[int, int], None] | None = None,
              engine: str | None = None) -> dict:
        """Score what the configured (or given) model has not scored yet; counts and speed.
        `on_progress(done, total)` is called as documents are scored."""
        day = day_of(since)
        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) if day else None
        mode = mode or self.config.model.mode
        with self.warehouse(write=True) as wh:  # a read-only workspace refuses before loading
            request = load_request(self.config, model)
            scorer_engine = make_engine(request.load(), self.config.model)
            scorer, extra = None, {}
            if (engine or self.config.engine) == "ray":  # pinned to this engine's model there
                scorer = ray_scorer(request, scorer_engine, mode, address=self.config.ray_address
                                    or None, workers=self.config.ray_workers)
                extra = {"engine": "ray", "workers": self.config.ray_workers}
            lexicon_store.complete(wh)  # units ingested before the dictionary was read
            return score_pending(wh, scorer_engine, mode, start, limit, progress=on_progress,
                                 sample=sample, scorer=scorer) | extra

    def panel(self, horizons: tuple[int, ...] | None = None, since: str | date | None = None,
              until: str | date | None = None, signals: bool = True) -> pl.DataFrame:
        """The point-in-time panel (look-ahead checked) of the latest signal set; with
        `signals=False`, prices and forward returns alone, for a signal of your own."""
        params = dataclasses.replace(self.config.pipeline,
                                     horizons=horizons or self.config.pipeline.horizons)
        start, end = _period(since, until)
        with self.warehouse() as wh:
            if signals:
                return panel_from_warehouse(wh, params, since=start, until=end,
                                            calendar=self.config.data.calendar)[0]
            prices = load_prices(wh, start, end)
        return build_panel(no_signals(), prices, params, get_calendar(self.config.data.calendar))

    def evaluate(self, panel: pl.DataFrame | None = None, signal: UserSignal | None = None,
                 horizons: tuple[int, ...] | None = None, since: str | date | None = None,
                 until: str | date | None = None, trust_column: bool = False) -> Evaluation:
        """IC, decay, quantiles, turnover and coverage of a signal (default: the configured
        signal of the warehouse's panel) over `since` .. `until`. A signal of your own is a
        polars expression or a function of the panel, checked point-in-time
        (`quant.signals`); a precomputed column needs `trust_column=True`."""
        signal = signal if signal is not None else self.config.evaluate.signal
        start, end = _period(since, until)
        if panel is None and isinstance(signal, str) and signal in PANEL_SIGNALS:
            return self._evaluate_warehouse(signal, horizons, start, end)
        panel = self.panel(horizons) if panel is None else panel
        panel, name = prepare(panel, signal, trust_column)  # on the whole history, then cut
        panel = _cut(panel, start, end)
        horizons = horizons or horizons_in(panel)
        return evaluate_signal(panel, name, horizons, self.config.evaluate.quantiles)

    def _evaluate_warehouse(self, signal: str, horizons, start, end) -> Evaluation:
        """A text signal of the warehouse's panel, with the signal set it was built from."""
        params = dataclasses.replace(self.config.pipeline,
                                     horizons=horizons or self.config.pipeline.horizons)
        with self.warehouse() as wh:
            panel, which = panel_from_warehouse(wh, params, since=start, until=end,
                                                calendar=self.config.data.calendar)
        evaluation = evaluate_signal(panel, signal, params.horizons,
                                     self.config.evaluate.quantiles)
        return dataclasses.replace(evaluation, signals=which.provenance())

    # ------------------------------------------------------------ learned models

    def features(self, names: list[str] | None = None, since: str | date | None = None,
                 until: str | date | None = None) -> pl.DataFrame:
        """The panel with the registered features (`quant.features`), point-in-time checked."""
        return with_features(self.panel(since=since, until=until), names)

    def fit_model(self, name: str = "model", since: str | date | None = None,
                  until: str | date | None = None, **spec: object):
        """Fit a combiner of the features walk-forward (`quant.settings.ModelSpec` fields as
        keywords), save it under models/NAME and return it (`Fitted`): its out-of-sample
        predictions, folds, feature importance and per-feature IC."""
        model_spec = ModelSpec.of(spec, "fit_model")
        folder = self._model_folder(name)
        if not self.writable:
            raise ConfigError(f"{self.config.root} was opened read-only, and fit_model saves "
                              f"models/{name}: quant.open({str(self.config.root)!r}, "
                              "write=True) to fit")
        fitted = fit_walk_forward(self.panel(self._with(model_spec.horizon), since, until),
                                  model_spec)
        fitted.save(folder)
        return fitted

    def predicted_panel(self, fitted) -> pl.DataFrame:
        """The panel over a fitted model's out-of-sample sessions, with its `prediction`:
        what `evaluate(..., signal="prediction")` and the `learned` strategy read."""
        sessions = fitted.predictions["session"]
        return fitted.panel(self.panel(self._with(fitted.spec.horizon), sessions.min(),
                                       sessions.max()))

    def _with(self, horizon: int) -> tuple[int, ...]:
        """The configured horizons and `horizon`."""
        return tuple(sorted({*self.config.pipeline.horizons, horizon}))

    def fitted_model(self, name: str = "model"):
        """A model saved by `fit_model` (or `quant model fit`)."""
        return Fitted.load(self._model_folder(name))

    def _model_folder(self, name: str) -> Path:
        return inside(self.config.root / "models", name, "model")

    # ------------------------------------------------------------ backtests

    def backtest(self, strategy: str, params: dict | None = None, sweep: bool = False,
                 walk_forward: bool = False, since: str | date | None = None,
                 until: str | date | None = None, panel: pl.DataFrame | None = None,
                 engine: str | None = None, notes: dict | None = None,
                 signal: UserSignal | None = None, trust_column: bool = False) -> StoredRun:
        """Run (or find, when it ran before) a backtest, store it and write its report.
        `params` hold in every mode (a sweep varies the rest of the grid). `signal`: what the
        strategy trades, a polars expression or a function of the panel checked
        point-in-time (`quant.signals`), or a column; a column of a given `panel` that the
        framework did not build needs `trust_column=True`. `notes` (e.g. `Fitted.notes()`)
        say where a given `panel` came from."""
        if sweep and walk_forward:
            raise ConfigError("choose sweep or walk_forward, not both")
        mode = "sweep" if sweep else "walk_forward" if walk_forward else "single"
        if signal is not None:
            if panel is None and not isinstance(signal, str):
                panel = self.panel()
            if panel is not None:
                panel, signal = prepare(panel, signal, trust_column)
                trust_column = True  # checked just now
            params = {**(params or {}), "signal": signal}
        with self.warehouse(write=True) as wh:
            return _runs().execute(self.config, wh, strategy, params, mode,
                                *_period(since, until), engine=engine, panel=panel,
                                notes=notes, trust_column=trust_column)

    def write_index(self, as_of: str | date | None = None) -> dict:
        """The reports' index page (the live deployments, then every stored run); its path."""
        with self.warehouse(write=True) as wh:
            return _runs().write_reports_index(self.config, wh, day_of(as_of))

    def run(self, run_id: str = "latest") -> StoredRun:
        """A stored run by id (`latest`: the newest)."""
        with self.warehouse() as wh:
            store = _runs().store_of(self.config, wh)
            return store.read(store.latest() if run_id == "latest" else run_id)

    def report(self, run: StoredRun | str = "latest") -> Path:
        """Write the run's HTML report (and metrics.json, equity.png); its path. A read-only
        workspace writes nothing: it gives the stored report's path, or refuses."""
        from quant.reports.report import write_report  # pandas, plotly: when a report is written

        run = self.run(run) if isinstance(run, str) else run
        folder = inside(self.config.reports_dir, run.run_id, "run")
        if not self.writable:
            if (folder / "report.html").is_file():
                return folder / "report.html"
            raise ConfigError(f"{self.config.root} was opened read-only and run {run.run_id} "
                              f"has no report yet: quant.open({str(self.config.root)!r}, "
                              "write=True).report(...) writes it")
        return write_report(folder, run, str(self.config.warehouse_path))

