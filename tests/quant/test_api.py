"""The Python API: objects in hand, read-only by default, the same results as the CLI."""

import hashlib
import json
import subprocess
import sys

import polars as pl
import pytest

import quant
from quant.artefact import ArtefactError
from quant.errors import ConfigError
from tests.quant.helpers import sample_workspace


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A workspace with the bundled prices, the generated news and fixture signals, built
    through the API."""
    return sample_workspace(tmp_path_factory.mktemp("api"))


def _cli(root, *args):
    done = subprocess.run([sys.executable, "-m", "quant.cli", "-w", str(root), *args, "--json"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _same(a, b):
    """Equal, but for the last bits of floats (polars sums groups in parallel, in any
    order)."""
    if isinstance(a, dict):
        assert set(a) == set(b)
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15, nan_ok=True)
    else:
        assert a == b


def _tree(root) -> dict:
    """Every file under `root` with its digest."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_read_only_workspace_writes_nothing(root):
    stored = quant.open(root, write=True).backtest("buy_and_hold")  # a run and its report
    before = _tree(root)
    ws = quant.open(root)
    assert "read-only" in repr(ws)
    writes = [lambda: ws.ingest("news", [root / "news.parquet"]), lambda: ws.score(limit=1),
              lambda: ws.backtest("buy_and_hold"), lambda: ws.fit_model("ro", kind="linear")]
    for call in writes:
        with pytest.raises(ConfigError, match="opened read-only"):
            call()
    # Every reading method works and writes nothing; a stored report is found, not rewritten.
    assert ws.documents(ticker="aapl", limit=3).height == 3
    assert ws.status() and ws.panel().height and ws.evaluate().first.rows
    assert ws.features(["return_1"]).height and ws.filings().is_empty()
    assert ws.search("shares").height
    assert ws.run().run_id == stored.run_id
    assert ws.report(stored) == root / "reports" / stored.run_id / "report.html"
    with pytest.raises(ArtefactError, match="no fitted model"):
        ws.fitted_model("never-fitted")
    assert _tree(root) == before


def test_evaluation_equals_the_cli(root):
    ev = quant.open(root).evaluate(horizons=(1, 5))
    _same(json.loads(json.dumps(ev.to_json(), default=str)),
          _cli(root, "evaluate", "--horizons", "1,5"))
    assert set(ev.figures()) == {"ic_series", "ic_monthly", "ic_distribution", "ic_qq",
                                 "ic_decay", "quantiles", "quantiles_cumulative"}
    assert ev.table().height == 2 and "<table" in ev._repr_html_()


def test_a_custom_signal_end_to_end(root):
    ws = quant.open(root, write=True)
    panel = ws.panel(signals=False)   # a five-session reversal of our own
    reversal = -(pl.col("adj_close").shift(1) / pl.col("adj_close").shift(6) - 1).over(
        "ticker", order_by="session").alias("reversal")
    ev = ws.evaluate(panel, signal=reversal)
    assert ev.signal == "reversal" and ev.first.rows > 1000
    run = ws.backtest("sentiment_long_short", panel=panel, signal=reversal)
    assert run.params["signal"] == "reversal" and run.evaluation.signal == "reversal"
    assert run.signals["signal"] == "reversal"
    assert ws.report(run).exists() and "equity" in run.figures()
    again = ws.backtest("sentiment_long_short", panel=panel, signal=reversal)
    assert again.run_id == run.run_id and again.summary["cached"]


def test_a_backtest_equals_the_cli(root):
    run = quant.open(root, write=True).backtest("sentiment_long_short", sweep=True)
    cli = _cli(root, "backtest", "--strategy", "sentiment_long_short", "--sweep")
    assert cli["run_id"] == run.run_id and cli["cached"]
    assert cli["sharpe"] == pytest.approx(run.metrics["sharpe"], abs=1e-12)
    assert cli["pbo"] == run.metrics["pbo"]["pbo"]
    assert repr(run).startswith("StoredRun(") and run.metrics_frame().height > 5


def test_a_model_scores_texts(tiny_qwen):
    model = quant.model(str(tiny_qwen), "fp32", min_label_mass=0.0)
    scored = model.score(["Shares jump on record results", "Profit warning"], ticker="AAA")
    assert scored.height == 2 and set(scored["status"]) <= {"ok", "abstain", "failed"}
    assert "fingerprint" in repr(model)


def test_options_are_checked_where_they_are_read(root, tmp_path):
    ws = quant.open(root, write=True)
    with pytest.raises(ConfigError, match="since 2013-01-01 is after until 2012-01-01"):
        ws.evaluate(since="2013-01-01", until="2012-01-01")
    with pytest.raises(ConfigError, match="horizons must be positive"):
        ws.panel(horizons=(0,))
    from quant.errors import BacktestError

    with pytest.raises(BacktestError, match="quantile = 7 is outside its range"):
        ws.backtest("sentiment_long_short", {"quantile": 7})
    with pytest.raises(BacktestError, match="rebalance must be a number"):
        ws.backtest("sentiment_long_short", {"rebalance": "daily"})
    from data.errors import DataError

    with pytest.raises(DataError, match="--limit must be at least 1"):
        ws.search("apple", limit=-1)
    with pytest.raises(ConfigError, match="no workspace at"):
        quant.open(tmp_path / "typo")
    assert not (tmp_path / "typo").exists()   # a misspelt workspace is not created


def test_what_filings_say_beyond_their_text(tmp_path):
    from tests.conftest import dataset

    quant.init_workspace(tmp_path)
    ws = quant.open(tmp_path, write=True)
    edgar = dataset("edgar")
    ws.ingest("filings", [edgar / "aapl-10-k-2024-11-01.html.gz"], index=edgar / "index.csv")
    facts = quant.open(tmp_path).filings("aapl", "facts")
    revenue = facts.filter(
        (pl.col("concept") == "us-gaap:RevenueFromContractWithCustomerExcludingAssessedTax")
        & ~pl.col("dimensional") & (pl.col("period_end") == pl.date(2024, 9, 28)))
    assert revenue["value"].to_list() == [391_035e6]
    changes = ws.filings("AAPL")
    assert changes.height > 0 and changes["previous_doc_id"].is_null().all()  # the first one
    assert ws.filings("MSFT", "facts").is_empty()
    with pytest.raises(ValueError, match="table must be one of"):
        ws.filings(table="nope")
    cli = _cli(tmp_path, "filings", "facts", "--ticker", "AAPL", "--concept",
               "us-gaap:NetIncomeLoss")
    assert 93_736e6 in [row["value"] for row in cli]
    assert len(_cli(tmp_path, "filings", "--ticker", "AAPL")) == min(20, changes.height)


def test_a_learned_model_fits_saves_evaluates_and_backtests(root):
    spec = {"kind": "linear", "test": 126, "min_train": 500,
            "features": ["tone", "tone_change", "return_1", "return_5"]}
    fitted = quant.open(root, write=True).fit_model("m", **spec)
    assert (root / "models" / "m" / "predictions.parquet").is_file()
    assert quant.open(root).fitted_model("m").predictions.equals(fitted.predictions)
    out = _cli(root, "model", "evaluate", "m", "--backtest")
    assert out["model"]["folds"] == fitted.folds.height
    assert out["backtest"]["strategy"] == "learned"
    assert {r["feature"] for r in out["importance"]} == set(spec["features"])
    # the planted tone is found out of sample, and the report shows the model's features
    assert out["evaluation"]["horizons"]["1"]["rank_ic"]["mean"] > 0
    page = (root / "reports" / out["backtest"]["run_id"] / "report.html").read_text()
    assert "Learned model: feature importance" in page and "tone_change" in page
    listed = _cli(root, "features")
    assert {f["name"] for f in listed} >= set(spec["features"])


def test_the_learned_strategy_without_predictions_is_a_clear_error(root):
    done = subprocess.run([sys.executable, "-m", "quant.cli", "-w", str(root), "backtest",
                           "--strategy", "learned", "--json"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 2
    error = json.loads(done.stdout)
    assert error["type"] == "BacktestError" and "quant model fit" in error["fix"]
