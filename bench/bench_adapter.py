"""Score-mode speed with the domain adapter (`default`) vs before fine-tuning (`default-base`)
and vs the previous adapters (`sentiment-v1`, `sentiment-v2` on `default-base`), same documents,
same process, alternating runs so that machine noise hits each alike. Prints the CPU
capability.

Run: `python bench/bench_adapter.py [N] [ROUNDS] [PRECISION]` (precision: auto, fp32, bf16).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import llm  # noqa: E402
from bench.bench_engine import documents, score_rates  # noqa: E402
from llm.infer.engine import Engine  # noqa: E402

MODELS = {"default-base": ("default-base", None), "default": ("default", None),
          "sentiment-v1": ("default-base", "sentiment-v1"),
          "sentiment-v2": ("default-base", "sentiment-v2")}


def main(n: int = 256, rounds: int = 3, precision: str = "auto") -> None:
    torch.manual_seed(0)
    docs = documents(n)
    engines = {name: Engine(llm.load(spec, precision, adapter=adapter), batch_size=16)
               for name, (spec, adapter) in MODELS.items()}
    rates = score_rates(engines, docs, rounds)
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}, precision "
          f"{engines['default'].loaded.precision}; score mode, {n} docs x {rounds} rounds: "
          f"default {rates['default']:.1f} docs/s")
    for name in ("default-base", "sentiment-v1", "sentiment-v2"):
        print(f"  {name}: {rates[name]:.1f} docs/s; default is "
              f"{rates['default'] / rates[name]:.2f}x")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(*(int(a) for a in args[:2]), *args[2:3])
