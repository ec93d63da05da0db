"""`quant demo`: the main job on the bundled default, from an empty folder to a report.

1. a workspace; the bundled real prices (bokeh_sampledata) and the generated news corpus with
   its planted effect (strength 0.3) dropped in its inbox and ingested;
2. the news scored by the default local model (score mode);
3. the signal evaluated (IC, decay, quantiles);
4. the built-in strategies backtested, a sweep and a walk-forward test of the main one;
5. the HTML reports, a summary table and the report's path;
6. one `daily` job through the scheduler machinery (`schedule once daily`).

Running it again reuses everything already done: files already ingested, signals already
scored for this model and prompt, backtests already run on the same inputs.
"""

from __future__ import annotations

import shutil
import time
from datetime import date
from pathlib import Path

from rich.console import Console

from data.ingest import ingest_files
from data.samples import SAMPLE_END, sample_prices_path, write_sample_news
from data.warehouse import Warehouse
from quant.config import load_config
from quant.tables import print_evaluation, table_of

console = Console(stderr=True)


def run_demo(root: Path, quiet: bool = False) -> dict:
    from quant import runs
    from quant.scheduler import run_once
    from quant.workspace import evaluate_report, init_workspace, score_documents

    started = time.perf_counter()
    say = (lambda *a: None) if quiet else console.print
    fresh = not (root / "quant.toml").exists()
    init_workspace(root)
    if fresh:  # two years of news: shorter walk-forward windows than the default year
        toml = (root / "quant.toml").read_text().replace("[backtest]\n", "[backtest]\n"
                                                        "walk_forward_train = 126\n"
                                                        "walk_forward_test = 63\n", 1)
        (root / "quant.toml").write_text(toml)
    config = load_config(root)
    summary: dict = {"workspace": str(config.root)}
    timings: dict[str, float] = {}

    def step(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 1)

    with Warehouse(config.warehouse_path) as wh:
        t0 = time.perf_counter()
        say("[bold]1/6[/] ingesting the bundled real prices and the generated news")
        prices_in = config.inbox_dir / "prices" / "bokeh_stocks.csv.gz"
        if not prices_in.exists():
            shutil.copy(sample_prices_path(), prices_in)
        results = ingest_files(wh, "prices", [prices_in], source="bokeh_sampledata")
        news_in = config.inbox_dir / "news" / "sample_news.parquet"
        if not news_in.exists():
            prices = wh.query("SELECT ticker, session, open, close, adj_close FROM prices")
            write_sample_news(news_in, prices, strength=0.3)
        results += ingest_files(wh, "news", [news_in])
        summary["ingest"] = [r.as_dict() for r in results]
        step("ingest", t0)

        t0 = time.perf_counter()
        say("[bold]2/6[/] scoring the news with the default local model")
        summary["score"] = score_documents(config, wh, quiet=quiet)
        step("score", t0)

        t0 = time.perf_counter()
        say("[bold]3/6[/] evaluating the signal")
        evaluation = evaluate_report(config, wh)
        if not quiet:
            print_evaluation(evaluation, console)
        first = evaluation.first
        summary["evaluate"] = {"rank_ic": first.rank_ic["mean"],
                               "rank_ic_t": first.rank_ic["t_stat"],
                               "pooled_ic": first.pooled_ic, "rows": first.rows}
        step("evaluate", t0)

        t0 = time.perf_counter()
        say("[bold]4/6[/] backtesting the strategies (first use compiles vectorbt, ~20 s)")
        backtests = [runs.run(config, wh, name) for name in config.backtest.strategies]
        backtests.append(runs.run(config, wh, "sentiment_long_short", mode="sweep"))
        backtests.append(runs.run(config, wh, "sentiment_long_short", mode="walk_forward"))
        summary["backtests"] = backtests
        step("backtest", t0)

    t0 = time.perf_counter()
    say("[bold]5/6[/] reports written")
    main = next(b for b in backtests if b["kind"] == "walk_forward")
    summary["report"] = main["report"]
    step("report", t0)

    t0 = time.perf_counter()
    say("[bold]6/6[/] one `daily` job through the scheduler machinery (schedule once daily)")
    as_of = date(SAMPLE_END.year, SAMPLE_END.month, SAMPLE_END.day)
    summary["daily"] = run_once(config, "daily", as_of)
    step("daily", t0)
    summary["timings_s"] = timings
    summary["seconds"] = round(time.perf_counter() - started, 1)
    if not quiet:
        console.print(table_of([
            {"strategy": b["strategy"], "kind": b["kind"], "sharpe": _r(b["sharpe"]),
             "cagr": _r(b["cagr"]), "max dd": _r(b["max_drawdown"]),
             "deflated SR": _r(b["deflated_sharpe"]), "PBO": _r(b["pbo"]),
             "cached": b["cached"]} for b in backtests], title="backtests"))
        console.print(f"daily job: {summary['daily']['status']} "
                      f"{summary['daily'].get('counters')}")
        console.print(f"demo finished in {summary['seconds']} s ({timings})")
        console.print(f"report: [bold]{summary['report']}[/]")
    return summary


def _r(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"
