"""Learned combiners: out-of-sample only, purged, and able to find a planted effect."""

from datetime import date

import numpy as np
import polars as pl
import pytest

from data.errors import DataError
from quant.errors import ConfigError
from quant.learned import Fitted, ModelSpec, fit_walk_forward
from quant.pipeline import PanelParams, build_panel, no_signals
from strategies import get_strategy
from tests.quant.helpers import calendar_prices

TICKERS = [f"T{i:02d}" for i in range(12)]


def _planted_panel() -> pl.DataFrame:
    """Prices whose next-day return reverses the last one: return_1 predicts fwd_ret_1."""
    prices = calendar_prices(TICKERS, date(2020, 1, 1), date(2021, 12, 31), seed=3)
    rng = np.random.default_rng(3)
    frames = []
    for ticker in TICKERS:
        block = prices.filter(pl.col("ticker") == ticker)
        r = np.zeros(block.height)
        for t in range(1, block.height):
            r[t] = -0.3 * r[t - 1] + rng.normal(0, 0.01)
        close = 100 * np.exp(np.cumsum(r))
        frames.append(block.with_columns(close=pl.Series(close), adj_close=pl.Series(close),
                                         open=pl.Series(np.r_[close[0], close[:-1]])))
    return build_panel(no_signals(), pl.concat(frames), PanelParams(min_history=0,
                                                                     horizons=(1, 5)))


PANEL = _planted_panel()
PRICE = ("return_1", "return_5", "return_20", "volatility_20")  # `gap` is 0: open = last close


@pytest.mark.parametrize("kind,target", [("linear", "rank"), ("linear", "direction"),
                                         ("lightgbm", "rank")])
def test_walk_forward_finds_a_planted_reversal_out_of_sample(kind, target):
    fitted = fit_walk_forward(PANEL, ModelSpec(kind=kind, target=target, test=42,
                                               min_train=120, features=PRICE))
    scored = fitted.panel(PANEL).filter(pl.col("prediction").is_not_null())
    ic = scored.group_by("session").agg(pl.corr("prediction", "fwd_ret_1",
                                                method="spearman")).drop_nans()
    assert ic["prediction"].mean() > 0.1
    assert fitted.importance["feature"][0] == "return_1"
    assert fitted.feature_ic.filter(pl.col("feature") == "return_1")["rank_ic"][0] < -0.1


def test_predictions_are_only_for_sessions_after_each_models_training_labels():
    spec = ModelSpec(kind="linear", horizon=5, test=21, min_train=100, features=PRICE)
    fitted = fit_walk_forward(PANEL, spec)
    sessions = PANEL.filter(pl.col("in_universe"))["session"].unique().sort().to_list()
    index = {s: i for i, s in enumerate(sessions)}
    for fold in fitted.folds.iter_rows(named=True):
        # the last training label (5 sessions) ends, plus the embargo, before the block
        assert index[fold["train_end"]] + spec.horizon + spec.horizon <= index[
            fold["test_start"]]
    first = fitted.folds["test_start"].min()
    assert fitted.predictions["session"].min() == first
    assert index[first] == spec.min_train


def test_the_learned_strategy_trades_only_out_of_sample_predictions():
    fitted = fit_walk_forward(PANEL, ModelSpec(kind="linear", test=42, min_train=200,
                                               features=PRICE))
    weights = get_strategy("learned").weights(fitted.panel(PANEL))
    first = fitted.predictions["session"].min()
    before = weights.filter(pl.col("session") < first)
    assert before.height > 0 and (before["weight"].fill_null(0) == 0).all()
    after = weights.filter(pl.col("session") >= first)
    assert (after["weight"].fill_null(0) != 0).any()
    with pytest.raises(ValueError, match="out-of-sample predictions"):
        get_strategy("learned").weights(PANEL)


def test_a_fit_saves_and_loads(tmp_path):
    fitted = fit_walk_forward(PANEL, ModelSpec(kind="linear", test=63, min_train=200,
                                               features=PRICE))
    again = Fitted.load(fitted.save(tmp_path / "m"))
    assert again.spec == fitted.spec
    assert again.predictions.equals(fitted.predictions)
    assert again.describe() == fitted.describe()


def test_an_embargo_shorter_than_the_horizon_is_refused():
    with pytest.raises(Exception, match="embargo"):
        ModelSpec(horizon=5, embargo=2)


def test_the_learned_grid_gives_each_configurations_weights():
    fitted = fit_walk_forward(PANEL, ModelSpec(kind="linear", test=63, min_train=200,
                                               features=PRICE))
    panel, strategy = fitted.panel(PANEL), get_strategy("learned")
    points = [{"quantile": q, "rebalance": r} for q in (0.1, 0.5) for r in (1, 5)]
    grid = strategy.weights_grid(panel, points)
    for i, point in enumerate(points):
        one = strategy.weights(panel, **point)
        assert grid[f"weight_{i}"].equals(one["weight"], check_names=False)


def test_degenerate_inputs_are_refused_with_the_numbers_that_fell_short():
    with pytest.raises(ConfigError, match="constant on all .* rows of the period: gap"):
        fit_walk_forward(PANEL, ModelSpec(kind="linear", features=(*PRICE, "gap")))
    one = PANEL.filter(pl.col("ticker") == PANEL["ticker"][0])
    with pytest.raises(ConfigError, match="at most 1 names on any of the period's .* need at "
                                          "least 3"):
        fit_walk_forward(one, ModelSpec(kind="linear", features=PRICE))
    silent = PANEL.with_columns(pl.lit(None, pl.Float64).alias("adj_close"))
    with pytest.raises((ConfigError, DataError)):
        fit_walk_forward(silent, ModelSpec(kind="linear", features=PRICE))


def test_every_feature_asked_for_leaves_out_those_that_cannot_vary():
    fitted = fit_walk_forward(PANEL, ModelSpec(kind="linear", test=126, min_train=250,
                                               features=()))
    assert "gap" not in fitted.spec.features and "return_1" in fitted.spec.features
    assert set(fitted.importance["feature"]) == set(fitted.spec.features)
