"""The precision a model's weights are held in, applied in one place.

fp8 and int8 weights ride in their parameter's own slot with their scales on them as `.scale`
(DeepSeek-V3's convention): fp8 e4m3 with 128 x 128 block scales (`kernels.reference`), int8
with one scale per output channel and torch's packed form as `.packed` (`kernels.int8`). The
kernels read a weight's dtype and take the matching path; nothing else carries a quantised
weight.

What int8 quantises: every `nn.Linear` inside the decoder layers (attention and dense MLP
projections) and every expert of an MoE block (ours and transformers' experts modules).
Embeddings, norms, routers, the sentiment head and the LM head stay fp32: they are small, or
their precision decides a label. fp8 quantises the experts of an MoE checkpoint.
"""

from __future__ import annotations

import torch
from torch import nn

from llm.errors import ModelError
from llm.kernels import int8
from llm.kernels.reference import fp8_weight
from llm.model.adapter import decoder_layers
from llm.model.upcycle import moe_blocks

QUANTISERS = {"fp8": fp8_weight, "int8": int8.int8_weight}


def quantise(module: nn.Module, names: tuple[str, ...], precision: str) -> None:
    """Replace `module`'s weights `names` by their `precision` (fp8 or int8) form, in place."""
    for name in names:
        q = QUANTISERS[precision](getattr(module, name).data)
        weight = nn.Parameter(q, requires_grad=False)
        weight.scale = q.scale
        if precision == "int8":
            weight.packed = q.packed
        setattr(module, name, weight)


class Int8Linear(nn.Module):
    """A drop-in for `nn.Linear` with an int8 weight (inference only)."""

    def __init__(self, source: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = source.in_features, source.out_features
        self.weight = source.weight
        quantise(self, ("weight",), "int8")
        self.bias = None if source.bias is None else source.bias.detach().float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = int8.linear(x, self.weight.packed)
        return out if self.bias is None else out + self.bias


def quantise_model(model: nn.Module) -> str:
    """int8: the decoder layers' linears and our MoE blocks' experts, in place
    (transformers' experts modules are quantised where they are attached,
    `experts.attach_experts`); a note for `llm info`."""
    if not int8.available():
        raise ModelError("precision int8 needs torch's quantized CPU kernels (fbgemm or x86), "
                         "which this torch build lacks: use precision fp32 or auto")
    if next(model.parameters()).is_cuda:
        raise ModelError("precision int8 is for the CPU; on a GPU use auto, bf16 or fp8")
    linears = 0
    for layer in decoder_layers(model):
        for name, module in list(layer.named_modules()):
            if isinstance(module, nn.Linear):
                parent, _, attr = name.rpartition(".")
                setattr(layer.get_submodule(parent) if parent else layer, attr,
                        Int8Linear(module))
                linears += 1
    blocks = moe_blocks(model)
    for block in blocks:
        quantise(block, ("gate_up", "down"), "int8")
    return (f"int8 weights (per-channel scales, dynamic int8 activations, fp32 out): "
            f"{linears} linears" + (f", the experts of {len(blocks)} MoE blocks" if blocks else ""))
