"""`quant llm`: the local model's info, evaluation, fine-tuning, calibration, layer probes,
routing and reward and reason training. The command line loads this module (and torch with
it) only when an `llm` command runs (`quant.cli.ModelCommands`)."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import replace
from pathlib import Path

import click
import polars as pl

import llm
from llm.infer.engine import DocInput
from llm.infer.evaluate import evaluate, read_labelled
from llm.infer.specialisation import routing_by_source, specialisation
from llm.model import adapter as adapters
from llm.settings import MODES, PRECISIONS, FinetuneSettings, ReasonTrainSettings
from llm.train.calibrate import calibrate
from llm.train.figure_sentences import from_filings, hold_out
from llm.train.finetune import train_adapter
from llm.train.probe import probe
from llm.train.reason_train import train_reason_adapter
from llm.train.training_files import read_training_files, source_name
from quant.artefact import write_file
from quant.cli.app import config_of, console, emit, json_option
from quant.models import load_engine, load_model, model_cache
from quant.settings import RewardSettings
from quant.tables import table_of
from quant.text.reward import train_reward_adapter

# The training settings' defaults, which the options below show and pass on.
_TUNE, REASON, REWARD = FinetuneSettings(), ReasonTrainSettings(), RewardSettings()


def labelled_columns(command):
    """--text-col and --label-col, as every command on labelled files takes them: TFNS calls
    its label `label`, StockEmotions `sentiment`, so the first one a file has is used."""
    command = click.option("--label-col", "label_cols", multiple=True,
                           default=("label", "sentiment"), show_default=True,
                           help="label column; the first one a file has is used")(command)
    return click.option("--text-col", default="text", show_default=True)(command)


@click.group("llm")
def llm_group() -> None:
    """The local model: info, evaluation and fine-tuning."""


@llm_group.command("info")
@click.option("--model", "spec", default=None)
@click.option("--precision", type=click.Choice(PRECISIONS),
              default=None)
@json_option
@click.pass_context
def llm_info(ctx, spec, precision, as_json):
    """Model, parameters, experts, precision and fingerprint."""
    info = llm.describe(load_model(config_of(ctx), spec, precision))
    emit(info, as_json, lambda d: console.print(table_of(
        [{"key": k, "value": v} for k, v in d.items()], title="model")))


@llm_group.command("eval")
@click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False))
@click.option("--text-col", default="text", show_default=True)
@click.option("--label-col", default="label", show_default=True)
@click.option("--model", "spec", default=None)
@click.option("--adapter", default=None,
              help="a shipped adapter's name (sentiment-v1 to -v3, reason-v1) or a "
                   "directory, on --model")
@click.option("--mode", type=click.Choice(MODES), default="score")
@click.option("--limit", type=int, default=None)
@json_option
@click.pass_context
def llm_eval(ctx, data_path, text_col, label_col, spec, adapter, mode, limit, as_json):
    """Accuracy, F1, confusion matrix and calibration on a labelled Parquet/CSV file; rows
    about an entity (an `entity` or `ticker` column, or a cashtag) are read about it."""
    config = config_of(ctx)
    frame = read_labelled(data_path, text_col, label_col, limit)
    metrics = evaluate(load_engine(config, spec, adapter=adapter), frame, mode)
    metrics["data"] = str(data_path)

    def render(m: dict) -> None:
        console.print(table_of([{k: (round(v, 4) if isinstance(v, float) else v)
                                 for k, v in m.items()
                                 if k not in ("confusion", "labels", "dictionary",
                                              "patterns")}],
                               title="evaluation"))
        console.print(table_of([m["dictionary"]], title="the Loughran-McDonald dictionary "
                               "on the same rows (the model is above it by above_dictionary)"))
        console.print(table_of(m["patterns"], title="by pattern of the text (accuracy with "
                               "and without it; polar_read_neutral: its bullish and bearish "
                               "rows read as neutral)"))
        console.print(table_of([{"truth": label, **dict(zip(m["labels"], row, strict=True))}
                                for label, row in zip(m["labels"], m["confusion"], strict=True)],
                               title="confusion (rows: truth)"))

    emit(metrics, as_json, render)


def _command_line() -> str:
    """This invocation, as a shell command (recorded in what it writes, to reproduce it)."""
    import shlex

    return shlex.join(["quant", *sys.argv[1:]])


@llm_group.command("finetune")
@click.option("--data", "train_files", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False), help="labelled file (repeatable)")
@click.option("--valid", "valid_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False),
              help="validation file (repeatable): chooses the epoch, never trained on")
@labelled_columns
@click.option("--base", default="default-base", show_default=True, help="model to adapt")
@click.option("--epochs", type=int, default=None, help=f"(default {_TUNE.epochs})")
@click.option("--lora-rank", type=int, default=None, help=f"(default {_TUNE.rank})")
@click.option("--layers", default=None,
              help="trained band START:STOP; the head reads layer STOP's input "
                   f"(default {_TUNE.start}:{_TUNE.stop})")
@click.option("--batch-size", type=int, default=None, help=f"(default {_TUNE.batch_size})")
@click.option("--lr", type=float, default=None,
              help=f"learning rate of the low-rank deltas and routers (default {_TUNE.lr})")
@click.option("--weight", "source_weights", multiple=True, metavar="FILE=W",
              help="loss weight of a training file named folder/stem, e.g. tfns/train=2 "
                   "(repeatable; others weigh 1)")
@click.option("--top-k", type=int, default=None,
              help="experts per token of the bundled model's upcycle (default: as `default`); "
                   "2 or more gives the routers a gradient")
@click.option("--routing-weights", type=click.Choice(["normalised", "scaled"]), default=None,
              help="the upcycle's routing weights: normalised over the chosen experts (as "
                   "`default`), or the router's probability x experts / top-k, which gives "
                   "the routers a gradient at top-1 too")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="adapter directory to write")
@click.option("--calibrate/--no-calibrate", default=True, show_default=True,
              help="fit the head's temperature on the validation files afterwards")
@json_option
@click.pass_context
def llm_finetune(ctx, train_files, valid_files, text_col, label_cols, base, epochs, lora_rank,
                 layers, batch_size, lr, source_weights, top_k, routing_weights, out,
                 calibrate, as_json):
    """Fine-tune a domain adapter (low-rank band + sentiment head) on labelled text."""
    config = config_of(ctx)
    band = {}
    if layers is not None:
        try:
            band = dict(zip(("start", "stop"), (int(x) for x in layers.split(":")), strict=True))
        except ValueError:
            raise click.BadParameter(f"--layers takes START:STOP like 10:16, not {layers!r}"
                                     ) from None
    given = {"rank": lora_rank, "epochs": epochs, "batch_size": batch_size, "lr": lr, **band}
    settings = dataclasses.replace(  # what is not given, FinetuneSettings decides
        _TUNE, source_weights=_source_weights(source_weights),
        **{k: v for k, v in given.items() if v is not None})
    log = (lambda line: None) if as_json else (lambda line: console.print(line))
    meta = train_adapter(base, list(train_files), list(valid_files), text_col, list(label_cols),
                         out, settings, cache_dir=model_cache(config),
                         names=config.models, command=_command_line(), log=log,
                         upcycle=_upcycle_option(top_k, routing_weights))
    if valid_files and calibrate:

        log(f"calibrating: {_calibrate(config, base, out, valid_files, text_col, label_cols)}")
        meta = adapters.read(out).meta             # as written, with its calibration
    report = meta["report"]
    summary = {"adapter": out, "best_epoch": report["best_epoch"],
               "wall_seconds": report["wall_seconds"],
               **{f"{name} {k}": m[k] for name, m in report["valid"].items()
                  for k in ("accuracy", "weighted_f1")}}
    emit(meta if as_json else summary, as_json,
         lambda s: console.print(table_of([s], title="fine-tuning")))


@llm_group.command("calibrate")
@click.option("--adapter", "adapter_dir", required=True, type=click.Path(file_okay=False),
              help="adapter directory (rewritten with its head calibrated)")
@click.option("--valid", "valid_files", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False), help="validation file (repeatable)")
@labelled_columns
@click.option("--base", default="default-base", show_default=True, help="the adapter's model")
@json_option
@click.pass_context
def llm_calibrate(ctx, adapter_dir, valid_files, text_col, label_cols, base, as_json):
    """Fit the sentiment head's temperature on validation files; ECE before and after."""
    report = _calibrate(config_of(ctx), base, adapter_dir, valid_files, text_col, label_cols)
    emit(report, as_json, lambda r: console.print(table_of(
        [{"file": f, **m} for f, m in r["files"].items()],
        title=f"temperature {r['temperature']}")))


def _calibrate(config, base: str, adapter_dir: str, valid_files, text_col: str,
               label_cols) -> dict:
    valid = {source_name(f): read_training_files([f], text_col, list(label_cols))
             for f in valid_files}
    engine = load_engine(config, base, adapter=adapter_dir)
    return calibrate(engine, adapter_dir, valid)


@llm_group.command("probe")
@click.option("--data", "train_files", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False), help="labelled file (repeatable)")
@click.option("--valid", "valid_files", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False), help="validation file (repeatable)")
@labelled_columns
@click.option("--base", default="default-base", show_default=True, help="the model to probe")
@click.option("--layers", required=True, help="layers whose input is probed, e.g. 6,8,10,12")
@click.option("--sample", type=int, default=400, show_default=True,
              help="rows drawn from each training file (seed 0); validation files give 300")
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True)
@json_option
@click.pass_context
def llm_probe(ctx, train_files, valid_files, text_col, label_cols, base, layers, sample,
              precision, as_json):
    """Where a base reads sentiment best: a linear probe on the mean-pooled document tokens
    entering each of LAYERS, fitted on a sample of the training files, scored on the
    validation files; the best layer is where a fine-tuned head goes (--layers START:STOP)."""
    try:
        wanted = [int(x) for x in layers.split(",")]
    except ValueError:
        raise click.BadParameter(f"--layers takes numbers like 6,8,10, not {layers!r}") from None

    def drawn(path: str, n: int):
        frame = read_training_files([path], text_col, list(label_cols))
        return frame.sample(min(n, frame.height), seed=0)
    train = pl.concat([drawn(f, sample) for f in train_files])
    valid = {source_name(f): drawn(f, 300) for f in valid_files}
    loaded = load_model(config_of(ctx), base, precision)
    log = (lambda line: None) if as_json else (lambda line: console.print(line))
    report = probe(loaded, train, valid, wanted, log=log)
    emit(report, as_json, lambda r: console.print(table_of(
        [{"layer": layer, **row["files"], "mean": row["mean"],
          "best": "<-" if layer == r["best"] else ""} for layer, row in r["layers"].items()],
        title=f"{loaded.model_id}: linear probe by layer")))


@llm_group.command("routing")
@click.option("--data", "files", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False), help="labelled file: one source each")
@labelled_columns
@click.option("--model", "spec", default=None)
@click.option("--adapter", default=None, help="a shipped adapter's name or a directory")
@click.option("--limit", type=int, default=500, show_default=True, help="documents per source")
@json_option
@click.pass_context
def llm_routing(ctx, files, text_col, label_cols, spec, adapter, limit, as_json):
    """Expert load per layer and source, and how far the sources' routing diverges."""
    config = config_of(ctx)
    sources = {}
    for f in files:
        frame = read_training_files([f], text_col, list(label_cols))
        frame = frame.sample(min(limit, frame.height), seed=0) if limit else frame
        sources[source_name(f)] = [
            DocInput(e, t) for e, t in zip(frame["entity"], frame["text"], strict=True)]
    engine = load_engine(config, spec, adapter=adapter)
    rows = specialisation(routing_by_source(engine, sources))
    emit(rows, as_json, lambda r: console.print(table_of(r, title="routing by source")))


@llm_group.command("reward")
@click.option("--posts", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Parquet of posts: ticker, created_at (UTC), text")
@click.option("--prices", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Parquet of daily prices: ticker, date/session, open, close, adj_close, volume")
@click.option("--split", type=click.DateTime(["%Y-%m-%d"]),
              default=str(REWARD.split), show_default=True,
              help="train on sessions before, evaluate on posts from")
@click.option("--model", "spec", default="default", show_default=True)
@click.option("--steps", type=int, default=REWARD.grpo.steps, show_default=True)
@click.option("--horizon", type=int, default=REWARD.horizon, show_default=True)
@click.option("--out", required=True, type=click.Path(file_okay=False))
@json_option
@click.pass_context
def llm_reward(ctx, posts, prices, split, spec, steps, horizon, out, as_json):
    """GRPO-style reward stage: the head learns from realised returns (out-of-sample IC)."""
    config = config_of(ctx)
    loaded = load_model(config, spec, "fp32")
    settings = replace(REWARD, split=split.date(), horizon=horizon,
                       grpo=replace(REWARD.grpo, steps=steps))
    log = (lambda line: None) if as_json else (lambda line: console.print(line))
    meta = train_reward_adapter(loaded, posts, prices, out, settings,
                                command=_command_line(), log=log)
    report = meta["reward_stage"]
    rows = [{"head": name, "horizon": h, **{k: v for k, v in m.items() if k != "pooled_ic_95"}}
            for name in ("supervised_ic", "rewarded_ic") for h, m in report[name].items()]
    emit(meta if as_json else rows, as_json,
         lambda r: console.print(table_of(r, title="out-of-sample rank IC")))


@llm_group.command("figure-sentences")
@click.argument("filings", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Parquet to write: text, label, entity, concept, file")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--hold-out-one-in", "one_in", type=int, default=None,
              help="hold out one filing in N whole (chosen by a hash of its file name)...")
@click.option("--hold-out-to", "held_out_path", type=click.Path(dir_okay=False), default=None,
              help="...into this Parquet, to check a model on filings it was not trained on")
@json_option
def llm_figure_sentences(filings, out, seed, one_in, held_out_path, as_json):
    """Labelled formal-register sentences from the figures filings report in inline XBRL
    ("Operating profit rose to $13.1 mn from $8.7 mn"): to train or evaluate on."""
    if (one_in is None) != (held_out_path is None):
        raise click.UsageError("--hold-out-one-in and --hold-out-to go together")
    frame, without = from_filings([Path(f) for f in filings], seed)
    held = None
    if one_in is not None:
        frame, held = hold_out(frame, one_in)
        write_file(Path(held_out_path), held.write_parquet)
    write_file(Path(out), frame.write_parquet)  # atomic: a failed write leaves no file
    counts = {row["label"]: row["len"] for row in frame.group_by("label").len().iter_rows(
        named=True)}
    summary = {"out": out, "rows": frame.height, "filings": frame["file"].n_unique(), **counts,
               "files_without": len(without)}
    if held is not None:
        summary |= {"held_out_rows": held.height, "held_out_filings": held["file"].n_unique()}
    if without and not as_json:
        for path, why in without.items():
            console.print(f"[yellow]{path}: {why}[/yellow]")
    emit(summary, as_json, lambda r: console.print(table_of([r], title="figure sentences")))


def _source_weights(options: tuple[str, ...]) -> dict[str, float]:
    """`--weight tfns/train=2` options as {"tfns/train": 2.0} (the weights are checked where
    they are used: `llm.train.training_files.with_source_weights`)."""
    weights = {}
    for option in options:
        name, _, value = option.rpartition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = None
        if not name or weight is None:
            raise click.BadParameter(f"--weight takes FILE=W, like tfns/train=2, not "
                                     f"{option!r}")
        weights[name] = weight
    return weights


def _upcycle_option(top_k: int | None, routing_weights: str | None) -> dict | None:
    """The upcycle `finetune` asks for, as changes to the default's (None: the default's)."""
    change = ({} if top_k is None else {"top_k": top_k}) | (
        {} if routing_weights is None else {"norm_topk": routing_weights == "normalised"})
    return change or None


@llm_group.command("reason-train")
@click.option("--data", "train_files", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False), help="labelled file (repeatable)")
@labelled_columns
@click.option("--adapter", default="default", show_default=True,
              help="the adapter to start from (a shipped name or a directory)")
@click.option("--minutes", type=float, default=REASON.minutes, show_default=True,
              help="wall-time budget; training stops at the first step past it")
@click.option("--cold-start-minutes", type=float, default=REASON.cold_start_minutes,
              show_default=True,
              help="of the budget, supervised verdict-first completions before GRPO (0: none)")
@click.option("--group", type=int, default=REASON.group, show_default=True,
              help="completions sampled per document")
@click.option("--prompts", type=int, default=REASON.prompts, show_default=True,
              help="documents per step")
@click.option("--lr", type=float, default=REASON.lr, show_default=True)
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="adapter directory to write (the starting adapter plus the reason deltas)")
@json_option
@click.pass_context
def llm_reason_train(ctx, train_files, text_col, label_cols, adapter, minutes,
                     cold_start_minutes, group, prompts, lr, out, as_json):
    """Train reason mode with verifiable rewards (GRPO: valid JSON, right label, short)."""
    config = config_of(ctx)
    settings = replace(REASON, minutes=minutes, cold_start_minutes=cold_start_minutes,
                       group=group, prompts=prompts, lr=lr)
    log = (lambda line: None) if as_json else (lambda line: console.print(line))
    meta = train_reason_adapter(adapter, list(train_files), text_col, list(label_cols), out,
                                settings, cache_dir=model_cache(config), names=config.models,
                                command=_command_line(), log=log)
    report = meta["reasoning"]
    emit(meta if as_json else report["history"], as_json,
         lambda rows: console.print(table_of(rows, title=f"reason training: {out}")))
