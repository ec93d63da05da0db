"""Deployments, tomorrow's book and the paper record: a replay of past sessions, each decided
with only what was known before its open, trades exactly what a backtest of the same sessions
trades and earns exactly what it earns."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import quant
from data.errors import DataError
from quant.errors import ConfigError
from quant.live import deployments, track
from quant.signals import traded_signal
from strategies import get_strategy
from tests.quant.helpers import sample_workspace, write_signals

GO_LIVE, END = date(2012, 3, 1), date(2012, 6, 29)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return sample_workspace(tmp_path_factory.mktemp("book") / "ws")


@pytest.mark.parametrize("strategy, params", [
    ("sentiment_long_short", {"quantile": 0.25}),
    ("sentiment_momentum", {"lookback": 10, "rebalance": 1}),
])
def test_a_replay_trades_and_earns_exactly_what_the_backtest_does(root, strategy, params):
    ws = quant.open(root, write=True)
    name = f"replay-{strategy}"
    ws.deploy(name, strategy, params, go_live=GO_LIVE)
    assert ws.replay(name, GO_LIVE, END) > 80
    run = ws.backtest(strategy, params, since=GO_LIVE, until=END)
    record = ws.track(name)
    paper = record["returns"]
    assert paper.index[0].date() == GO_LIVE and len(paper) == len(run.returns)
    every = ws.targets(name)
    moved = every.filter(pl.col("n_docs") > 0)   # each name's news that session, by doc_id
    assert moved.height and (moved["documents"].list.len() == moved["n_docs"]).all()
    targets = every.filter(pl.col("weight").is_not_null())
    weights = run.weights().filter(pl.col("target").is_not_nan())
    joined = targets.join(weights, on=["session", "ticker"], how="full", coalesce=True)
    # A name's first session (an IPO) has a row in the backtest's panel but none in a book
    # decided before its first price: weight 0 there, so nothing differs in what is traded.
    unmatched = joined.filter(pl.col("weight").is_null() | pl.col("target").is_null())
    assert unmatched.height <= 1 and (unmatched["target"].fill_null(0.0) == 0).all()
    gap = (pl.col("weight").fill_null(0.0) - pl.col("target").fill_null(0.0)).abs()
    assert joined.select(gap.max()).item() < 1e-15, joined.filter(gap > 1e-15).head(5)
    assert np.abs(paper.to_numpy() - run.returns["strategy"].to_numpy()).max() < 1e-12
    # the live figures are the backtest's, measured the same way over the same sessions
    for figure in ("sharpe", "turnover", "exposure"):
        assert record["live"][figure] == pytest.approx(run.metrics[figure], rel=1e-9, abs=1e-12)
    signal = traded_signal(get_strategy(strategy), params)
    if signal is None:   # a signal the strategy computes itself: no column to correlate
        assert record["live"]["rank_ic"] is None
        return
    panel = ws.panel().filter(pl.col("session").is_between(GO_LIVE, END)
                                           & pl.col(signal).is_not_null()
                                           & pl.col("fwd_ret_1").is_not_null())
    daily = panel.group_by("session").agg(ic=pl.corr(signal, "fwd_ret_1", method="spearman"))
    assert record["live"]["rank_ic"] == pytest.approx(daily["ic"].drop_nans().mean(), abs=1e-12)


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), minutes=st.integers(0, 60 * 24 * 10),
       count=st.integers(1, 12))
def test_a_book_does_not_change_when_later_news_arrives(root, seed, minutes, count):
    """Documents published at or after a session's open, of any tone, never move its book."""
    ws = quant.open(root, write=True)
    if "late-news" not in [d.name for d in ws.deployments()]:
        ws.deploy("late-news", "sentiment_long_short", {}, go_live=GO_LIVE)
    session, opened = date(2012, 4, 2), datetime(2012, 4, 2, 13, 30, tzinfo=timezone.utc)
    first = ws.book("late-news", session)
    rng = np.random.default_rng(seed)
    tag = uuid.uuid4().hex[:8]
    late = [{"doc_id": f"late-{tag}-{i}", "ticker": str(rng.choice(["AAPL", "IBM", "MSFT"])),
             "published_at": opened + timedelta(minutes=minutes + int(rng.integers(0, 600))),
             "sentiment": float(rng.choice([-1.0, 1.0])), "confidence": 1.0,
             "event_type": "other"} for i in range(count)]
    with ws.warehouse(write=True) as wh:
        wh.con.execute("INSERT INTO documents (doc_id, kind, source, published_at, "
                       "ingested_at, tickers, title, body) SELECT doc_id, 'news', 'late', "
                       "published_at, now(), [ticker], 'late', 'late' FROM "
                       "(SELECT unnest($1) AS doc_id, unnest($2) AS ticker, "
                       "unnest($3) AS published_at)",
                       [[r["doc_id"] for r in late], [r["ticker"] for r in late],
                        [r["published_at"] for r in late]])
        write_signals(wh, pl.DataFrame(late))
    again = ws.book("late-news", session)
    # the same names and weights, the same documents; the signal to the last bits (a
    # session's sums run in parallel, in any order)
    assert again.select("ticker", "weight", "n_docs", "documents").equals(
        first.select("ticker", "weight", "n_docs", "documents"))
    assert (again["signal"] - first["signal"]).abs().max() < 1e-12


def test_deployments_are_frozen_listed_and_retired(root):
    ws = quant.open(root, write=True)
    made = ws.deploy("frozen", "sentiment_long_short", {"quantile": 0.5}, go_live=GO_LIVE)
    assert made.params == {"quantile": 0.5} and made.model_fingerprint == "fixture"
    assert "AAPL" in made.universe and made.live
    with pytest.raises(ConfigError, match="never edited"):
        ws.deploy("frozen", "sentiment_long_short", {"quantile": 0.25}, go_live=GO_LIVE)
    assert "frozen" in [d.name for d in ws.deployments()]
    assert not ws.retire("frozen").live
    assert "frozen" not in [d.name for d in ws.deployments(live_only=True)]
    with pytest.raises(ConfigError, match="no deployment named"):
        ws.retire("never")


def test_a_book_without_the_last_sessions_prices_is_refused(root):
    ws = quant.open(root, write=True)
    ws.deploy("stale", "sentiment_long_short", {}, go_live=GO_LIVE)
    with pytest.raises(DataError, match="the last prices are of 2013-.*ingest them"):
        ws.book("stale", date(2014, 1, 6))
    with pytest.raises(DataError, match="2012-05-05 is not a XNYS session; the next one is "
                                         "2012-05-07"):
        ws.book("stale", date(2012, 5, 5))
    with pytest.raises(DataError, match="a replay runs forward"):
        ws.replay("stale", date(2012, 5, 10), date(2012, 5, 1))
    with ws.warehouse() as wh:
        assert deployments.read_targets(wh, "stale").is_empty()


def test_tomorrows_book_is_written_by_the_daily_job(root):
    from quant.batch import jobs
    from quant.config import load_config

    ws = quant.open(root, write=True)
    ws.deploy("daily", "sentiment_long_short", {}, go_live=GO_LIVE)
    config = load_config(root)
    last = date(2013, 3, 1)  # the sample's last priced session (a Friday)
    row = jobs.run_job("book", config, last)
    assert row["status"] == "ok", row
    written = row["counters"]["daily"]
    assert written["session"] == "2013-03-04" and written["names"] >= 4
    csv = root / "reports" / "deployments" / "daily" / "targets-2013-03-04.csv"
    assert pl.read_csv(csv).height == written["names"]
    replayed = root / "reports" / "deployments" / "replay-sentiment_long_short"
    record = json.loads((replayed / "track.json").read_text())  # each live book's record
    assert record["sessions"] > 80 and "interval" in record
    assert "live since 2012-03-01" in (replayed / "track.html").read_text()
    assert jobs.run_job("report", config, last)["status"] == "ok"   # the index shows them
    index = (root / "reports" / "index.html").read_text()
    assert "Live deployments" in index
    assert "href='deployments/replay-sentiment_long_short/track.html'" in index
    again = jobs.run_job("book", config, last)   # a finished as_of is not decided twice
    assert again["status"] == "skipped"
    decided = ws.book("daily", date(2013, 3, 4))  # deciding it again replaces it whole
    assert decided.height == written["names"]
    with ws.warehouse() as wh:
        assert deployments.read_targets(wh, "daily", since=date(2013, 3, 4)).height == (
            written["names"])
        nothing_yet = track.paper(config, wh, deployments.get(wh, "daily"))[0]
        assert nothing_yet.empty   # only tomorrow's book: nothing has traded yet


def test_the_cli_deploys_replays_and_tracks_as_the_api_does(root):
    import subprocess
    import sys

    def quant_cli(*args):
        done = subprocess.run([sys.executable, "-m", "quant.cli", "-w", str(root), *args,
                               "--json"], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    made = quant_cli("deploy", "cli-ls", "--strategy", "sentiment_long_short", "--params",
                     "quantile=0.5", "--go-live", "2012-05-01")
    assert made["params"] == {"quantile": 0.5} and made["go_live"] == "2012-05-01"
    replayed = quant_cli("replay", "cli-ls", "--from", "2012-05-01", "--to", "2012-05-31")
    record = quant.open(root).track("cli-ls")
    assert replayed["sessions"] == record["sessions"] == 22
    assert replayed["live_sharpe"] == pytest.approx(record["live"]["sharpe"], rel=1e-12)
    assert quant_cli("track", "cli-ls")["paper_return"] == pytest.approx(
        replayed["paper_return"], rel=1e-12)
    assert "cli-ls" in [d["name"] for d in quant_cli("deployments")]
    two = quant_cli("deploy", "cli-two", "--strategy", "sentiment_long_short", "--go-live",
                    "2012-05-01", "--universe", "aapl, ibm")
    assert two["names"] == 2


@pytest.mark.parametrize("kind", ["linear", "lightgbm"])
def test_a_learned_replay_refits_on_the_walk_forwards_schedule(root, kind, tmp_path):
    """Each session's book is predicted by the model of its walk-forward block, refitted on
    the history known at that session's open: the same predictions, weights and returns as
    the walk-forward's backtest."""
    ws = quant.open(root, write=True)
    name, since = f"replay-learned-{kind}", "2011-01-03"
    spec = {"kind": kind, "test": 21, "min_train": 120}
    made = ws.deploy(name, "learned", {"quantile": 0.4}, go_live=GO_LIVE,
                     model={**spec, "since": since})
    assert made.model["since"] == since and made.model["features"]
    assert ws.replay(name, GO_LIVE, END) > 80
    fitted = ws.fit_model(f"wf-{kind}", since=since, until=END, **spec,
                          features=tuple(made.model["features"]))
    assert fitted.folds["test_start"].min() < GO_LIVE < fitted.folds["test_end"].max()
    run = ws.backtest("learned", {"quantile": 0.4}, panel=ws.predicted_panel(fitted),
                      since=GO_LIVE, until=END)
    every = ws.targets(name)
    predicted = fitted.predictions.filter(pl.col("session") >= GO_LIVE)
    signals = every.join(predicted, on=["session", "ticker"], how="inner")
    assert signals.height == predicted.height
    # the block's model, applied to one session's rows instead of the block's: BLAS noise
    assert (signals["signal"] - signals["prediction"]).abs().max() < 1e-12
    weights = run.weights().filter(pl.col("target").is_not_nan())
    joined = every.filter(pl.col("weight").is_not_null()).join(
        weights, on=["session", "ticker"], how="full", coalesce=True)
    gap = (pl.col("weight").fill_null(0.0) - pl.col("target").fill_null(0.0)).abs()
    assert joined.select(gap.max()).item() < 1e-15, joined.filter(gap > 1e-15).head(5)
    paper = ws.track(name)["returns"]
    assert len(paper) == len(run.returns) and run.returns["strategy"].abs().sum() > 0
    assert np.abs(paper.to_numpy() - run.returns["strategy"].to_numpy()).max() < 1e-12
    if kind == "linear":   # the daily job's path on a copy agrees too
        assert ws.replay_on_copy(name, GO_LIVE, END, tmp_path / "copy")["equal"]
    # deployed from the command line with the fitted model's name, the same model is frozen
    from click.testing import CliRunner

    from quant.cli import cli

    done = CliRunner().invoke(cli, ["-w", str(root), "deploy", f"cli-{kind}", "--strategy",
                                    "learned", "--model", f"wf-{kind}", "--go-live",
                                    str(GO_LIVE), "--json"])
    assert done.exit_code == 0, done.output
    assert ws.deployments()[-1].model == made.model


def test_a_learned_deployment_needs_a_model_and_only_it_takes_one(root):
    ws = quant.open(root, write=True)
    with pytest.raises(ConfigError, match="a learned deployment needs its model"):
        ws.deploy("no-model", "learned", {}, go_live=GO_LIVE)
    with pytest.raises(ConfigError, match="reads no model"):
        ws.deploy("extra-model", "sentiment_long_short", {}, go_live=GO_LIVE,
                  model={"kind": "linear"})
    with pytest.raises(ConfigError, match="has no setting 'depth'"):
        ws.deploy("bad-model", "learned", {}, go_live=GO_LIVE, model={"depth": 3})


def test_a_replay_on_a_copy_runs_the_daily_book_step_and_leaves_the_workspace(root, tmp_path):
    """`quant schedule replay` decides each session on the evening before it, in a copy,
    through the daily job's book step; its gaps to the backtest are floating-point noise."""
    from click.testing import CliRunner

    from quant.cli import cli

    ws = quant.open(root, write=True)
    ws.deploy("copied", "sentiment_long_short", {"quantile": 0.25}, go_live=GO_LIVE)
    before = (root / "warehouse.duckdb").stat().st_mtime_ns
    into = tmp_path / "copy"
    result = CliRunner().invoke(cli, ["-w", str(root), "schedule", "replay", "--deployment",
                                      "copied", "--from", str(GO_LIVE), "--to", str(END),
                                      "--into", str(into), "--json"])
    assert result.exit_code == 0, result.output
    measured = json.loads(result.output)
    assert measured["equal"] and measured["sessions"] > 80
    assert measured["max_weight_gap"] < 1e-15 and measured["max_return_gap"] < 1e-12
    assert (into / "reports" / "deployments" / "copied" / "track.html").is_file()
    assert len(list((into / "reports" / "deployments" / "copied").glob("targets-*.csv"))) \
        == measured["sessions"]
    assert ws.targets("copied").is_empty()       # the workspace decided nothing
    assert (root / "warehouse.duckdb").stat().st_mtime_ns == before
    again = ws.replay_on_copy("copied", GO_LIVE, date(2012, 3, 30), into)  # replaces it
    assert again["equal"] and again["sessions"] < measured["sessions"]
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="is not empty"):
        ws.replay_on_copy("copied", GO_LIVE, END, tmp_path / "taken")


def test_a_deployment_refuses_what_it_could_not_trade(root, tmp_path):
    """Names without prices, an empty universe, a model whose history starts at go-live, a
    replay before go-live or into a file: each refused, saying what to do."""
    ws = quant.open(root, write=True)
    with pytest.raises(ConfigError, match="no prices for ZZZZ in the warehouse"):
        ws.deploy("unknown-names", "sentiment_long_short", go_live=GO_LIVE, universe=["ZZZZ"])
    with pytest.raises(ConfigError, match="the universe is empty"):
        ws.deploy("no-names", "sentiment_long_short", go_live=GO_LIVE, universe=[])
    with pytest.raises(ConfigError, match="needs sessions to learn from before it trades"):
        ws.deploy("late-history", "learned", go_live=GO_LIVE, model={"since": str(GO_LIVE)})
    made = ws.deploy("lower", "sentiment_long_short", go_live=GO_LIVE, universe=["aapl", "ibm"])
    assert made.universe == ("AAPL", "IBM")
    with pytest.raises(DataError, match="is before lower goes live on 2012-03-01"):
        ws.replay("lower", date(2011, 1, 3), date(2011, 2, 1))
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        ws.replay_on_copy("lower", GO_LIVE, date(2012, 3, 9), tmp_path / "a-file")
