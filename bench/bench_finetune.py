"""Fine-tuning step speed: the band's low-rank deltas merged into the weights (a
parametrization: every step forms each full-size weight and its full-size gradient) against
the same deltas on the activations (x A^T B^T, what `llm.train.finetune` uses), same cached batches,
same process, alternating rounds. Prints the CPU capability.

Run: `python bench/bench_finetune.py [--examples N] [--rounds R] [--layers 12:16]`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import polars as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import llm  # noqa: E402
from bench.bench_engine import documents  # noqa: E402
from llm.infer.prefix import SharedPrefix  # noqa: E402
from llm.model import adapter as adapters  # noqa: E402
from llm.train.finetune import (  # noqa: E402
    FinetuneSettings,
    attach_band,
    batches,
    cache_inputs,
    prompt_prefix,
    train_epoch,
)


def step_rate(loaded, runner: SharedPrefix, data, settings: FinetuneSettings,
              merged: bool) -> float:
    """Examples per second of fine-tuning's own training pass (`train_epoch`: forward,
    backward, AdamW) over `data`, the band's deltas merged or on the activations."""
    band = attach_band(loaded.model, settings, merged=merged)
    optimiser = torch.optim.AdamW(band.parameters(), lr=1e-4)

    def step(loss: torch.Tensor) -> None:
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    began = time.perf_counter()
    train_epoch(runner, band, data, list(range(len(data))), step, torch.ones(3), settings, 1,
                lambda _: None)
    rate = sum(len(batch.labels) for batch in data) / (time.perf_counter() - began)
    adapters.remove_low_rank(loaded.model, band.deltas)
    return rate


def main(n: int, rounds: int, start: int, stop: int) -> None:
    torch.manual_seed(0)
    loaded = llm.load("default-base", "fp32")
    settings = FinetuneSettings(start=start, stop=stop)
    frame = pl.DataFrame({"text": [d.text for d in documents(n)],
                          "label": ["bullish", "neutral", "bearish"] * (n // 3) +
                                   ["neutral"] * (n % 3)})
    runner = SharedPrefix(loaded.model, prompt_prefix(loaded.tokenizer))
    data = batches(loaded.tokenizer, frame, settings)
    cache_inputs(runner, data, start, lambda _: None)
    loaded.model.train()
    step_rate(loaded, runner, data[:2], settings, merged=False)  # warm-up
    rates = {True: [], False: []}
    for _ in range(rounds):
        for merged in (True, False):
            rates[merged].append(step_rate(loaded, runner, data, settings, merged))
    best = {merged: max(r) for merged, r in rates.items()}
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}, fp32; band "
          f"{start}:{stop}, {n} examples x {rounds} rounds, best round")
    print(f"  deltas merged into the weights: {best[True]:.1f} examples/s")
    print(f"  deltas on the activations:      {best[False]:.1f} examples/s, "
          f"{best[False] / best[True]:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=320)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--layers", default="12:16")
    args = parser.parse_args()
    first, last = (int(x) for x in args.layers.split(":"))
    main(args.examples, args.rounds, first, last)
