"""`quant demo`: the main job on the bundled default, from an empty folder to a report.

1. a workspace; the bundled real prices (bokeh_sampledata) and the generated news corpus with
   its planted effect (strength 0.3) dropped in its inbox and ingested;
2. the news scored by the default local model (score mode);
3. the signal evaluated (IC, decay, quantiles);
4. the built-in strategies backtested, a sweep and a walk-forward test of the main one;
5. a learned model of the features fitted walk-forward (purged), its out-of-sample
   predictions evaluated and backtested (the `learned` strategy);
6. the HTML reports, a summary table and the report's path;
7. one `daily` job through the scheduler machinery (`schedule once daily`).

Running it again reuses everything already done: files already ingested, signals already
scored for this model and prompt, backtests already run on the same inputs.
"""

from __future__ import annotations

import shutil
import time
from datetime import date
from pathlib import Path

import polars as pl
from rich.console import Console

from data.samples import SAMPLE_END, sample_prices_path, write_sample_news
from data.warehouse import Warehouse
from quant.api import Workspace, init_workspace
from quant.artefact import write_file
from quant.batch.scheduler import run_once
from quant.config import load_config
from quant.evaluate import evaluate_signal
from quant.learned import fit_walk_forward
from quant.reports.runs import signal_period
from quant.settings import ModelSpec
from quant.tables import print_evaluation, progress_callback, safe, table_of

console = Console(stderr=True, soft_wrap=True, emoji=False)  # values are never cut


def _workspace(root: Path):
    fresh = not (root / "quant.toml").exists()
    init_workspace(root)
    if fresh:  # two years of news: shorter walk-forward windows than the default year
        toml = (root / "quant.toml").read_text().replace("[backtest]\n", "[backtest]\n"
                                                        "walk_forward_train = 126\n"
                                                        "walk_forward_test = 63\n", 1)
        write_file(root / "quant.toml", toml)
    return load_config(root)


def _ingest(ws: Workspace) -> list[dict]:
    prices_in = ws.config.inbox_dir / "prices" / "bokeh_stocks.csv.gz"
    if not prices_in.exists():
        shutil.copy(sample_prices_path(), prices_in)
    results = ws.ingest("prices", [prices_in], source="bokeh_sampledata")
    news_in = ws.config.inbox_dir / "news" / "sample_news.parquet"
    if not news_in.exists():
        with ws.warehouse() as wh:
            prices = wh.query("SELECT ticker, session, open, close, adj_close FROM prices")
        write_sample_news(news_in, prices, strength=0.3)
    results += ws.ingest("news", [news_in])
    return [r.as_dict() for r in results]


def _score(ws: Workspace, quiet: bool) -> dict:
    with progress_callback("scoring", quiet) as on_progress:
        return ws.score(on_progress=on_progress)


def _evaluate(ws: Workspace, quiet: bool) -> dict:
    evaluation = ws.evaluate()
    if not quiet:
        print_evaluation(evaluation, console)
    first = evaluation.first
    return {"rank_ic": first.rank_ic["mean"], "rank_ic_t": first.rank_ic["t_stat"],
            "pooled_ic": first.pooled_ic, "rows": first.rows}


def _backtests(ws: Workspace) -> list[dict]:
    backtests = [ws.backtest(name).summary for name in ws.config.backtest.strategies]
    backtests.append(ws.backtest("sentiment_long_short", sweep=True).summary)
    backtests.append(ws.backtest("sentiment_long_short", walk_forward=True).summary)
    return backtests


def _learned(ws: Workspace) -> dict:
    """A ridge on every feature's cross-sectional rank over the news period, refitted each
    quarter on an expanding, purged window after its first half-year; only its out-of-sample
    predictions are evaluated and traded."""
    panel = ws.panel()
    panel = panel.filter(pl.col("session").is_between(*signal_period(panel)))
    fitted = fit_walk_forward(panel, ModelSpec(kind="linear", test=63, min_train=126))
    fitted.save(ws.config.root / "models" / "demo")
    predicted = fitted.panel(panel)
    first = evaluate_signal(predicted, "prediction", (1,)).first
    return {"rank_ic": first.rank_ic["mean"], "rank_ic_t_hac": first.rank_ic["t_stat_hac"],
            "folds": fitted.folds.height, "top_features": fitted.importance["feature"][:3]
            .to_list(), "backtest": ws.backtest("learned", panel=predicted,
                                                notes=fitted.notes()).summary}


LIVE_FROM = date(2012, 7, 2)  # the demo's deployment goes live for the news period's last half


def _live(ws: Workspace) -> dict:
    """Deploy the long-short strategy at LIVE_FROM and replay every session after it, each
    decided with only what was known before its open; its paper record beside its backtest's
    expectation."""
    if "demo" not in {d.name for d in ws.deployments()}:  # frozen by an earlier demo run
        ws.deploy("demo", "sentiment_long_short", {}, LIVE_FROM)
    with ws.warehouse() as wh:
        end = wh.scalar("SELECT max(published_at)::DATE FROM documents WHERE kind = 'news'")
    sessions = ws.replay("demo", LIVE_FROM, end)
    record = ws.track("demo")
    return {"sessions": sessions,
            "paper_return": float((1 + record["returns"]).prod() - 1),
            "paper_sharpe": record["live"]["sharpe"],
            "backtest_sharpe": (record["backtest"] or {}).get("sharpe")}


def run_demo(root: Path, quiet: bool = False) -> dict:
    started = time.perf_counter()
    say = (lambda *a: None) if quiet else console.print
    config = _workspace(root)
    summary: dict = {"workspace": str(config.root)}
    timings: dict[str, float] = {}

    def step(name: str, message: str, fn):
        say(message)
        t0 = time.perf_counter()
        summary[name] = fn()
        timings[name] = round(time.perf_counter() - t0, 1)

    with Warehouse(config.warehouse_path) as wh:  # one connection for the demo's steps
        ws = Workspace.on(config, wh)
        step("ingest", "[bold]1/8[/] ingesting the bundled real prices and the generated news",
             lambda: _ingest(ws))
        step("score", "[bold]2/8[/] scoring the news with the default local model",
             lambda: _score(ws, quiet))
        step("evaluate", "[bold]3/8[/] evaluating the signal", lambda: _evaluate(ws, quiet))
        step("backtests", "[bold]4/8[/] backtesting the strategies (first use compiles "
             "vectorbt, ~20 s)", lambda: _backtests(ws))
        step("learned", "[bold]5/8[/] fitting a model of the features walk-forward and "
             "backtesting its out-of-sample predictions", lambda: _learned(ws))
        step("live", f"[bold]6/8[/] deploying sentiment_long_short live from {LIVE_FROM} and "
             "replaying each session as it would have been decided then",
             lambda: _live(ws))
    summary["backtests"].append(summary["learned"]["backtest"])
    say("[bold]7/8[/] reports written")
    summary["report"] = next(b for b in summary["backtests"]
                             if b["kind"] == "walk_forward")["report"]
    as_of = date(SAMPLE_END.year, SAMPLE_END.month, SAMPLE_END.day)
    step("daily", "[bold]8/8[/] one `daily` job through the scheduler machinery "
         "(schedule once daily)", lambda: run_once(config, "daily", as_of))
    summary["timings_s"] = timings
    summary["seconds"] = round(time.perf_counter() - started, 1)
    if not quiet:
        _print_summary(summary)
    return summary


def _print_summary(summary: dict) -> None:
    console.print(table_of([
        {"strategy": b["strategy"], "kind": b["kind"], "sharpe": _r(b["sharpe"]),
         "cagr": _r(b["cagr"]), "max dd": _r(b["max_drawdown"]),
         "deflated SR": _r(b["deflated_sharpe"]), "PBO": _r(b["pbo"]),
         "cached": b["cached"]} for b in summary["backtests"]], title="backtests"))
    live = summary["live"]
    console.print(f"live since {LIVE_FROM}: {live['sessions']} sessions replayed, paper return "
                  f"{live['paper_return']:.1%}, Sharpe {live['paper_sharpe']:.2f} (backtest "
                  f"before it: {_r(live['backtest_sharpe'])}); `quant track demo` for more")
    console.print(f"daily job: {summary['daily']['status']} "
                  f"{summary['daily'].get('counters')}")
    console.print(f"demo finished in {summary['seconds']} s ({summary['timings_s']})")
    console.print(f"report: [bold]{safe(summary['report'])}[/]")


def _r(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"
