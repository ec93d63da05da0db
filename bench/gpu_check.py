"""GPU check of every kernel, as one prepared script (needs a CUDA GPU and triton).

1. Correctness on the GPU: fused MoE (bf16 and fp8) against the references, act_quant exact.
2. Speed at DeepSeek-V2-Lite's layer (hidden 2048, 64 experts of 1408, top-6): prefill
   (4,096 tokens) in TFLOP/s and decode (8 tokens) in GB/s of expert weights read, for bf16
   and fp8, against the H100's 989 TFLOP/s bf16, 1,979 fp8 and 3.35 TB/s, and against
   transformers' grouped_mm on the same shape. Prints the card's name with every figure.

Run: `python bench/gpu_check.py` on a machine with a GPU.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PEAK = {"bf16": 989e12, "fp8": 1979e12, "bandwidth": 3.35e12}


def main() -> None:
    if not torch.cuda.is_available():
        sys.exit("no CUDA GPU here: this script only runs on a GPU machine")
    card = torch.cuda.get_device_name()
    print(f"card: {card}")
    torch.manual_seed(0)
    correctness()
    speed(card)


def correctness() -> None:
    from llm.kernels.fused_moe import act_quant, fused_experts
    from llm.kernels.reference import (
        act_quant_reference,
        experts_fp8_reference,
        experts_reference,
        fp8_weight,
    )

    dev = "cuda"
    x = torch.randn(37, 256, device=dev)
    gate_up = torch.randn(8, 512, 256, device=dev) / 16
    down = torch.randn(8, 256, 256, device=dev) / 16
    w, ids = torch.randn(37, 8, device=dev).softmax(-1).topk(2)
    ref = experts_reference(x, gate_up, down, ids, w)
    out = fused_experts(x.bfloat16(), ids, w, gate_up.bfloat16(), down.bfloat16())
    print(f"bf16 fused vs reference: max rel err "
          f"{((out.float() - ref).abs().max() / ref.abs().max()).item():.2e}")
    w1, w2 = fp8_weight(gate_up), fp8_weight(down)
    out8 = fused_experts(x, ids, w, w1, w2)
    ref8 = experts_fp8_reference(x, w1, w2, ids, w)
    print(f"fp8 fused vs fp8 recipe: max rel err "
          f"{((out8 - ref8).abs().max() / ref8.abs().max()).item():.2e}")
    q, s = act_quant(x)
    qr, sr = act_quant_reference(x)
    print(f"act_quant identical to reference: {torch.equal(q.float(), qr.float())}, "
          f"scales identical: {torch.equal(s, sr)}")


def speed(card: str) -> None:
    from transformers import Qwen3MoeConfig
    from transformers.models.qwen3_moe.modeling_qwen3_moe import Qwen3MoeExperts

    from llm.kernels.fused_moe import fused_experts
    from llm.kernels.reference import fp8_weight

    dev = "cuda"
    hidden, inter, experts, top_k = 2048, 1408, 64, 6
    config = Qwen3MoeConfig(hidden_size=hidden, moe_intermediate_size=inter,
                            num_experts=experts, num_experts_per_tok=top_k)
    module = Qwen3MoeExperts(config).to(dev, torch.bfloat16)
    for p in module.parameters():
        torch.nn.init.normal_(p, std=0.02)
    q8 = (fp8_weight(module.gate_up_proj.data), fp8_weight(module.down_proj.data))
    router = torch.randn(experts, hidden, device=dev, dtype=torch.bfloat16)
    for tokens, label in ((4096, "prefill"), (8, "decode")):
        x = torch.randn(tokens, hidden, device=dev, dtype=torch.bfloat16)
        w, ids = (x @ router.T).float().softmax(-1).topk(top_k)
        flops = 2 * tokens * top_k * 3 * hidden * inter
        active = len(ids.unique())
        bytes_bf16 = active * 3 * hidden * inter * 2
        runs = {
            "ours bf16": lambda: fused_experts(x, ids, w, module.gate_up_proj.data,
                                               module.down_proj.data),
            "ours fp8": lambda: fused_experts(x, ids, w, *q8),
        }
        config._experts_implementation = "grouped_mm"
        runs["transformers grouped_mm"] = lambda: module(x, ids, w.to(torch.bfloat16))
        for name, fn in runs.items():
            fn()
            torch.cuda.synchronize()
            started = time.perf_counter()
            for _ in range(20):
                fn()
            torch.cuda.synchronize()
            seconds = (time.perf_counter() - started) / 20
            if label == "prefill":
                peak = PEAK["fp8"] if "fp8" in name else PEAK["bf16"]
                print(f"[{card}] {label} {name}: {flops / seconds / 1e12:.1f} TFLOP/s "
                      f"({flops / seconds / peak:.1%} of H100 peak), {seconds * 1e3:.3f} ms")
            else:
                read = bytes_bf16 / 2 if "fp8" in name else bytes_bf16
                print(f"[{card}] {label} {name}: {read / seconds / 1e9:.0f} GB/s "
                      f"({read / seconds / PEAK['bandwidth']:.1%} of 3.35 TB/s), "
                      f"{seconds * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
