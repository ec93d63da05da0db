"""Research-layer commands: features, model fit/evaluate (learned combiners), bench stocknet."""

from __future__ import annotations

import click
import polars as pl

from data.calendar import get_calendar
from quant.cli.app import cli, console, day, emit, json_option, workspace_of
from quant.features import FEATURES
from quant.pipeline import load_prices
from quant.settings import KINDS, TARGETS, ModelSpec
from quant.signal_store import choose_signal_set, load_signals
from quant.tables import fmt, print_evaluation, table_of
from quant.text import stocknet


@cli.command("features")
@json_option
def features_cmd(as_json):
    """The registered features: name, source (text or price) and what each measures."""
    rows = [{"name": f.name, "source": f.source, "description": f.description}
            for f in FEATURES.values()]
    emit(rows, as_json, lambda r: console.print(table_of(r, title="features")))


@cli.group("model")
def model_group() -> None:
    """Learned combiners of the features, fitted walk-forward (purged, embargoed)."""


def _spec_options(fn):
    """The `ModelSpec` fields as options; their defaults are the dataclass's, read from it."""
    spec = ModelSpec()
    options = [
        click.option("--kind", type=click.Choice(KINDS), default=spec.kind, show_default=True),
        click.option("--target", type=click.Choice(TARGETS), default=spec.target,
                     show_default=True),
        click.option("--horizon", type=int, default=spec.horizon, show_default=True,
                     help="Sessions of the forward return predicted."),
        click.option("--test", type=int, default=spec.test, show_default=True,
                     help="Sessions per walk-forward test block."),
        click.option("--train", type=int, default=spec.train,
                     help="Sessions in a rolling training window (default: expanding)."),
        click.option("--embargo", type=int, default=spec.embargo,
                     help="Sessions between training labels and a test block (default: "
                          "the horizon)."),
        click.option("--min-train", type=int, default=spec.min_train, show_default=True,
                     help="Sessions before the first test block."),
        click.option("--features", "names", default=None,
                     help="Comma-separated features (default: all; `quant features`)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@model_group.command("fit")
@click.option("--name", default="model", show_default=True, help="Saved as models/NAME.")
@_spec_options
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--backtest", "with_backtest", is_flag=True,
              help="Also backtest the `learned` strategy on the out-of-sample predictions.")
@click.option("--walk-forward", is_flag=True, help="The backtest as a walk-forward over the "
              "strategy's grid (deflated Sharpe, PBO).")
@json_option
@click.pass_context
def model_fit(ctx, name, kind, target, horizon, test, train, embargo, min_train, names, since,
              until, with_backtest, walk_forward, as_json):
    """Fit walk-forward, save the out-of-sample predictions and evaluate them."""
    ws = workspace_of(ctx, write=True)
    fitted = ws.fit_model(
        name, day(since), day(until), kind=kind, target=target, horizon=horizon, test=test,
        train=train, embargo=embargo, min_train=min_train,
        features=tuple(names.split(",")) if names else ())
    _report(ws, fitted, with_backtest, walk_forward, as_json)


@model_group.command("evaluate")
@click.argument("name", default="model")
@click.option("--backtest", "with_backtest", is_flag=True,
              help="Also backtest the `learned` strategy on the out-of-sample predictions.")
@click.option("--walk-forward", is_flag=True, help="The backtest as a walk-forward.")
@json_option
@click.pass_context
def model_evaluate(ctx, name, with_backtest, walk_forward, as_json):
    """Evaluate a saved model's out-of-sample predictions (IC, quantiles, decay), its feature
    importance and per-feature IC; optionally backtest them."""
    ws = workspace_of(ctx, write=with_backtest)
    _report(ws, ws.fitted_model(name), with_backtest, walk_forward, as_json)


def _report(ws, fitted, with_backtest: bool, walk_forward: bool, as_json: bool) -> None:
    panel = ws.predicted_panel(fitted)
    notes = fitted.notes()
    evaluation = ws.evaluate(panel, "prediction")
    out = {"model": fitted.describe(), "evaluation": evaluation.to_json(),
           "importance": fitted.importance.to_dicts(),
           "feature_ic": fitted.feature_ic.to_dicts()}
    if with_backtest:
        out["backtest"] = ws.backtest("learned", walk_forward=walk_forward, panel=panel,
                                      notes=notes).summary

    def render(o: dict) -> None:
        m = o["model"]
        console.print(f"{m['spec']['kind']} on {m['spec']['target']} of the "
                      f"{m['spec']['horizon']}-session return: {m['folds']} walk-forward "
                      f"blocks, embargo {m['embargo']}, predictions from "
                      f"{m['first_prediction']}")
        print_evaluation(evaluation, console)
        console.print(table_of([
            {"feature": r["feature"], "importance": fmt(r["importance"], 3),
             "rank IC": fmt(r["rank_ic"]), "t (HAC)": fmt(r["t_hac"], 2)}
            for r in notes["features"]], title="features (out-of-sample sessions)"))
        if "backtest" in o:
            console.print(table_of([{"": k, "value": fmt(v, 3)}
                                    for k, v in o["backtest"].items()], title="backtest"))
    emit(out, as_json, render)


@cli.group("bench")
def bench_group() -> None:
    """Standard benchmarks, run on the workspace's data."""


@bench_group.command("stocknet")
@click.option("--split", "evaluate_on", type=click.Choice(["dev", "test"]), default="dev",
              show_default=True, help="Where to measure (models train on the train split).")
@json_option
@click.pass_context
def bench_stocknet(ctx, evaluate_on, as_json):
    """StockNet movement prediction (Xu and Cohen, 2018): accuracy and MCC of price, text and
    text + price models, point-in-time, on a workspace holding StockNet's prices and scored
    posts."""
    ws = workspace_of(ctx)
    with ws.warehouse() as wh:
        which = choose_signal_set(wh)
        signals, prices = load_signals(wh, which), load_prices(wh)
    data = stocknet.examples(signals, prices, get_calendar(ws.config.data.calendar))
    counts = data.group_by("split").agg(examples=pl.len(), up=pl.col("label").mean(),
                                        with_posts=(pl.col("posts") > 0).mean()).sort("split")
    scores = [vars(s) for s in stocknet.benchmark(data, evaluate_on)]
    covered = counts.filter(pl.col("split") == evaluate_on)["with_posts"]
    warning = (f"only {covered[0]:.0%} of the {evaluate_on} examples have posts in their "
               "window: this warehouse lacks that period's posts, so its text models read "
               "almost nothing" if covered.len() and covered[0] < 0.5 else None)

    def render(o: dict) -> None:
        console.print(table_of([{k: fmt(v, 3) for k, v in r.items()} for r in o["splits"]],
                               title="examples"))
        console.print(table_of([{k: fmt(v, 4) for k, v in r.items()} for r in o["scores"]],
                               title=f"StockNet {evaluate_on}"))
        if warning:
            console.print(f"[yellow]warning:[/] {warning}")
    emit({"signals": which.provenance(), "splits": counts.to_dicts(), "scores": scores,
          "warning": warning}, as_json, render)
