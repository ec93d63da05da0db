import json
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from data.ingest import ingest_files
from data.samples import sample_prices_path, write_sample_news
from quant.evaluate import Evaluation, evaluate_signal, pooled_ic
from quant.pipeline import PanelParams, SignalSet, panel_from_warehouse
from quant.quantiles import quantile_returns
from tests.quant.helpers import write_signals

STRENGTH = 0.3


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The bundled corpus with its planted effect, and fixture signals that read the planted
    tone exactly (no model in the loop)."""
    from data.warehouse import Warehouse

    folder = tmp_path_factory.mktemp("planted")
    wh = Warehouse(folder / "w.duckdb")
    ingest_files(wh, "prices", [sample_prices_path()])
    prices = wh.query("SELECT ticker, session, open, close, adj_close FROM prices")
    news = write_sample_news(folder / "news.parquet", prices, strength=STRENGTH)
    ingest_files(wh, "news", [news])
    signals = wh.query("""
        SELECT doc_id, tickers[1] AS ticker, published_at, meta->>'event_type' AS event_type,
               least(greatest((meta->>'planted_tone')::DOUBLE / 3, -1), 1) AS sentiment,
               1.0 AS confidence
        FROM documents""")
    write_signals(wh, signals)
    yield wh
    wh.close()


def _evaluate(wh, lag: int) -> Evaluation:
    params = PanelParams(execution_lag=lag, half_life=0, horizons=(1, 5), min_history=20)
    panel, _ = panel_from_warehouse(wh, params, SignalSet("fixture", "fixture-v1", "score"))
    return evaluate_signal(panel, "sentiment", params.horizons)


def test_the_planted_strength_is_recovered_within_its_interval(planted):
    report = _evaluate(planted, lag=0)
    pooled = report.horizons[1].pooled_ic
    assert pooled["n"] > 1000
    assert pooled["low"] <= STRENGTH <= pooled["high"], pooled
    daily = report.horizons[1].ic
    assert daily["mean"] > 0.15 and daily["t_stat"] > 5
    spread = report.horizons[1].top_minus_bottom
    assert spread["mean"] > 0 and spread["t_stat"] > 3
    # The effect is planted on the next session only: the decay table shows it fading.
    assert abs(report.horizons[5].pooled_ic["ic"]) < pooled["ic"] / 2


def test_a_one_session_misalignment_destroys_it(planted):
    shifted = _evaluate(planted, lag=1).horizons[1].pooled_ic
    assert abs(shifted["ic"]) < 0.08 and shifted["low"] < 0 < shifted["high"]


def test_dropped_rows_are_counted(planted):
    report = _evaluate(planted, lag=0)
    entry = report.horizons[1]
    dropped = entry.dropped
    total = planted.scalar("SELECT count(*) FROM prices")
    assert entry.rows + sum(dropped.values()) == total
    assert dropped["no_signal"] > 0 and report.coverage["tickers"] == 4


def test_pooled_ic_and_quantiles_on_a_constructed_panel():
    rng = np.random.default_rng(1)
    sessions = [date(2024, 1, 1 + d) for d in range(28)]
    rows = []
    for s in sessions:
        signal = rng.normal(size=10)
        for k in range(10):
            rows.append({"session": s, "ticker": f"T{k}", "sig": signal[k],
                         "ret": signal[k] * 0.01})  # a perfect signal
    frame = pl.DataFrame(rows)
    assert pooled_ic(frame, "sig", "ret")["ic"] == pytest.approx(1.0)
    q = quantile_returns(frame, "sig", "ret", 5)
    means = list(q["mean_return_by_quantile"].values())
    assert means == sorted(means) and q["top_minus_bottom"]["mean"] > 0


@pytest.mark.parametrize("names", [3, 4, 5, 7, 20])
def test_quantile_labels_follow_alphalens_qcut(names):
    import pandas as pd

    from quant.quantiles import quantile_labels

    rng = np.random.default_rng(names)
    frame = pl.DataFrame({"session": np.repeat(np.arange(30), names),
                          "sig": rng.normal(size=30 * names)})
    ours = frame.with_columns(q=quantile_labels("sig", 5))
    for _, group in ours.group_by("session"):
        want = pd.qcut(group["sig"].to_pandas(), 5, labels=False) + 1
        assert group["q"].to_list() == want.tolist()
        assert group.sort("sig")["q"][0] == 1 and group.sort("sig")["q"][-1] == 5


@pytest.mark.parametrize("lags", [0, 1, 4, 9])
def test_newey_west_t_matches_statsmodels(lags):
    import statsmodels.api as sm

    from quant.hac import newey_west_t

    rng = np.random.default_rng(lags)
    values = np.convolve(rng.normal(0.01, 0.05, 300), np.ones(5) / 5, mode="valid")  # overlap
    expected = sm.OLS(values, np.ones(len(values))).fit(
        cov_type="HAC", cov_kwds={"maxlags": lags}).tvalues[0]
    assert newey_west_t(values, lags) == pytest.approx(expected, rel=1e-10)
    plain = values.mean() / values.std(ddof=1) * np.sqrt(len(values))
    if lags >= 4:  # overlapping values: the honest t-statistic is smaller
        assert abs(newey_west_t(values, lags)) < abs(plain)


def _random_panel(seed: int, names: int = 12, sessions: int = 60) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows, signal = [], rng.normal(size=names)
    for s in range(sessions):
        signal = 0.7 * signal + 0.3 * rng.normal(size=names)   # a persistent ranking
        for k in range(names):
            if rng.random() < 0.1:
                continue  # a name missing on some sessions
            rows.append({"session": date(2024, 1, 1) + timedelta(days=s), "ticker": f"T{k}",
                         "sig": signal[k], "ret": 0.002 * signal[k] + rng.normal(0, 0.01)})
    return pl.DataFrame(rows)


@pytest.mark.parametrize("seed", [0, 1])
def test_rank_autocorrelation_follows_alphalens(seed):

    from quant.quantiles import rank_autocorrelation

    frame = _random_panel(seed)
    # alphalens.performance.factor_rank_autocorrelation, on the same data
    factor = frame.to_pandas().set_index(["session", "ticker"])["sig"]
    ranks = factor.groupby(level="session").rank()
    wide = ranks.reset_index().pivot(index="session", columns="ticker", values="sig")
    expected = wide.corrwith(wide.shift(1), axis=1).dropna().mean()
    assert rank_autocorrelation(frame, "sig") == pytest.approx(expected, rel=1e-12)
    assert 0.5 < expected < 1


def test_quantile_standard_errors_and_daily_returns():
    from quant.quantiles import quantile_daily

    frame = _random_panel(3)
    q = quantile_returns(frame, "sig", "ret", 4)
    daily = quantile_daily(frame, "sig", "ret", 4)
    for quantile, se in q["return_by_quantile_se"].items():
        values = daily.filter(pl.col("quantile") == quantile)["ret"].to_numpy()
        assert se == pytest.approx(values.std(ddof=1) / np.sqrt(len(values)), rel=1e-12)
        assert q["mean_return_by_quantile"][quantile] == pytest.approx(values.mean(), rel=1e-12)


def test_an_evaluation_draws_the_alphalens_figures_and_keeps_them_through_json():
    frame = _random_panel(4).with_columns(in_universe=pl.lit(True),
                                          fwd_ret_1=pl.col("ret"))
    evaluation = evaluate_signal(frame, "sig", (1,), 4)
    assert set(evaluation.figures()) == {"ic_series", "ic_monthly", "ic_distribution", "ic_qq",
                                         "ic_decay", "quantiles", "quantiles_cumulative"}
    again = Evaluation.from_json(json.loads(json.dumps(evaluation.to_json(), default=str)))
    assert again.quantile_daily.equals(evaluation.quantile_daily)
    assert again.first.turnover["rank_autocorrelation"] == pytest.approx(
        evaluation.first.turnover["rank_autocorrelation"])
