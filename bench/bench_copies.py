"""Score-mode speed of `default` with its copied experts run as one dense MLP vs routed like
the trained ones, same documents, same process, alternating rounds. Prints the CPU capability.

Run: `python bench/bench_copies.py [N] [ROUNDS]`.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import llm  # noqa: E402
from bench.bench_engine import alternating_rates, documents  # noqa: E402
from llm.infer.engine import Engine  # noqa: E402
from llm.model.upcycle import moe_blocks  # noqa: E402


def main(n: int = 128, rounds: int = 2) -> None:
    docs = documents(n)
    loaded = llm.load("default", "auto")
    engine = Engine(loaded, batch_size=16)
    engine.score(docs[:16])  # warm-up
    blocks = moe_blocks(loaded.model)
    marked = [block.copies for block in blocks]

    def scored(dense: bool) -> None:
        for block, copies in zip(blocks, marked, strict=True):
            block.copies = copies and dense
        engine.score(docs)

    rates = alternating_rates({"copies dense": partial(scored, True),
                               "all routed": partial(scored, False)}, n, rounds)
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}, precision "
          f"{loaded.precision}; score mode, {n} docs x {rounds} rounds, {sum(marked)} of "
          f"{len(blocks)} layers copies: copies dense {rates['copies dense']:.1f} docs/s, all "
          f"routed {rates['all routed']:.1f} -> {rates['copies dense'] / rates['all routed']:.2f}x")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
