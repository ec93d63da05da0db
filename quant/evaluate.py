"""Factor evaluation of a panel signal, as alphalens and Qlib report it.

For any signal column: daily IC (Pearson) and rank IC (Spearman) with mean, t-stat and ICIR;
the pooled cross-sectional IC with a confidence interval; IC decay across horizons; quantile
mean forward returns and the top-minus-bottom spread; quantile turnover; coverage; hit rate;
calibration of confidence against realised direction. Rows that cannot be used are counted by
reason, never dropped silently.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl

from data.errors import DataError
from quant.hac import summary
from quant.quantiles import quantile_bins, quantile_daily, quantile_returns

MIN_NAMES = 3  # a cross-section needs at least this many names for a daily IC


def usable(panel: pl.DataFrame, signal: str, horizon: int) -> tuple[pl.DataFrame, dict]:
    """Rows with a signal and a forward return inside the universe, and the dropped counts."""
    if signal not in panel.columns:
        raise DataError(f"no signal column {signal!r} in the panel; columns: {panel.columns}")
    ret = f"fwd_ret_{horizon}"
    if ret not in panel.columns:
        raise DataError(f"no forward return for horizon {horizon}: add it to pipeline.horizons")
    dropped = {
        "outside_universe": panel.filter(~pl.col("in_universe")).height,
        "no_signal": panel.filter(pl.col("in_universe") & pl.col(signal).is_null()).height,
        "no_forward_return": panel.filter(pl.col("in_universe") & pl.col(signal).is_not_null()
                                          & pl.col(ret).is_null()).height,
    }
    rows = panel.filter(pl.col("in_universe") & pl.col(signal).is_not_null()
                        & pl.col(ret).is_not_null())
    names = rows.group_by("session").len()
    thin = names.filter(pl.col("len") < MIN_NAMES)
    dropped["thin_cross_section_rows"] = int(thin["len"].sum() or 0)
    rows = rows.join(thin.select("session"), on="session", how="anti")
    return rows, dropped


def daily_ic(rows: pl.DataFrame, signal: str, ret: str) -> pl.DataFrame:
    return (rows.group_by("session")
            .agg(ic=pl.corr(signal, ret, method="pearson"),
                 rank_ic=pl.corr(signal, ret, method="spearman"), names=pl.len())
            .drop_nans().sort("session"))


def pooled_ic(rows: pl.DataFrame, signal: str, ret: str) -> dict:
    """Correlation over all rows of signal and return, each demeaned within its session,
    with a 95% interval (Fisher z)."""
    demeaned = rows.select(
        s=pl.col(signal) - pl.col(signal).mean().over("session"),
        r=pl.col(ret) - pl.col(ret).mean().over("session"))
    n = demeaned.height
    if n < 4 or not (demeaned["s"].std() and demeaned["r"].std()):  # no spread: no correlation
        return {"ic": None, "low": None, "high": None, "n": n}
    ic = float(np.corrcoef(demeaned["s"].to_numpy(), demeaned["r"].to_numpy())[0, 1])
    z, se = math.atanh(max(min(ic, 0.999999), -0.999999)), 1 / math.sqrt(n - 3)
    return {"ic": ic, "low": math.tanh(z - 1.96 * se), "high": math.tanh(z + 1.96 * se), "n": n}


def calibration(rows: pl.DataFrame, ret: str, bins: int = 5) -> list[dict]:
    """Realised hit rate of the sentiment's direction per bin of the model's confidence."""
    if "confidence_mean" not in rows.columns:
        return []
    fresh = rows.filter(pl.col("confidence_mean").is_not_null() & (pl.col("sentiment") != 0))
    if fresh.is_empty():
        return []
    fresh = fresh.with_columns(
        bin=(pl.col("confidence_mean") * bins).floor().clip(0, bins - 1).cast(pl.Int32),
        hit=(pl.col("sentiment").sign() == pl.col(ret).sign()).cast(pl.Float64))
    table = fresh.group_by("bin").agg(confidence=pl.col("confidence_mean").mean(),
                                      hit_rate=pl.col("hit").mean(), n=pl.len()).sort("bin")
    return table.drop("bin").to_dicts()


@dataclass(frozen=True)
class HorizonResult:
    """The evaluation at one horizon (sessions of forward return)."""

    horizon: int
    ic: dict                      # daily Pearson IC: mean, std, t_stat, icir, n
    rank_ic: dict                 # daily Spearman IC, the same summary
    pooled_ic: dict               # ic, low, high (95%), n
    hit_rate: float | None
    rows: int
    dropped: dict                 # rows left out, by reason
    mean_return_by_quantile: dict = field(default_factory=dict)
    return_by_quantile_se: dict = field(default_factory=dict)
    top_minus_bottom: dict = field(default_factory=dict)
    turnover: dict = field(default_factory=dict)
    calibration: list = field(default_factory=list)
    names: int | None = None      # tickers behind the figures
    notes: list = field(default_factory=list)   # what limits them (a capped quantile count)

    def headline(self) -> dict:
        """The figures a summary table shows."""
        return {"rank_ic_mean": self.rank_ic["mean"], "rank_ic_t": self.rank_ic["t_stat"],
                "rank_ic_t_hac": self.rank_ic.get("t_stat_hac"),
                "sessions": self.rank_ic["n"], "names": self.names,
                "pooled_ic": self.pooled_ic["ic"],
                "pooled_ic_95": [self.pooled_ic["low"], self.pooled_ic["high"]],
                "rows": self.rows}


@dataclass(frozen=True)
class Evaluation:
    """A signal's evaluation: one result per horizon, the daily IC series, coverage, and
    (when it came from the warehouse) which signals were read."""

    signal: str
    horizons: dict[int, HorizonResult]
    daily_ic: pl.DataFrame        # session, ic, rank_ic at the first horizon
    coverage: dict
    signals: dict = field(default_factory=dict)
    quantile_daily: pl.DataFrame | None = None   # session, quantile, ret at the first horizon

    @property
    def first(self) -> HorizonResult:
        return next(iter(self.horizons.values()))

    def horizon(self, h: int) -> HorizonResult:
        return self.horizons[h]

    @property
    def decay(self) -> dict[int, float | None]:
        return {h: r.rank_ic["mean"] for h, r in self.horizons.items()}

    def table(self) -> pl.DataFrame:
        """One row per horizon: IC, rank IC, ICIR, pooled IC and its interval, spread, rows."""
        return pl.DataFrame([{
            "horizon": h, "ic": r.ic["mean"], "ic_t": r.ic["t_stat"],
            "ic_t_hac": r.ic.get("t_stat_hac"), "rank_ic": r.rank_ic["mean"],
            "rank_ic_t": r.rank_ic["t_stat"], "rank_ic_t_hac": r.rank_ic.get("t_stat_hac"),
            "icir": r.rank_ic["icir"],
            "pooled_ic": r.pooled_ic["ic"], "pooled_low": r.pooled_ic["low"],
            "pooled_high": r.pooled_ic["high"], "top_minus_bottom": r.top_minus_bottom.get(
                "mean"), "hit_rate": r.hit_rate, "sessions": r.rank_ic["n"], "names": r.names,
            "rows": r.rows}
            for h, r in self.horizons.items()], infer_schema_length=None)

    def figures(self) -> dict:
        """Plotly figures by name: the IC series, its monthly means, distribution and QQ
        plot, its decay, the quantile returns; in a notebook each also leaves a static PNG."""
        from quant.factor_figures import notebook_figures  # plotly: only when asked for

        return notebook_figures(self)

    def __repr__(self) -> str:
        first = self.first
        return (f"Evaluation({self.signal!r}, horizons={list(self.horizons)}, "
                f"rank_ic={first.rank_ic['mean']}, pooled_ic={first.pooled_ic['ic']}, "
                f"rows={first.rows})")

    def _repr_html_(self) -> str:
        return f"<b>{self!r}</b>" + self.table()._repr_html_()

    def to_json(self) -> dict:
        """Plain JSON types (what `quant evaluate --json` prints and a run stores)."""
        out = {"signal": self.signal,
               "horizons": {h: {k: v for k, v in asdict(r).items() if k != "horizon"}
                            for h, r in self.horizons.items()},
               "decay": self.decay, "daily_ic": self.daily_ic.to_dicts(),
               "coverage": self.coverage}
        if self.quantile_daily is not None:
            out["quantile_daily"] = self.quantile_daily.to_dicts()
        return out | ({"signals": self.signals} if self.signals else {})

    @classmethod
    def from_json(cls, data: dict) -> Evaluation:
        horizons = {int(h): HorizonResult(int(h), **r) for h, r in data["horizons"].items()}
        daily = pl.DataFrame(data.get("daily_ic") or None, schema={
            "session": pl.String, "ic": pl.Float64, "rank_ic": pl.Float64}, strict=False)
        daily = daily.with_columns(pl.col("session").str.to_date())
        quantiles = data.get("quantile_daily")
        if quantiles is not None:
            quantiles = pl.DataFrame(quantiles or None, schema={
                "session": pl.String, "quantile": pl.Int32, "ret": pl.Float64}, strict=False
            ).with_columns(pl.col("session").str.to_date())
        return cls(data["signal"], horizons, daily, data["coverage"], data.get("signals", {}),
                   quantiles)


def evaluate_signal(panel: pl.DataFrame, signal: str = "sentiment_z",
                    horizons: tuple[int, ...] = (1, 5, 10, 20), quantiles: int = 5
                    ) -> Evaluation:
    """The full evaluation of one signal column. Quantiles are capped by the cross-section:
    a session of n names fills at most n bins, so more bins than the typical session has
    names would report bins filled only on some days (the cap is in each horizon's notes)."""
    check_evaluable(panel, signal)
    horizons = tuple(h for h in horizons if f"fwd_ret_{h}" in panel.columns) or horizons
    results, daily, by_quantile = {}, None, None
    for h in horizons:
        ret = f"fwd_ret_{h}"
        rows, dropped = usable(panel, signal, h)
        ics = daily_ic(rows, signal, ret)
        bins, notes = quantile_bins(rows, quantiles)
        extra = quantile_returns(rows, signal, ret, bins, h) if rows.height else {}
        extra["notes"] = notes
        extra["names"] = rows["ticker"].n_unique()
        if daily is None:
            daily = ics.select("session", "ic", "rank_ic")
            extra["calibration"] = calibration(rows, ret)
            by_quantile = quantile_daily(rows, signal, ret, bins)
        results[h] = HorizonResult(
            h, summary(ics["ic"], h), summary(ics["rank_ic"], h),
            pooled_ic(rows, signal, ret),
            float((rows[signal].sign() == rows[ret].sign()).mean()) if rows.height else None,
            rows.height, dropped, **extra)
    return Evaluation(signal, results, daily, coverage(panel, signal), {}, by_quantile)


def horizons_in(panel: pl.DataFrame) -> tuple[int, ...]:
    """The horizons of the panel's forward-return columns (`fwd_ret_N`), shortest first."""
    return tuple(sorted(int(c.removeprefix("fwd_ret_")) for c in panel.columns
                        if c.startswith("fwd_ret_") and c.removeprefix("fwd_ret_").isdigit()))


def check_evaluable(panel: pl.DataFrame, signal: str) -> None:
    """A clear DataError for a panel or signal that cannot be evaluated."""
    import difflib

    missing = [c for c in ("session", "ticker", "in_universe") if c not in panel.columns]
    if missing:
        raise DataError(f"the panel lacks {', '.join(missing)}: evaluate a panel built by "
                        "Workspace.panel (or quant.pipeline.build_panel), with your columns added")
    if not horizons_in(panel):
        raise DataError("the panel has no forward return column (fwd_ret_N): build it with "
                        "Workspace.panel(horizons=(1, 5, ...)) and keep those columns")
    if signal not in panel.columns:
        close = difflib.get_close_matches(signal, panel.columns, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "add it with with_columns"
        raise DataError(f"no signal column {signal!r} in the panel: {hint}")
    if not panel.schema[signal].is_numeric():
        raise DataError(f"signal column {signal!r} is {panel.schema[signal]}, not numeric: "
                        "cast it to a number (or map categories to scores) first")
    check_varies(panel, signal, "signal")


def check_varies(panel: pl.DataFrame, column: str, what: str) -> None:
    """A DataError, with the numbers that fell short, for a column no cross-sectional
    statistic can read: no finite value in the universe, one value everywhere, or never
    MIN_NAMES names on one session."""
    values = panel.filter(pl.col("in_universe") & pl.col(column).is_not_null()
                          & pl.col(column).cast(pl.Float64).is_finite())
    universe = panel.filter(pl.col("in_universe"))
    if values.is_empty():
        raise DataError(f"{what} {column!r} has no finite value in the universe over the "
                        f"panel's {universe['session'].n_unique()} sessions: nothing to measure")
    if values[column].n_unique() == 1:
        raise DataError(f"{what} {column!r} is constant ({values[column][0]} on all "
                        f"{values.height} rows with a value): a cross-sectional statistic "
                        "needs it to differ across names")
    widest = int(values.group_by("session").len()["len"].max())
    if widest < MIN_NAMES:
        raise DataError(f"{what} {column!r} has at most {widest} names on any session "
                        f"({values['ticker'].n_unique()} tickers in all): a cross-section "
                        f"needs at least {MIN_NAMES}")


def coverage(panel: pl.DataFrame, signal: str) -> dict:
    """How much of the universe (tickers, sessions, rows) the signal covers."""
    in_universe = panel.filter(pl.col("in_universe"))
    with_signal = in_universe.filter(pl.col(signal).is_not_null())
    return {
        "tickers": with_signal["ticker"].n_unique(),
        "universe_tickers": in_universe["ticker"].n_unique(),
        "sessions": with_signal["session"].n_unique(),
        "universe_sessions": in_universe["session"].n_unique(),
        "row_share": with_signal.height / in_universe.height if in_universe.height else 0.0,
    }
