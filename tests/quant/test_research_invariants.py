"""Research invariants, metamorphic: two ways to compute the same thing agree, and what a
researcher hands in is checked or refused clearly, never silently turned into a number."""

import subprocess
import sys
from datetime import date

import numpy as np
import polars as pl
import pytest

import quant
from data.errors import FrameworkError
from quant.backtests.backtest import backtest, sweep, walk_forward
from quant.errors import BacktestError
from quant.pipeline import LookAheadError, PanelParams, build_panel
from quant.reports.runs import panel_digest
from strategies import get_strategy
from tests.quant.helpers import calendar_prices, sample_workspace, signals_frame

LONG_SHORT = get_strategy("sentiment_long_short")
# Same-session information and tomorrow's: what the guard must refuse.
SAME_SESSION_OPEN = -(pl.col("adj_open") / pl.col("adj_open").shift(5) - 1).over(
    "ticker", order_by="session").alias("reversal")
TOMORROW = pl.col("sentiment_z").shift(-1).over("ticker", order_by="session").alias("ahead")
REVERSAL = -(pl.col("adj_close").shift(1) / pl.col("adj_close").shift(6) - 1).over(
    "ticker", order_by="session").alias("reversal")


def _random_panel(seed: int = 1, tickers: int = 6) -> pl.DataFrame:
    names = [f"T{i}" for i in range(tickers)]
    prices = calendar_prices(names, date(2021, 1, 4), date(2022, 12, 30), seed=seed)
    rng = np.random.default_rng(seed)
    panel = build_panel(signals_frame([]), prices, PanelParams(min_history=0))
    return panel.with_columns(  # a point-in-time score of our own, trusted in these tests
        sentiment_z=pl.Series(rng.normal(size=panel.height)))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return sample_workspace(tmp_path_factory.mktemp("invariants"))


# --- params mean the same in every mode ----------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2])
def test_each_sweep_point_equals_the_single_backtest_with_its_params(seed):
    panel = _random_panel(seed).with_columns(other=-pl.col("sentiment_z"))
    swept = sweep(panel, LONG_SHORT, fixed={"signal": "other", "gross": 0.5})
    assert all(p["signal"] == "other" and p["gross"] == 0.5 for p in swept.params)
    for i in (0, len(swept.params) - 1):
        single = backtest(panel, LONG_SHORT, swept.params[i])
        assert np.allclose(single.returns[0].to_numpy(), swept.returns[i].to_numpy(),
                           atol=1e-12)
    default = sweep(panel, LONG_SHORT)
    assert not np.allclose(default.returns.to_numpy(), swept.returns.to_numpy())


def test_a_walk_forward_trades_the_fixed_params_in_every_window():
    panel = _random_panel(3).with_columns(other=-pl.col("sentiment_z"))
    result = walk_forward(panel, LONG_SHORT, fixed={"signal": "other"})
    assert all(w["params"]["signal"] == "other" for w in result.extra["windows"])


def test_a_key_both_fixed_and_in_the_grid_is_an_error_naming_both():
    with pytest.raises(BacktestError, match=r"quantile is fixed by params \(0.1\) and varied "
                                            r"by the grid \(\[0.25, 0.5\]\)"):
        sweep(_random_panel(), LONG_SHORT, fixed={"quantile": 0.1})


def test_the_api_sweep_trades_evaluates_and_names_the_given_signal(root):
    ws = quant.open(root, write=True)
    run = ws.backtest("sentiment_long_short", {"signal": "sentiment_today"}, sweep=True)
    assert set(run.sweep["signal"]) == {"sentiment_today"}
    assert run.evaluation.signal == run.signals["signal"] == "sentiment_today"
    assert run.summary["signal"] == "sentiment_today"
    single = ws.backtest("sentiment_long_short", run.params)   # the sweep's best point
    assert single.metrics["sharpe"] == pytest.approx(run.metrics["sharpe"], abs=1e-12)
    assert np.allclose(single.returns["strategy"], run.returns["strategy"], atol=1e-12)
    default = ws.backtest("sentiment_long_short", sweep=True)
    assert default.metrics["sharpe"] != run.metrics["sharpe"]
    with pytest.raises(BacktestError, match="rebalance is fixed by params"):
        ws.backtest("sentiment_long_short", {"rebalance": 3}, walk_forward=True)


# --- point-in-time for what users bring ----------------------------------------------------

def test_a_signal_reading_the_future_or_its_own_session_is_refused(root):
    ws = quant.open(root)
    panel = ws.panel(horizons=(1,))
    with pytest.raises(LookAheadError, match="signal 'ahead' .* changes when the panel ends"):
        ws.evaluate(panel, signal=TOMORROW)
    with pytest.raises(LookAheadError, match="price of the session itself"):
        ws.evaluate(panel, signal=SAME_SESSION_OPEN)
    with pytest.raises(LookAheadError, match="changes when the panel ends"):
        ws.evaluate(panel, signal=lambda p: pl.col("fwd_ret_1") * 0.01 + pl.col("sentiment_z"))
    assert ws.evaluate(panel, signal=REVERSAL).first.rows > 1000  # point-in-time: accepted


def test_a_precomputed_column_needs_trust_and_a_cheat_is_refused_even_then(root):
    ws = quant.open(root, write=True)
    panel = ws.panel(horizons=(1,)).with_columns(cheat=pl.col("fwd_ret_1"),
                                                 mine=pl.col("sentiment_z") * 2)
    with pytest.raises(LookAheadError, match="trust_column=True"):
        ws.evaluate(panel, signal="mine")
    assert ws.evaluate(panel, signal="mine", trust_column=True).signal == "mine"
    with pytest.raises(LookAheadError, match="rank IC of 1.00 .* look-ahead"):
        ws.evaluate(panel, signal="cheat", trust_column=True)
    weekly = ws.panel(horizons=(5,))   # no next-session return: the shortest horizon is used
    with pytest.raises(LookAheadError, match="next 5 session"):
        ws.evaluate(weekly.with_columns(cheat=pl.col("fwd_ret_5")), signal="cheat",
                    trust_column=True)
    with pytest.raises(LookAheadError, match="trust_column=True"):
        ws.backtest("sentiment_long_short", {"signal": "cheat"}, panel=panel)
    with pytest.raises(LookAheadError, match="look-ahead"):
        ws.backtest("sentiment_long_short", {"signal": "cheat"}, panel=panel,
                    trust_column=True)
    # overwriting a framework column with a cheat does not get past the plausibility check
    with pytest.raises(LookAheadError, match="look-ahead"):
        ws.backtest("sentiment_long_short", panel=panel.with_columns(
            sentiment_z=pl.col("fwd_ret_1")))


# --- filters, hashes -----------------------------------------------------------------------

def test_evaluating_a_period_equals_evaluating_the_sliced_panel(root):
    ws = quant.open(root)
    panel = ws.panel(horizons=(1, 5))
    period = ws.evaluate(panel, since="2012-01-01", until="2012-06-30").to_json()
    sliced = ws.evaluate(panel.filter(pl.col("session").is_between(
        date(2012, 1, 1), date(2012, 6, 30)))).to_json()
    assert period == sliced
    assert period["coverage"]["universe_sessions"] < 130
    from data.errors import DataError

    with pytest.raises(DataError, match="no session between 2030-01-01"):
        ws.evaluate(panel, since="2030-01-01")


_DIGEST = """
import sys, polars as pl
from quant.reports.runs import panel_digest
panel = pl.read_parquet(sys.argv[1])
print(panel_digest(panel.sample(fraction=1.0, shuffle=True, seed=int(sys.argv[2]))))
"""


def test_two_processes_hash_the_same_panel_alike_whatever_the_summation_noise(tmp_path):
    panel = _random_panel()
    noisy = panel.with_columns(pl.col("sentiment_z") * (1 + 2.2e-16))
    assert panel_digest(noisy) == panel_digest(panel)
    assert panel_digest(panel.with_columns(pl.col("sentiment_z") * 1.001)) != panel_digest(panel)
    panel.write_parquet(tmp_path / "p.parquet")
    digests = {subprocess.run([sys.executable, "-c", _DIGEST, str(tmp_path / "p.parquet"),
                               str(seed)], capture_output=True, text=True, check=True
                              ).stdout.strip() for seed in (1, 2)}
    assert digests == {panel_digest(panel)}


# --- sample sizes --------------------------------------------------------------------------

def test_quantiles_are_capped_by_the_cross_section_and_sizes_are_shown():
    from quant.evaluate import evaluate_signal

    panel = _random_panel(tickers=4)
    ev = evaluate_signal(panel, "sentiment_z", (1,), quantiles=5)
    first = ev.first
    assert len(first.mean_return_by_quantile) == 4 and "5 quantiles asked" in first.notes[0]
    assert first.names == 4 and ev.table()["sessions"][0] == first.rank_ic["n"] > 400
    assert ev.table()["names"][0] == 4


# --- errors a research call raises on bad input --------------------------------------------

def _bad_inputs(ws, panel):
    return {
        "no forward return": (lambda: ws.evaluate(panel.select(pl.exclude("^fwd_ret_.*$")),
                                                  signal="sentiment_z"),
                              "no forward return column"),
        "unknown column": (lambda: ws.evaluate(panel, signal="sentiment_zz"),
                           "did you mean sentiment_z"),
        "string column": (lambda: ws.evaluate(panel.with_columns(s=pl.lit("x")), signal="s",
                                              trust_column=True), "not numeric"),
        "expression on a missing column": (lambda: ws.evaluate(panel, signal=pl.col("nope")),
                                           "cannot be computed on this panel"),
        "function of the wrong length": (lambda: ws.evaluate(panel, signal=lambda p: pl.Series(
            "short", [1.0])), "one value per panel row"),
        "not a panel": (lambda: ws.evaluate(panel.drop("in_universe"), signal="sentiment_z"),
                        "the panel lacks in_universe"),
        "grid key fixed": (lambda: ws.backtest("sentiment_long_short", {"quantile": 0.1},
                                               sweep=True), "fixed by params"),
        "unknown strategy param": (lambda: ws.backtest("sentiment_long_short", {"nope": 1}),
                                   "has no parameter 'nope'"),
        "empty period": (lambda: ws.evaluate(panel, since="2030-01-01"), "no session between"),
        "a pandas panel": (lambda: ws.evaluate(panel.to_pandas(), signal="sentiment_z"),
                           "a panel is a polars DataFrame"),
        "an empty panel": (lambda: ws.evaluate(panel.head(0), signal="sentiment_z"),
                           "the panel has no rows"),
        "a signal of no kind": (lambda: ws.evaluate(panel, signal=123), "not int"),
        "params not a dict": (lambda: ws.backtest("sentiment_long_short", ["quantile", 0.1]),
                              "params are a dict"),
        "an expression named like a panel column": (
            lambda: ws.evaluate(panel, signal=-pl.col("sentiment_z")), "name it otherwise"),
        "an unknown model setting": (lambda: ws.fit_model("x", banana=1),
                                     "fit_model has no setting 'banana'"),
        "a missing column on the warehouse panel": (
            lambda: ws.backtest("sentiment_long_short", {"signal": "sentiment_zz"}),
            "did you mean sentiment_z"),
    }


def test_every_bad_input_is_a_framework_error_that_says_what_and_how(root):
    ws = quant.open(root, write=True)
    panel = ws.panel(horizons=(1,))
    for case, (call, message) in _bad_inputs(ws, panel).items():
        with pytest.raises(FrameworkError, match=message):
            call()
        print("ok:", case)


def test_the_cli_holds_params_in_a_sweep_as_the_api_does(root):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "quant.cli", "-w", str(root), "backtest",
                               "--strategy", "sentiment_long_short", "--sweep", *args, "--json"],
                              capture_output=True, text=True, timeout=600)

    done = cli("--params", "gross=0.5")
    assert done.returncode == 0, done.stderr
    api = quant.open(root, write=True).backtest("sentiment_long_short", {"gross": 0.5},
                                                sweep=True)
    assert api.summary["cached"] and api.run_id in done.stdout
    assert set(api.sweep["gross"]) == {0.5}
    refused = cli("--params", "quantile=0.1")
    said = refused.stdout + refused.stderr   # with --json the error is a JSON line
    assert refused.returncode != 0 and "quantile is fixed by params" in said
    assert "Traceback" not in said
