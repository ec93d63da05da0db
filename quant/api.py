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

from data.errors import DataError
from data.warehouse import Warehouse
from quant.config import Config, workspace_config
from quant.days import day_of
from quant.errors import ConfigError
from quant.live import LiveMethods
from quant.settings import ModelSpec

if TYPE_CHECKING:
    from quant.evaluate import Evaluation
    from quant.run_store import StoredRun
    from quant.signals import UserSignal


def open_workspace(root: str | Path = ".", write: bool = False) -> Workspace:
    """A workspace made by `quant init` (or `init_workspace`); read-only unless `write`."""
    return Workspace(root, write)


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
        if not write and not self.config.warehouse_path.exists():
            raise DataError(f"no warehouse at {self.config.warehouse_path}: create the "
                            "workspace first (`quant init DIR` or quant.init_workspace(DIR))")

    def __repr__(self) -> str:
        mode = "read-write" if self.writable else "read-only"
        return f"Workspace({str(self.config.root)!r}, {mode})"

    @contextmanager
    def warehouse(self, write: bool = False):
        """The warehouse for one operation (closed afterwards)."""
        if write and not self.writable:
            raise ConfigError(f"{self.config.root} was opened read-only: "
                              f"quant.open({str(self.config.root)!r}, write=True) to change it")
        with Warehouse(self.config.warehouse_path, read_only=not write) as wh:
            yield wh

    # ------------------------------------------------------------ data

    def status(self) -> dict:
        """Tables, row counts, date ranges and rejects."""
        from data.status import warehouse_status

        with self.warehouse() as wh:
            return warehouse_status(wh)

    def ingest(self, kind: str, paths: Iterable[str | Path], **options: object) -> list:
        """Load files of `kind` (prices, news, filings); one `IngestResult` per file."""
        from data.ingest import ingest_files

        if kind == "news":
            options.setdefault("assume_zone", self.config.data.assume_zone)
        options.setdefault("max_bytes", self.config.data.max_bytes)
        with self.warehouse(write=True) as wh:
            return ingest_files(wh, kind, paths, **options)

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
        from data.search import search

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
        from quant.workspace import score_documents

        day = day_of(since)
        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) if day else None
        with self.warehouse(write=True) as wh:
            return score_documents(self.config, wh, mode, model, start, limit,
                                   on_progress=on_progress, engine_name=engine, sample=sample)

    def panel(self, horizons: tuple[int, ...] | None = None, since: str | date | None = None,
              until: str | date | None = None, signals: bool = True) -> pl.DataFrame:
        """The point-in-time panel (look-ahead checked) of the latest signal set; with
        `signals=False`, prices and forward returns alone, for a signal of your own."""
        from data.calendar import get_calendar
        from quant.pipeline import build_panel, load_prices, no_signals, panel_from_warehouse

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
        from quant.evaluate import evaluate_signal, horizons_in  # numpy: when evaluating
        from quant.signals import PANEL_SIGNALS, prepare
        from quant.workspace import evaluate_report

        signal = signal if signal is not None else self.config.evaluate.signal
        start, end = _period(since, until)
        if panel is None and isinstance(signal, str) and signal in PANEL_SIGNALS:
            with self.warehouse() as wh:
                return evaluate_report(self.config, wh, signal, horizons, start, end)
        panel = self.panel(horizons) if panel is None else panel
        panel, name = prepare(panel, signal, trust_column)  # on the whole history, then cut
        panel = _cut(panel, start, end)
        horizons = horizons or horizons_in(panel)
        return evaluate_signal(panel, name, horizons, self.config.evaluate.quantiles)

    # ------------------------------------------------------------ learned models

    def features(self, names: list[str] | None = None, since: str | date | None = None,
                 until: str | date | None = None) -> pl.DataFrame:
        """The panel with the registered features (`quant.features`), point-in-time checked."""
        from quant.features import with_features

        return with_features(self.panel(since=since, until=until), names)

    def fit_model(self, name: str = "model", since: str | date | None = None,
                  until: str | date | None = None, **spec: object):
        """Fit a combiner of the features walk-forward (`quant.settings.ModelSpec` fields as
        keywords), save it under models/NAME and return it (`Fitted`): its out-of-sample
        predictions, folds, feature importance and per-feature IC."""
        from quant.learned import fit_walk_forward

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
        from quant.learned import Fitted

        return Fitted.load(self._model_folder(name))

    def _model_folder(self, name: str) -> Path:
        from quant.artefact import inside

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
        from quant import runs  # vectorbt, pandas and scipy: only when a backtest runs
        from quant.signals import prepare

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
            return runs.execute(self.config, wh, strategy, params, mode,
                                *_period(since, until), engine=engine, panel=panel,
                                notes=notes, trust_column=trust_column)

    def run(self, run_id: str = "latest") -> StoredRun:
        """A stored run by id (`latest`: the newest)."""
        from quant import runs

        with self.warehouse() as wh:
            store = runs.store_of(self.config, wh)
            return store.read(store.latest() if run_id == "latest" else run_id)

    def report(self, run: StoredRun | str = "latest") -> Path:
        """Write the run's HTML report (and metrics.json, equity.png); its path. A read-only
        workspace writes nothing: it gives the stored report's path, or refuses."""
        from quant.artefact import inside
        from quant.report import write_report

        run = self.run(run) if isinstance(run, str) else run
        folder = inside(self.config.reports_dir, run.run_id, "run")
        if not self.writable:
            if (folder / "report.html").is_file():
                return folder / "report.html"
            raise ConfigError(f"{self.config.root} was opened read-only and run {run.run_id} "
                              f"has no report yet: quant.open({str(self.config.root)!r}, "
                              "write=True).report(...) writes it")
        return write_report(folder, run, str(self.config.warehouse_path))


class Model:
    """A loaded model with its engine, for scoring texts directly (no warehouse)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.loaded = engine.loaded

    def __repr__(self) -> str:
        return (f"Model({self.loaded.model_id!r}, precision={self.loaded.precision!r}, "
                f"fingerprint={self.loaded.fingerprint!r})")

    def score(self, texts: str | list[str], ticker: str = "", mode: str = "score"
              ) -> pl.DataFrame:
        """One row per text: status, sentiment, confidence, event type, reason."""
        from llm.engine import DocInput

        texts = [texts] if isinstance(texts, str) else list(texts)
        results = self.engine.run([DocInput(ticker, t) for t in texts], mode)
        return pl.DataFrame([{
            "text": t, "status": r.status,
            "sentiment": r.fields.sentiment if r.fields else None,
            "confidence": r.fields.confidence if r.fields else None,
            "event_type": r.fields.event_type.value if r.fields else None,
            "reason": r.reason} for t, r in zip(texts, results, strict=True)],
            schema_overrides={"sentiment": pl.Float64, "confidence": pl.Float64,
                              "event_type": pl.String, "reason": pl.String})


def model(spec: str = "default", precision: str = "auto", adapter: str | None = None,
          **engine_settings: object) -> Model:
    """Load a model (`default`, a Hugging Face directory, a .gguf file) for ad-hoc scoring;
    `engine_settings` as `llm.engine.EngineSettings` (batch_size, events, ...)."""
    import llm
    from llm.engine import Engine

    return Model(Engine(llm.load(spec, precision, adapter=adapter), **engine_settings))
