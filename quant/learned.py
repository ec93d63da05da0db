"""Learned combiners: point-in-time features, a model fitted walk-forward on purged, embargoed
training windows, and its out-of-sample predictions.

Each feature is rank-normalised across the session's universe (to [-0.5, 0.5], missing = 0,
the middle), so a model sees where a name stands today, not levels that drift over years. The
target is the session's cross-sectional rank of the forward return (`rank`) or whether that
return is positive (`direction`). Test blocks of `test` sessions follow each other; each is
predicted by a model trained only on sessions whose label was complete `embargo` sessions (by
default the horizon) before the block began (`quant.purged`). Only those predictions leave
this module.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl

from quant import artefact
from quant import features as feats
from quant.errors import ConfigError
from quant.evaluate import MIN_NAMES, daily_ic, usable
from quant.hac import newey_west_t
from quant.purged import walk_forward_splits
from quant.settings import ModelSpec

TABLES = ("predictions", "folds", "importance", "feature_ic")
# Gradient-boosted trees kept shallow and slow, for noisy daily cross-sections (not tuned).
LIGHTGBM = dict(n_estimators=200, learning_rate=0.03, num_leaves=15, min_child_samples=100,
                subsample=0.8, subsample_freq=1, colsample_bytree=0.8, reg_lambda=5.0,
                deterministic=True, n_jobs=2, verbose=-1)
DEFAULT_SPEC = ModelSpec()
MIN_TRAIN_ROWS = 50  # a block whose training window has fewer labelled rows is not predicted


@dataclass
class Fitted:
    """Out-of-sample predictions (ticker, session, prediction, fold), the folds, the mean
    feature importance, and each feature's rank IC over the predicted sessions."""

    spec: ModelSpec
    predictions: pl.DataFrame
    folds: pl.DataFrame
    importance: pl.DataFrame
    feature_ic: pl.DataFrame
    meta: dict = field(default_factory=dict)

    def panel(self, panel: pl.DataFrame) -> pl.DataFrame:
        """The panel with `prediction` (null outside the test blocks) for the `learned`
        strategy and for `evaluate_signal(panel, "prediction")`."""
        return panel.join(self.predictions.select("ticker", "session", "prediction"),
                          on=["ticker", "session"], how="left")

    def describe(self) -> dict:
        return {"spec": asdict(self.spec), **self.meta}

    def notes(self) -> dict:
        """What a backtest of these predictions stores for its report."""
        ic = {r["feature"]: r for r in self.feature_ic.to_dicts()}
        return {"model": json.dumps(self.describe(), default=str), "features": [
            {"feature": r["feature"], "importance": r["importance"],
             "rank_ic": ic[r["feature"]]["rank_ic"], "t_hac": ic[r["feature"]]["t_hac"],
             "sessions": ic[r["feature"]]["sessions"]}   # how many daily ICs are behind it
            for r in self.importance.to_dicts()]}

    def save(self, folder: Path) -> Path:
        """The fit as parquet tables and a model.json in `folder`, replacing what was there
        whole (`quant.artefact`)."""
        files = {f"{part}.parquet": getattr(self, part).write_parquet for part in TABLES}
        described = json.dumps(self.describe(), indent=2, default=str)
        return artefact.write(folder, {**files, "model.json": lambda p: p.write_text(described)})

    @classmethod
    def load(cls, folder: Path) -> Fitted:
        artefact.verified(folder, "fitted model",
                          f"fit it again with `quant model fit --name {folder.name}`")
        meta = json.loads((folder / "model.json").read_text())
        spec = meta.pop("spec")
        spec = ModelSpec.of(spec)
        return cls(spec, *(pl.read_parquet(folder / f"{part}.parquet") for part in TABLES),
                   meta)


def feature_names(spec: ModelSpec) -> list[str]:
    """The features the spec names, or every registered one when it names none."""
    return list(spec.features) or feats.names()


def universe_features(panel: pl.DataFrame, spec: ModelSpec) -> pl.DataFrame:
    """The panel's universe rows with the spec's features (point-in-time checked)."""
    if f"fwd_ret_{spec.horizon}" not in panel.columns:
        raise ConfigError(f"the panel has no fwd_ret_{spec.horizon}: build it with horizons "
                          f"including {spec.horizon}")
    return feats.with_features(panel, feature_names(spec)).filter(pl.col("in_universe"))


def check_learnable(raw: pl.DataFrame, spec: ModelSpec) -> list[str]:
    """Features with no variation in the period (left out when the spec names none, refused
    when it names them); a ConfigError, with the numbers that fell short, for inputs a
    cross-sectional model cannot learn from at all."""
    if raw.is_empty():
        raise ConfigError("the panel has no universe rows in the period: widen since/until")
    widest = int(raw.group_by("session").len()["len"].max())
    if widest < MIN_NAMES:
        raise ConfigError(f"at most {widest} names on any of the period's "
                          f"{raw['session'].n_unique()} sessions ({raw['ticker'].n_unique()} "
                          f"tickers in all): ranks across names need at least {MIN_NAMES}")
    flat = [n for n in feature_names(spec) if raw[n].drop_nulls().drop_nans().n_unique() < 2]
    if flat and (spec.features or len(flat) == len(feature_names(spec))):
        raise ConfigError(f"features missing or constant on all {raw.height} rows of the "
                          f"period: {', '.join(flat)}; leave them out (features=...) or give a "
                          "period where they vary")
    return flat


def design(frame: pl.DataFrame, spec: ModelSpec) -> pl.DataFrame:
    """ticker, session, the forward return, the rank-normalised features and the target."""
    ret, names = f"fwd_ret_{spec.horizon}", feature_names(spec)
    target = (_centred_rank(ret) if spec.target == "rank"
              else pl.when(pl.col(ret).is_not_null()).then((pl.col(ret) > 0).cast(pl.Float64)))
    return frame.select("ticker", "session", ret, *[
        _centred_rank(n).fill_null(0.0).alias(n) for n in names], target=target).sort(
        "session", "ticker")


def _centred_rank(column: str) -> pl.Expr:
    """Rank across the session's names scaled to [-0.5, 0.5]; null stays null."""
    live = pl.col(column).is_not_null()
    n = live.sum().over("session")
    rank = pl.col(column).rank("average").over("session", live)
    return pl.when(live).then(pl.when(n > 1).then((rank - 1) / (n - 1) - 0.5).otherwise(0.0))


def _model(spec: ModelSpec):
    if spec.kind == "linear":
        from sklearn.linear_model import LogisticRegression, Ridge

        return (Ridge(alpha=10.0) if spec.target == "rank"
                else LogisticRegression(C=0.1, max_iter=1000))
    import lightgbm as lgb

    estimator = lgb.LGBMRegressor if spec.target == "rank" else lgb.LGBMClassifier
    return estimator(**LIGHTGBM, random_state=spec.seed)


def _importance(model, spec: ModelSpec) -> np.ndarray:
    raw = (np.abs(np.ravel(model.coef_)) if spec.kind == "linear"
           else model.booster_.feature_importance("gain"))
    total = raw.sum()
    return raw / total if total > 0 else raw


def _predict(model, spec: ModelSpec, x: np.ndarray) -> np.ndarray:
    if spec.target == "direction":
        return model.predict_proba(x)[:, 1] - 0.5
    return model.predict(x)


def walk_forward_design(panel: pl.DataFrame, spec: ModelSpec
                        ) -> tuple[ModelSpec, pl.DataFrame, pl.DataFrame, list]:
    """The spec (features that cannot vary left out when it names none), the universe rows
    with features, the design with each session's position (`pos`), and the purged splits."""
    raw = universe_features(panel, spec)
    flat = check_learnable(raw, spec)
    if flat:  # every registered feature was asked for: those that cannot vary are left out
        spec = replace(spec, features=tuple(n for n in feature_names(spec) if n not in flat))
    data = design(raw, spec).with_columns(pos=pl.col("session").rank("dense").cast(pl.Int64) - 1)
    embargo = spec.horizon if spec.embargo is None else spec.embargo
    splits = walk_forward_splits(data["session"].n_unique(), spec.test, spec.horizon,
                                 spec.train, embargo, first_test=spec.min_train)
    return spec, raw, data, splits


def _fit_block(data: pl.DataFrame, spec: ModelSpec, train_pos: np.ndarray):
    """The model fitted on a block's training sessions, or None with too few labelled rows."""
    train = data.filter(pl.col("pos").is_between(train_pos[0], train_pos[-1])
                        & pl.col("target").is_not_null())
    if train.height < MIN_TRAIN_ROWS:
        return None, train
    model = _model(spec)
    model.fit(train.select(feature_names(spec)).to_numpy(), train["target"].to_numpy())
    return model, train


def fit_walk_forward(panel: pl.DataFrame, spec: ModelSpec = DEFAULT_SPEC) -> Fitted:
    """Fit `spec` on each purged training window and predict the block after it."""
    spec, raw, data, splits = walk_forward_design(panel, spec)
    if not splits:
        raise ConfigError(f"{data['session'].n_unique()} sessions leave no test block after "
                          f"min_train {spec.min_train}: lower it or give a longer period")
    names = feature_names(spec)
    predictions, folds, importance = [], [], []
    for fold, (train_pos, test_pos) in enumerate(splits):
        test = data.filter(pl.col("pos").is_between(test_pos[0], test_pos[-1]))
        model, train = _fit_block(data, spec, train_pos)
        if model is None or test.is_empty():
            continue
        importance.append(_importance(model, spec))
        predictions.append(test.select("ticker", "session").with_columns(
            prediction=pl.Series(_predict(model, spec, test.select(names).to_numpy())),
            fold=pl.lit(fold)))
        folds.append({"fold": fold, "train_start": train["session"].min(),
                      "train_end": train["session"].max(), "test_start": test["session"].min(),
                      "test_end": test["session"].max(), "train_rows": train.height,
                      "test_rows": test.height})
    if not predictions:
        raise ConfigError(f"no walk-forward block had {MIN_TRAIN_ROWS} labelled training rows: "
                          "give a longer period or a smaller min_train")
    out = pl.concat(predictions)
    mean_importance = np.mean(importance, axis=0)
    return Fitted(
        spec, out, pl.DataFrame(folds),
        pl.DataFrame({"feature": names, "importance": mean_importance}).sort(
            "importance", descending=True),
        feature_ic(raw.join(out.select("ticker", "session"), on=["ticker", "session"]),
                   names, f"fwd_ret_{spec.horizon}", spec.horizon),
        {"sessions": data["session"].n_unique(), "folds": len(folds),
         "embargo": spec.horizon if spec.embargo is None else spec.embargo,
         "first_prediction": str(out["session"].min()),
         "panel_since": str(panel["session"].min())})   # where its features' history began


def predict_session(panel: pl.DataFrame, spec: ModelSpec, session, models: dict
                    ) -> pl.DataFrame:
    """ticker, prediction for the panel's last `session`, as the walk-forward predicts it:
    by the model of the block it falls in, trained on the same purged window (empty before
    the first block or when that window is too thin). A panel known at the session's open
    holds every label that window needs, so the model is the walk-forward's own. `models`
    keeps each block's fit (by fold and window) for the sessions after it."""
    spec, _, data, splits = walk_forward_design(panel, spec)
    today = data.filter(pl.col("session") == session)
    none = pl.DataFrame(schema={"ticker": pl.String, "prediction": pl.Float64})
    if today.is_empty():
        return none
    position = today["pos"][0]
    block = next(((fold, train) for fold, (train, test) in enumerate(splits)
                  if test[0] <= position <= test[-1]), None)
    if block is None:
        return none
    fold, train_pos = block
    key = (fold, int(train_pos[0]), int(train_pos[-1]))
    if key not in models:
        models[key] = _fit_block(data, spec, train_pos)[0]
    if models[key] is None:
        return none
    x = today.select(feature_names(spec)).to_numpy()
    return today.select("ticker", prediction=pl.Series(_predict(models[key], spec, x),
                                                       dtype=pl.Float64))


def feature_ic(frame: pl.DataFrame, names: list[str], ret: str, horizon: int) -> pl.DataFrame:
    """Each feature's mean daily rank IC against `ret`, with its Newey-West t-statistic."""
    rows = []
    for name in names:
        kept, _ = usable(frame, name, horizon)
        ics = daily_ic(kept, name, ret)["rank_ic"].drop_nulls().to_numpy()
        rows.append({"feature": name, "rank_ic": float(ics.mean()) if ics.size else None,
                     "t_hac": newey_west_t(ics, horizon - 1) if ics.size > 2 else None,
                     "sessions": int(ics.size)})
    return pl.DataFrame(rows, schema={"feature": pl.String, "rank_ic": pl.Float64,
                                      "t_hac": pl.Float64, "sessions": pl.Int64})
