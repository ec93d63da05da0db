"""CPU: our experts path vs transformers' `eager` and `grouped_mm` on the same weights.

Shape: DeepSeek-V2-Lite's MoE layer (hidden 2048, 64 routed experts of 1408, top-6; its 2
shared experts cost the same in every implementation and are left out). Decode (1-8 tokens)
and prefill (512-2048 tokens), bf16. Ratios are against `eager`, in the same process.

Run: `python bench/bench_moe.py`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transformers import Qwen3MoeConfig  # noqa: E402
from transformers.models.qwen3_moe.modeling_qwen3_moe import Qwen3MoeExperts  # noqa: E402

import llm.model.experts  # noqa: E402,F401  (registers quant_moe)


def timed(fn, repeats: int) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats


@torch.inference_mode()
def main() -> None:
    torch.manual_seed(0)
    config = Qwen3MoeConfig(hidden_size=2048, moe_intermediate_size=1408, num_experts=64,
                            num_experts_per_tok=6)
    experts = Qwen3MoeExperts(config).to(torch.bfloat16)
    for p in experts.parameters():
        torch.nn.init.normal_(p, std=0.02)
    router = torch.randn(64, 2048, dtype=torch.bfloat16)
    print(f"threads: {torch.get_num_threads()}; bf16; times in ms; ratio = eager / ours")
    for tokens in (1, 4, 8, 512, 2048):
        x = torch.randn(tokens, 2048, dtype=torch.bfloat16)
        weights, ids = (x @ router.T).float().softmax(-1).topk(6)
        weights = (weights / weights.sum(-1, keepdim=True)).to(torch.bfloat16)
        repeats = 20 if tokens <= 8 else 2
        times = {}
        for name in ("eager", "grouped_mm", "quant_moe"):
            config._experts_implementation = name
            times[name] = timed(lambda: experts(x, ids, weights), repeats) * 1000
        config._experts_implementation = "eager"
        reference = experts(x, ids, weights).float()
        config._experts_implementation = "quant_moe"
        error = (experts(x, ids, weights).float() - reference).abs().max().item()
        print(f"{tokens:5d} tokens: eager {times['eager']:8.2f}  grouped_mm "
              f"{times['grouped_mm']:8.2f}  ours {times['quant_moe']:8.2f}  -> "
              f"{times['eager'] / times['quant_moe']:.2f}x eager, "
              f"{times['grouped_mm'] / times['quant_moe']:.2f}x grouped_mm "
              f"(max |diff| {error:.1e})")


if __name__ == "__main__":
    main()
