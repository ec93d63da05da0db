"""What a loaded model is (the model, its tokenizer and its provenance), and the shipped
adapters, by name."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from llm.model.bundled import BASES, DEFAULT_BASE

if TYPE_CHECKING:
    import torch

ADAPTERS = Path(__file__).parents[1] / "adapters"   # the shipped ones, by name
DEFAULT_ADAPTER = ADAPTERS / BASES[DEFAULT_BASE].adapter   # the default base's
# The dtype each precision loads the weights in (int8 quantises the fp32 weights after loading;
# fp8 quantises the experts of a bf16 model); `auto` resolves to one of them (`resolve_precision`).
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp8": "bfloat16", "int8": "float32"}


@dataclass
class LoadedModel:
    """A model ready to run, with what provenance needs."""

    model: torch.nn.Module
    tokenizer: object
    model_id: str
    fingerprint: str
    precision: str
    path: Path
    notes: list[str] = field(default_factory=list)
    base_id: str = ""                    # the weights before any adapter, any precision
    head: torch.nn.Module | None = None  # the adapter's sentiment head, if any
    head_layer: int | None = None        # the head reads the output of layer head_layer - 1
    adapter: str | None = None

    @property
    def config(self):
        return self.model.config


def adapter_path(adapter: str | Path) -> Path:
    """A shipped adapter by folder or recorded name (`default` is `sentiment-v4`;
    `sentiment-v1` to `sentiment-v3`, `reason-v1`: see llm/adapters) or a directory written by
    `quant llm finetune --out`."""
    if isinstance(adapter, str) and "/" not in adapter:
        for meta in [ADAPTERS / adapter / "adapter.json", *sorted(ADAPTERS.glob("*/adapter.json"))]:
            if meta.exists() and (meta.parent.name == adapter
                                  or json.loads(meta.read_text()).get("name") == adapter):
                return meta.parent
    return Path(adapter)
