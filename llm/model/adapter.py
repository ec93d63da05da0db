"""Domain adapters: what fine-tuning adds to a base model, small enough to commit.

An adapter is a band of decoder layers `[start, stop)` made trainable by low-rank deltas
(W + B @ A * alpha / rank, on attention projections and on every expert's weights, 3-D expert
tensors included), the MoE routers and balance biases of that band in full, and a sentiment
head: a linear classifier on the mean-pooled hidden states of the document's tokens at layer
`stop`. Score mode reads sentiment from the head and event type from the label words.

On disk: `adapter.safetensors` and `adapter.json` (what it was trained on, the base model it
fits, the SHA-256 of the tensors, metrics). Loading checks all three; applying merges the
deltas into the weights, so inference costs what it cost before.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from llm.errors import ModelError

TENSORS = "adapter.safetensors"
META = "adapter.json"
FORMAT = 1
LABELS = ("bearish", "neutral", "bullish")  # the head's output order
# Weights that get low-rank deltas: attention projections and (2-D or 3-D) expert weights.
TARGETS = ("q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight",
           "gate_proj.weight", "up_proj.weight", "down_proj.weight",
           "gate_up", "down", "gate_up_proj", "down_proj", "shared_gate_up", "shared_down")
FULL = ("router", "bias")  # small enough to keep whole (our MoE block's router and balance)


class LowRank(nn.Module):
    """A low-rank delta W -> W + B @ A * scale; B starts at zero so training starts at W.

    Applied one of two ways (`add_low_rank`): as a parametrization that merges it into the
    weight (`forward`; one merge serves many forwards under `parametrize.cached()`, as decoding
    wants), or on the activations, x A^T B^T added to the layer's output (`attach`): no
    full-size weight is formed and no full-size weight gradient computed, as training on many
    tokens wants."""

    def __init__(self, weight: torch.Tensor, rank: int, alpha: float) -> None:
        super().__init__()
        *batch, rows, cols = weight.shape
        self.A = nn.Parameter(torch.randn(*batch, rank, cols) / cols ** 0.5)
        self.B = nn.Parameter(torch.zeros(*batch, rows, rank))
        self.scale = alpha / rank
        self._detach = None

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + (self.B @ self.A).to(weight.dtype) * self.scale

    def on_activations(self, x: torch.Tensor, expert: int | None = None) -> torch.Tensor:
        """x A^T B^T * scale: what the delta adds to x's projection (one expert's, for 3-D)."""
        a, b = (self.A, self.B) if expert is None else (self.A[expert], self.B[expert])
        return F.linear(F.linear(x, a.to(x.dtype)), b.to(x.dtype)) * self.scale

    def attach(self, module: nn.Module, attr: str) -> bool:
        """Apply on the activations of `module.attr`, where that is supported: a linear
        layer's weight, or our MoE block's expert weights (which read `low_rank`)."""
        if isinstance(module, nn.Linear) and attr == "weight":
            handle = module.register_forward_hook(
                lambda _, args, out: out + self.on_activations(args[0]))
            self._detach = handle.remove
        elif isinstance(getattr(module, "low_rank", None), dict) and attr in ("gate_up", "down"):
            module.low_rank[attr] = self
            self._detach = lambda: module.low_rank.pop(attr)
        return self._detach is not None

    def detach(self) -> None:
        """Undo `attach`."""
        if self._detach is not None:
            self._detach()
            self._detach = None


class SentimentHead(nn.Module):
    """Bearish/neutral/bullish logits from a mean-pooled hidden state."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.linear = nn.Linear(hidden, len(LABELS))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(pooled.float()))


@dataclass
class Adapter:
    meta: dict
    tensors: dict[str, torch.Tensor]
    path: Path | None = None

    @property
    def digest(self) -> str:
        return self.meta["sha256"][:16]


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise ModelError(f"{type(model).__name__} has no model.layers: adapters need a "
                         "decoder-only transformer")
    return layers


def band_targets(model: nn.Module, start: int, stop: int) -> list[str]:
    """Names of the weights in layers [start, stop) that get low-rank deltas."""
    layers = decoder_layers(model)
    if not 0 <= start < stop <= len(layers):
        raise ModelError(f"layer band {start}:{stop} is outside the model's {len(layers)} layers")
    names = []
    for index in range(start, stop):
        for name, param in layers[index].named_parameters():
            if param.dim() >= 2 and any(name == t or name.endswith("." + t) for t in TARGETS):
                names.append(f"model.layers.{index}.{name}")
    return names


def band_full(model: nn.Module, start: int, stop: int) -> list[str]:
    """Names of routers and balance biases of our MoE blocks in the band (kept whole)."""
    named = dict(model.named_parameters()) | dict(model.named_buffers())
    return [name for name in named
            if any(name.startswith(f"model.layers.{i}.") for i in range(start, stop))
            and name.rsplit(".", 1)[-1] in FULL and ".mlp." in name]


def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    path, attr = name.rsplit(".", 1)
    return model.get_submodule(path), attr


def add_low_rank(model: nn.Module, names: list[str], rank: int, alpha: float,
                 merged: bool = True) -> dict[str, LowRank]:
    """Make `names` trainable through low-rank deltas (for training); returns them by name.
    `merged`: as parametrizations of the weights, else on the activations where supported
    (`LowRank`)."""
    added = {}
    for name in names:
        module, attr = _owner(model, name)
        weight = getattr(module, attr)
        delta = LowRank(weight, rank, alpha).to(weight.device)
        if merged or not delta.attach(module, attr):
            parametrize.register_parametrization(module, attr, delta)
        added[name] = delta
    return added


def remove_low_rank(model: nn.Module, deltas: dict[str, LowRank]) -> None:
    """Undo `add_low_rank`, leaving the base weights as they were."""
    for name, delta in deltas.items():
        module, attr = _owner(model, name)
        if parametrize.is_parametrized(module, attr):
            parametrize.remove_parametrizations(module, attr, leave_parametrized=False)
        delta.detach()


def low_rank_tensors(deltas: dict[str, LowRank]) -> dict[str, torch.Tensor]:
    """The stored form of low-rank deltas being trained (`lora.NAME.A` / `.B`, fp32)."""
    tensors = {}
    for name, delta in deltas.items():
        tensors[f"lora.{name}.A"] = delta.A.detach().float().clone()
        tensors[f"lora.{name}.B"] = delta.B.detach().float().clone()
    return tensors


def collect(model: nn.Module, deltas: dict[str, LowRank], head: SentimentHead,
            full: list[str]) -> dict[str, torch.Tensor]:
    """The tensors an adapter stores, from a model being trained."""
    named = dict(model.named_parameters()) | dict(model.named_buffers())
    tensors = low_rank_tensors(deltas)
    for name in full:
        tensors[f"full.{name}"] = named[name].detach().float().clone()
    for name, value in head.state_dict().items():
        tensors[f"head.{name}"] = value.detach().float().clone()
    return tensors


def save(directory: Path, tensors: dict[str, torch.Tensor], meta: dict) -> Adapter:
    """Write the adapter atomically (a half-written adapter never replaces a good one)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / (TENSORS + ".partial")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(partial))
    meta = meta | {"format": FORMAT, "sha256": _sha256(partial)}
    partial.replace(directory / TENSORS)
    (directory / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return Adapter(meta, tensors, directory)


def save_with_head(source: str | Path, head: SentimentHead, out: Path, meta: dict) -> Adapter:
    """A copy of the adapter at `source` with `head` in place of its own, `meta` added."""
    adapter = read(source)
    tensors = {k: v for k, v in adapter.tensors.items() if not k.startswith("head.")}
    tensors |= {f"head.{k}": v.detach().float() for k, v in head.state_dict().items()}
    kept = {k: v for k, v in adapter.meta.items() if k not in ("sha256", "format")}
    return save(Path(out), tensors, kept | meta)


def read(directory: str | Path) -> Adapter:
    """Load an adapter, refusing a missing, corrupted or unknown-format one."""
    from safetensors.torch import load_file

    directory = Path(directory)
    tensors_path, meta_path = directory / TENSORS, directory / META
    for path in (tensors_path, meta_path):
        if not path.exists():
            raise ModelError(f"adapter {directory} has no {path.name}: train one with "
                             "`quant llm finetune --out DIR`")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"{meta_path} is not valid JSON ({exc}): the adapter is corrupted, "
                         "train or copy it again") from None
    if meta.get("format") != FORMAT:
        raise ModelError(f"{meta_path}: adapter format {meta.get('format')!r}, this version "
                         f"reads {FORMAT}")
    if _sha256(tensors_path) != meta.get("sha256"):
        raise ModelError(f"{tensors_path} does not match the SHA-256 in {meta_path.name}: the "
                         "adapter is corrupted or its files come from different runs")
    return Adapter(meta, load_file(str(tensors_path)), directory)


def apply(model: nn.Module, adapter: Adapter, base_id: str) -> SentimentHead:
    """Merge the adapter into `model` in place and return its sentiment head."""
    where = adapter.path or "adapter"
    if adapter.meta.get("base_id") != base_id:
        trained_on = adapter.meta.get("base_model_id", "another model")
        raise ModelError(f"{where} was trained on {trained_on} (base {adapter.meta.get('base_id')}"
                         f"), not on this one ({base_id}): load the model it was trained for "
                         "(`smollm2-135m-base`, `gemma-270m-base`: README, The models), or train "
                         "an adapter for this one")
    named = dict(model.named_parameters()) | dict(model.named_buffers())
    pending = []
    for key, value in adapter.tensors.items():
        kind, name = key.split(".", 1)
        if kind == "lora" and name.endswith(".A"):
            name = name[:-2]
            a, b = value, adapter.tensors.get(f"lora.{name}.B")
            target = named.get(name)
            if target is None or b is None or not _fits(a, b, target.shape):
                raise ModelError(f"{where}: {name} does not fit this model (missing weight or "
                                 "shape mismatch)")
            pending.append((target, (b @ a) * adapter.meta["alpha"] / adapter.meta["rank"], None))
        elif kind == "full":
            target = named.get(name)
            if target is None or target.shape != value.shape:
                raise ModelError(f"{where}: {name} does not fit this model")
            pending.append((target, None, value))
    with torch.no_grad():  # only after every check passed: never a half-applied adapter
        for target, delta, whole in pending:  # the adapter is read on the CPU, the model may
            if delta is None:                 # already be on a GPU
                target.copy_(whole.to(target.device, target.dtype))
            else:
                target.add_(delta.to(target.device, target.dtype))
    hidden = adapter.tensors["head.linear.weight"].shape[1]
    head = SentimentHead(hidden)
    head.load_state_dict({k[5:]: v for k, v in adapter.tensors.items() if k.startswith("head.")})
    return head.eval().to(next(model.parameters()).device)


def _fits(a: torch.Tensor, b: torch.Tensor, shape: torch.Size) -> bool:
    """Whether B @ A has `shape` (checked before multiplying, which would fail unclearly)."""
    return (a.dim() == b.dim() == len(shape) and a.shape[:-2] == b.shape[:-2] == shape[:-2]
            and b.shape[-2] == shape[-2] and a.shape[-1] == shape[-1]
            and b.shape[-1] == a.shape[-2])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
