"""Score-mode speed of adapter directories you trained (for example on another upcycle:
`quant llm finetune --top-k 2`) against the shipped default, same documents, same process,
alternating runs. Each adapter loads on its own upcycle. Prints the CPU capability.

Run: `python bench/bench_adapters.py DIR [DIR ...] [--docs N] [--rounds R]`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import llm  # noqa: E402
from bench.bench_engine import documents, score_rates  # noqa: E402
from llm.infer.engine import Engine  # noqa: E402


def main(adapters: list[str], n: int, rounds: int) -> None:
    torch.manual_seed(0)
    docs = documents(n)
    engines = {"default": Engine(llm.load("default", "fp32"), batch_size=16)}
    for directory in adapters:
        engines[directory] = Engine(llm.load("default-base", "fp32", adapter=directory),
                                    batch_size=16)
    rates = score_rates(engines, docs, rounds)
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}, fp32; score mode, "
          f"{n} docs x {rounds} rounds: default {rates['default']:.1f} docs/s")
    for directory in adapters:
        print(f"  {directory} ({engines[directory].loaded.model_id}): "
              f"{rates[directory]:.1f} docs/s, {rates[directory] / rates['default']:.2f}x default")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("adapters", nargs="+")
    parser.add_argument("--docs", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    main(args.adapters, args.docs, args.rounds)
