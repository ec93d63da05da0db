"""Launch configurations of the fused MoE kernels: tuned per card, layer shape, weight dtype
and token count, kept in `tuned.json` beside this file (as vLLM keeps its fused-MoE configs),
with a heuristic for whatever the table does not list.

`tuned.json` maps card name -> dtype -> `E{experts}_I{inter}_H{hidden}` -> token count ->
{"config": [BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages], "us": the time measured}.
A lookup takes the listed token count nearest to the batch's (in log scale), so a table tuned
at 1, 8, 64, 4,096 and 16,384 tokens covers every batch of that shape. `bench/gpu_tune.py`
writes the entries.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch

from llm.kernels.reference import BLOCK, FP8

TUNED = Path(__file__).with_name("tuned.json")


@dataclass(frozen=True)
class KernelConfig:
    block_m: int
    block_n: int
    block_k: int
    num_warps: int = 4
    num_stages: int = 3

    def as_list(self) -> list[int]:
        return [self.block_m, self.block_n, self.block_k, self.num_warps, self.num_stages]


# The interpreter's are the smallest that keep its tests quick; fp8 steps K by one 128-wide
# scale block.
INTERPRETER = {False: KernelConfig(16, 32, 32, 1, 1), True: KernelConfig(16, 32, BLOCK, 1, 1)}


def dtype_name(dtype: torch.dtype) -> str:
    return {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32",
            FP8: "fp8"}.get(dtype, str(dtype))


def shape_key(experts: int, inter: int, hidden: int) -> str:
    return f"E{experts}_I{inter}_H{hidden}"


def heuristic(tokens: int, experts: int, top_k: int, fp8: bool) -> KernelConfig:
    """For cards and shapes the table does not list: small row blocks when each expert gets
    few rows (decode), large ones when it gets many (prefill). These are the H200's winners
    (or the nearest that fit in 160 KB of shared memory); fp8 prefers 64-row blocks there."""
    rows_per_expert = tokens * top_k / max(experts, 1)
    if rows_per_expert <= 16:
        return KernelConfig(16, 64, BLOCK, 4, 4)
    if fp8:
        return KernelConfig(64, 128, BLOCK, 4, 3)
    if rows_per_expert <= 64:
        return KernelConfig(64, 128, 64, 4, 4)
    return KernelConfig(128, 128, 64, 8, 3)


@cache
def _table(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def lookup(card: str, dtype: torch.dtype, experts: int, inter: int, hidden: int, tokens: int,
           top_k: int, table: dict | None = None) -> KernelConfig:
    """The tuned configuration for this card and shape at the nearest listed token count,
    else `heuristic`."""
    fp8 = dtype == FP8
    table = _table(TUNED) if table is None else table
    entries = table.get(card, {}).get(dtype_name(dtype), {}).get(
        shape_key(experts, inter, hidden))
    if not entries:
        return heuristic(tokens, experts, top_k, fp8)
    nearest = min(entries, key=lambda m: abs(math.log(int(m)) - math.log(max(tokens, 1))))
    config = KernelConfig(*entries[nearest]["config"])
    if fp8 and config.block_k != BLOCK:  # a hand-edited table must still step K by scale block
        return heuristic(tokens, experts, top_k, fp8)
    return config


def config_for(x: torch.Tensor, weights: torch.Tensor, tokens: int, top_k: int
               ) -> KernelConfig:
    """What a launch on x's device uses: the interpreter's tiny blocks off the GPU."""
    if not x.is_cuda:
        return INTERPRETER[weights.dtype == FP8]
    return _cached(x.device.index, weights.dtype, tuple(weights.shape), tokens, top_k)


@cache  # a lookup per layer and batch would cost host time comparable to a decode step
def _cached(device: int | None, dtype: torch.dtype, shape: tuple[int, int, int], tokens: int,
            top_k: int) -> KernelConfig:
    experts, two_inter, hidden = shape
    return lookup(torch.cuda.get_device_name(device), dtype, experts, two_inter // 2, hidden,
                  tokens, top_k)
