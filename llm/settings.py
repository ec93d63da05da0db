"""How the engine batches and decodes, in a module that imports nothing heavy (quant.toml's
[model] section extends it, and reading the config must not load torch)."""

from __future__ import annotations

from dataclasses import dataclass

# The engine's modes and the precisions a model loads at, named once for every caller.
MODES = ("score", "reason")
PRECISIONS = ("auto", "fp32", "bf16", "fp8", "int8")


@dataclass(frozen=True)
class EngineSettings:
    """How the engine batches and decodes (quant.toml's [model] section extends it)."""

    batch_size: int = 64             # chosen by measurement: python bench/bench_score.py
    max_input_tokens: int = 384
    max_new_tokens: int = 160
    min_label_mass: float = 0.002    # score mode: less mass on the label words is an abstain
    calibrate: bool = True           # divide out the label words' content-free prior
    events: bool = False             # score mode: also read the event type (a full pass)
    think_tokens: int = 0            # reason mode: let a <think> model think this long first
