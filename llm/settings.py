"""Settings of the model side, in a module that imports nothing heavy: how the engine batches
and decodes (quant.toml's [model] section extends it, and reading the config must not load
torch), its modes and precisions, and how a domain adapter is fine-tuned (the CLI's options
default to these values, declared once here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# What every training loop reports its progress to: a callable taking one line.
Log = Callable[[str], None]

# The engine's modes and the precisions a model loads at, named once for every caller.
MODES = ("score", "reason")
PRECISIONS = ("auto", "fp32", "bf16", "fp8", "int8")


@dataclass(frozen=True)
class EngineSettings:
    """How the engine batches and decodes (quant.toml's [model] section extends it)."""

    batch_size: int = 128            # chosen by measurement: python bench/bench_score.py
    batch_tokens: int = 2048         # score mode: at most this many tokens a batch, padded
    max_input_tokens: int = 384
    max_new_tokens: int = 160
    min_label_mass: float = 0.002    # score mode: less mass on the label words is an abstain
    calibrate: bool = True           # divide out the label words' content-free prior
    events: bool = False             # score mode: also read the event type (a full pass)
    think_tokens: int = 0            # reason mode: let a <think> model think this long first


@dataclass(frozen=True)
class FinetuneSettings:
    start: int = 11             # first trained layer (layers below are frozen and cached)
    stop: int = 16              # the head reads the output of layer stop - 1
    rank: int = 8
    alpha: float = 16.0
    epochs: int = 2             # the default adapter's recipe: within the hour on 2 cores
    batch_size: int = 32
    lr: float = 1e-3            # low-rank deltas and routers
    head_lr: float = 2e-3
    weight_decay: float = 0.01
    max_doc_tokens: int = 96
    seed: int = 0
    # a training file's loss weight by its `source_name` (e.g. {"tfns/train": 2.0}); others 1
    source_weights: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GrpoSettings:
    group: int = 8                   # actions sampled per sample
    batch_size: int = 64
    steps: int = 300
    lr: float = 1e-3
    kl: float = 0.05                 # weight of KL(policy || starting head)
    seed: int = 0


@dataclass(frozen=True)
class ReasonTrainSettings:
    start: int | None = None      # first trained layer; None: the sentiment head's layer
    group: int = 4                # completions sampled per document
    prompts: int = 6              # documents per step
    max_new_tokens: int = 80      # a completion that does not finish by then earns no format
    temperature: float = 0.8
    lr: float = 3e-4
    kl: float = 0.1               # weight of the per-token KL to the starting model
    format_weight: float = 0.5
    length_penalty: float = 0.2   # times the completion's share of the token cap
    minutes: float = 50.0         # wall-time budget of the whole run, cold start included
    cold_start_minutes: float = 20.0  # supervised verdict-first completions first (0: none)
    cold_start_batch: int = 8
    cold_start_lr: float = 1e-3
    max_steps: int = 10_000
    seed: int = 0
