"""Score-mode speed with the domain adapter (`default`) vs before fine-tuning (`default-base`),
same documents, same process, alternating runs so that machine noise hits both.

Run: `python bench/bench_adapter.py [N] [ROUNDS]`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import llm  # noqa: E402
from bench.bench_engine import documents  # noqa: E402
from llm.engine import Engine  # noqa: E402


def main(n: int = 256, rounds: int = 3) -> None:
    torch.manual_seed(0)
    docs = documents(n)
    engines = {name: Engine(llm.load(name, "bf16"), batch_size=16)
               for name in ("default-base", "default")}
    seconds = {name: 0.0 for name in engines}
    for engine in engines.values():
        engine.score(docs[:16])  # warm-up
    for _ in range(rounds):
        for name, engine in engines.items():
            started = time.perf_counter()
            engine.score(docs)
            seconds[name] += time.perf_counter() - started
    rates = {name: n * rounds / s for name, s in seconds.items()}
    print(f"score mode, {n} docs x {rounds} rounds: before fine-tuning "
          f"{rates['default-base']:.1f} docs/s, with the adapter {rates['default']:.1f} docs/s "
          f"-> {rates['default'] / rates['default-base']:.2f}x")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
