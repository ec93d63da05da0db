import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from data.ingest import ingest_files
from data.samples import sample_prices_path, write_sample_news
from quant.api import init_workspace
from quant.config import load_config
from quant.reports import runs
from tests.quant.helpers import write_signals


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A workspace with the bundled prices, the generated news and fixture signals."""
    from data.warehouse import Warehouse

    root = tmp_path_factory.mktemp("ws")
    init_workspace(root)
    (root / "quant.toml").write_text((root / "quant.toml").read_text().replace(
        "[backtest]", "[backtest]\nwalk_forward_train = 126\nwalk_forward_test = 63"))
    config = load_config(root)
    with Warehouse(config.warehouse_path) as wh:
        ingest_files(wh, "prices", [sample_prices_path()])
        prices = wh.query("SELECT ticker, session, open, close, adj_close FROM prices")
        ingest_files(wh, "news", [write_sample_news(root / "news.parquet", prices)])
        write_signals(wh, wh.query("""
            SELECT doc_id, tickers[1] AS ticker, published_at,
                   meta->>'event_type' AS event_type, 0.8 AS confidence,
                   least(greatest((meta->>'planted_tone')::DOUBLE / 2, -1), 1) AS sentiment
            FROM documents"""))
    return config


@pytest.fixture(scope="module")
def reports(workspace):
    from data.warehouse import Warehouse

    with Warehouse(workspace.warehouse_path) as wh:
        return {mode: runs.execute(workspace, wh, "sentiment_long_short", {}, mode).summary
                for mode in ("single", "sweep", "walk_forward")}


def test_runs_are_stored_with_their_artifacts(workspace, reports):
    from data.warehouse import Warehouse

    with Warehouse(workspace.warehouse_path, read_only=True) as wh:
        stored = wh.query("SELECT run_id, kind, metrics FROM backtests")
    assert stored.height == 3 and set(stored["kind"]) == {"single", "sweep", "walk_forward"}
    sweep = json.loads(stored.filter(stored["kind"] == "sweep")["metrics"][0])
    assert sweep["configurations"] == 8 and 0 <= sweep["deflated_sharpe"]["dsr"] <= 1
    for summary in reports.values():
        folder = workspace.reports_dir / summary["run_id"]
        assert {"report.html", "metrics.json", "equity.png"} <= {p.name for p in
                                                                   folder.iterdir()}
        assert (folder / "equity.png").read_bytes()[:4] == b"\x89PNG"
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["provenance"]["fingerprint"] == "fixture"
    # The planted effect makes the single run profitable against its costs.
    assert reports["single"]["sharpe"] > 1


def test_report_opens_with_no_network(reports):
    """One local copy of plotly.js, shared by the folder's reports; nothing fetched."""
    import plotly

    page = open(reports["sweep"]["report"]).read()
    scripts = re.findall(r'<script[^>]*\bsrc="([^"]+)"', page)
    assert scripts == [f"../plotly-{plotly.__version__}.min.js"]
    assert (Path(reports["sweep"]["report"]).parent / scripts[0]).resolve().stat().st_size > 1e6
    assert len(page) < 2e6   # the library is not inlined in each report
    for div in ("equity", "drawdown", "rolling_sharpe", "monthly", "ic_series", "ic_decay",
                "quantiles", "sweep"):
        assert f'id="{div}"' in page, div
    assert "Provenance" in page and "Signal coverage" in page


def test_the_first_screen_says_what_ran_and_how_far_to_trust_it(reports):
    """The headline: what was traded over which period, in or out of sample, the return and
    risk in words, and the deflated Sharpe and PBO explained; never raw JSON."""
    pages = {mode: open(summary["report"]).read() for mode, summary in reports.items()}
    head = {mode: page.split("</section>")[0] for mode, page in pages.items()}
    assert "Out of sample it made" in head["walk_forward"]
    assert "in sample: a selection, not a forecast" in head["sweep"]
    for mode in ("sweep", "walk_forward"):
        assert "Deflated Sharpe" in head[mode] and "the usual bar for evidence" in head[mode]
        assert "Probability of backtest overfitting" in head[mode]
    for page in pages.values():
        assert "trading sentiment_z" in page.split("</h1>")[0]
        assert '{"dsr"' not in page and "{&quot;dsr" not in page


def test_report_renders_in_headless_chromium(reports, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    for summary in reports.values():
        done = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
             "--window-size=1400,1000", "--virtual-time-budget=15000", "--dump-dom",
             f"file://{summary['report']}"], capture_output=True, text=True, timeout=180)
        status = re.search(r'id="render-status"[^>]*>charts:(\d+);errors:(\d+);'
                           r'overlaps:(\d+);json:(\d+);where:([^<]*)<', done.stdout)
        assert status, done.stderr[-2000:]
        page = open(summary["report"]).read()
        charts, errors, overlaps, raw_json = map(int, status.groups()[:4])
        assert charts == page.count('class="chart"') and errors == 0
        assert overlaps == 0, f"titles covered or cut: {status.group(5)} ({summary['report']})"
        assert raw_json == 0  # what a reader sees is words and numbers, never JSON
        # the first screen answers what, when, in or out of sample, return, risk and luck
        headline = done.stdout.split("class=\"headline\"", 1)[1].split("</section>", 1)[0]
        assert summary["strategy"] in headline and "Figures:" in headline
        assert "Benchmark:" in headline and "Sharpe ratio" in headline


def test_report_latest_rerenders(workspace, reports):
    from data.warehouse import Warehouse

    with Warehouse(workspace.warehouse_path, read_only=True) as wh:
        again = runs.rendered(workspace, wh, "latest").summary
    assert again["run_id"] == reports["walk_forward"]["run_id"]


def test_the_index_lists_every_run_with_its_headline(workspace, reports):
    index = (workspace.reports_dir / "index.html").read_text()
    assert "3 runs" in index
    for summary in reports.values():
        assert f"href='{summary['run_id']}/report.html'" in index
    assert "out of sample" in index and "in sample (best of a grid)" in index


def test_the_tear_sheet_is_data_and_drawn(reports, workspace):
    from data.warehouse import Warehouse
    from quant.reports.runs import store_of

    with Warehouse(workspace.warehouse_path, read_only=True) as wh:
        run = store_of(workspace, wh).read(reports["single"]["run_id"])
    sheet = run.tear_sheet()
    assert set(sheet) == {"against_market", "against_benchmark", "distribution", "yearly",
                          "monthly", "drawdowns", "costs"}
    assert -1 <= sheet["drawdowns"][0]["depth"] < 0 and sheet["against_market"]["beta"] < 0.5
    assert run.benchmark == "cash" and "Benchmark:</b> cash" in open(
        reports["single"]["report"]).read()
    page = open(reports["single"]["report"]).read()
    assert "Tear sheet" in page and "Worst drawdowns" in page and "Monthly returns" in page
    metrics = json.loads((workspace.reports_dir / run.run_id / "metrics.json").read_text())
    assert metrics["tear_sheet"]["yearly"] == pytest.approx(sheet["yearly"])


def _stored(workspace, run_id):
    from data.warehouse import Warehouse
    from quant.reports.runs import store_of

    with Warehouse(workspace.warehouse_path, read_only=True) as wh:
        return store_of(workspace, wh).read(run_id)


@pytest.mark.parametrize("mode", ["single", "sweep"])
def test_the_book_gives_back_the_stored_returns_exactly(workspace, reports, mode):
    import numpy as np
    import polars as pl

    from quant.backtests.positions import returns_of

    run = _stored(workspace, reports[mode]["run_id"])
    account, held, trades = run.account(), run.positions(), run.trades()
    rebuilt = returns_of(account, workspace.backtest.init_cash)
    assert np.abs(rebuilt.to_numpy() - run.returns["strategy"].to_numpy()).max() < 1e-12
    # the account's value is its cash plus what it holds, at each session's open
    value = held.group_by("session").agg(pl.col("value").sum()).join(
        account.select("session", "cash", total="value"), on="session", how="right")
    assert (value["value"].fill_null(0.0) + value["cash"] - value["total"]).abs().max() < 1e-6
    # every change in a holding is a trade of that size, and nothing else moves shares
    signed = trades.with_columns(pl.when(pl.col("side") == "buy").then(pl.col("shares"))
                                 .otherwise(-pl.col("shares")).alias("change"))
    moved = held.sort("session").with_columns(
        change=pl.col("shares") - pl.col("shares").shift(1, fill_value=0.0).over("ticker"))
    total = signed.group_by("ticker").agg(pl.col("change").sum()).sort("ticker")
    last = held.sort("session").group_by("ticker").agg(pl.col("shares").last()).sort("ticker")
    assert total.join(last, on="ticker").select(
        (pl.col("change") - pl.col("shares")).abs().max()).item() < 1e-6
    assert moved.height and run.weights().columns == ["session", "ticker", "target", "weight"]
    # costs: fees paid are the trades' fees
    assert run.tear_sheet()["costs"]["fees_paid"] == pytest.approx(trades["fees"].sum())


def test_a_walk_forward_has_no_single_book_and_says_so(workspace, reports):
    from quant.errors import BacktestError

    run = _stored(workspace, reports["walk_forward"]["run_id"])
    with pytest.raises(BacktestError, match="keeps no single book"):
        run.positions()
    assert "costs" not in run.tear_sheet()
