"""Tune the fused MoE kernels' launch configurations on this GPU and measure them against
transformers' grouped_mm: the layer shapes of DeepSeek-V2-Lite (hidden 2048, 64 experts of
1,408, top-6) and Qwen3-30B-A3B (hidden 2048, 128 experts of 768, top-8), decode (1, 8 and
64 tokens) and prefill (4,096 and 16,384), bf16 and fp8.

Each candidate is compiled first in parallel processes (Triton's disk cache keeps the
binaries), then timed: decode under CUDA-graph replay (what serving does; the launches'
host overhead would otherwise be the figure), prefill with `triton.testing.do_bench`. The
fastest is checked against the torch path at the full shape before it is kept. The winners
are written in `llm/kernels/tuning.py`'s table format.

Run on a GPU: `python bench/gpu_tune.py [OUT_DIR]` (gpu_check.py calls it).
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm.kernels.tuning import KernelConfig, dtype_name, shape_key  # noqa: E402

DEVICE = "cuda"   # a CPU smoke test sets "cpu" (and the Triton interpreter)
DECODE = (1, 8, 64)
PREFILL = (4096, 16384)


@dataclass(frozen=True)
class Layer:
    name: str
    hidden: int
    inter: int
    experts: int
    top_k: int
    tokens: tuple[int, ...] = DECODE + PREFILL


LAYERS = (Layer("DeepSeek-V2-Lite", 2048, 1408, 64, 6), Layer("Qwen3-30B-A3B", 2048, 768, 128, 8),
          # the default model's layer (4 experts, top-1) at score-mode batch sizes
          Layer("default", 576, 1536, 4, 1, (1024, 4096, 16384)))
# Candidates: (BLOCK_M, BLOCK_N, BLOCK_K, warps, stages); fp8 steps K by its 128 scale block.
DECODE_CANDIDATES = {
    "bf16": [(16, 32, 128, 4, 4), (16, 64, 64, 4, 4), (16, 64, 128, 4, 4), (16, 64, 256, 4, 3),
             (16, 128, 128, 4, 3), (16, 32, 256, 4, 3), (16, 64, 128, 4, 5)],
    "fp8": [(16, 32, 128, 4, 4), (16, 64, 128, 4, 4), (16, 128, 128, 4, 3),
            (16, 64, 128, 4, 5), (16, 128, 128, 8, 4)],
}
PREFILL_CANDIDATES = {
    "bf16": [(64, 64, 64, 4, 4), (64, 128, 64, 4, 3), (64, 128, 64, 4, 4), (128, 64, 64, 4, 3),
             (128, 64, 64, 8, 4), (128, 128, 64, 8, 3), (128, 128, 64, 8, 4),
             (128, 128, 64, 4, 3), (128, 128, 32, 8, 5), (64, 256, 64, 8, 3),
             (128, 256, 64, 8, 2)],
    "fp8": [(64, 64, 128, 4, 4), (64, 128, 128, 4, 3), (64, 128, 128, 4, 4),
            (64, 128, 128, 8, 4), (128, 64, 128, 4, 4), (64, 256, 128, 8, 3),
            (64, 256, 128, 8, 2), (128, 128, 128, 8, 3)],
}


def problem(layer: Layer, tokens: int, fp8: bool, seed: int = 0):
    """Activations, routing from a random router (ragged loads, as real routers give) and
    weights of the layer's shape in bf16 or fp8."""
    from llm.kernels.reference import fp8_weight

    g = torch.Generator(device=DEVICE).manual_seed(seed)
    x = torch.randn(tokens, layer.hidden, generator=g, device=DEVICE, dtype=torch.bfloat16)
    gate_up = torch.randn(layer.experts, 2 * layer.inter, layer.hidden, generator=g,
                          device=DEVICE, dtype=torch.bfloat16) * 0.02
    down = torch.randn(layer.experts, layer.hidden, layer.inter, generator=g, device=DEVICE,
                       dtype=torch.bfloat16) * 0.02
    router = torch.randn(layer.experts, layer.hidden, generator=g, device=DEVICE,
                         dtype=torch.bfloat16)
    weights, ids = (x @ router.T).float().softmax(-1).topk(layer.top_k)
    weights = weights / weights.sum(-1, keepdim=True)
    if fp8:
        gate_up, down = fp8_weight(gate_up), fp8_weight(down)
    return x, ids, weights, gate_up, down


def jobs() -> list[tuple[Layer, int, str, tuple]]:
    found = []
    for layer in LAYERS:
        for dtype in dtypes(layer):
            for tokens in layer.tokens:
                pool = DECODE_CANDIDATES if decode(layer, tokens) else PREFILL_CANDIDATES
                found += [(layer, tokens, dtype, c) for c in pool[dtype]]
    return found


def dtypes(layer: Layer) -> tuple[str, ...]:
    """fp8's 128 x 128 blocks need sizes that are multiples of 128."""
    return ("bf16", "fp8") if layer.hidden % 128 == layer.inter % 128 == 0 else ("bf16",)


def decode(layer: Layer, tokens: int) -> bool:
    """Few rows per expert: the weights' reading is the cost."""
    return tokens * layer.top_k <= 16 * layer.experts


def _compile(batch: list[tuple[Layer, int, str, tuple]]) -> int:
    """Run each job once, so that Triton compiles it into its disk cache."""
    from llm.kernels.fused_moe import fused_experts

    done = 0
    for layer, tokens, dtype, config in batch:
        x, ids, weights, gate_up, down = problem(layer, tokens, dtype == "fp8")
        try:
            fused_experts(x, ids, weights, gate_up, down, config=KernelConfig(*config))
            torch.cuda.synchronize()
            done += 1
        except Exception as exc:  # a candidate that does not compile is skipped when timed
            print(f"  compile failed {layer.name} {tokens} {dtype} {config}: "
                  f"{type(exc).__name__}: {str(exc)[:160]}", flush=True)
    return done


def precompile(workers: int = 12) -> None:
    # One job per distinct kernel specialisation: sizes matter only through Triton's integer
    # specialisation (== 1, multiple of 16), and every layer's sizes are multiples of 16.
    seen, todo = set(), []
    for layer, tokens, dtype, config in jobs():
        pairs = tokens * layer.top_k
        key = (dtype, config, layer.top_k == 1, pairs % 16 == 0, pairs == 1)
        if key not in seen:
            seen.add(key)
            todo.append((layer, tokens, dtype, config))
    chunks = [todo[i::workers] for i in range(workers)]
    ctx = __import__("multiprocessing").get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        compiled = sum(pool.map(_compile, chunks))
    print(f"precompiled {compiled} of {len(todo)} launches in {workers} processes", flush=True)


def timed(fn, graph: bool) -> float:
    """Seconds per call: CUDA-graph replay (decode) or plain launches (prefill)."""
    import triton.testing

    if graph:
        try:
            return triton.testing.do_bench_cudagraph(fn, rep=30) / 1e3
        except Exception as exc:
            print(f"  graph capture failed ({type(exc).__name__}: {str(exc)[:120]}); "
                  f"timing plain launches", flush=True)
    return triton.testing.do_bench(fn, warmup=10, rep=40) / 1e3


def transformers_experts(layer: Layer, gate_up: torch.Tensor, down: torch.Tensor):
    """transformers' own Qwen3-MoE experts module on the same weights, grouped_mm kernel."""
    from transformers import Qwen3MoeConfig
    from transformers.models.qwen3_moe.modeling_qwen3_moe import Qwen3MoeExperts

    config = Qwen3MoeConfig(hidden_size=layer.hidden, moe_intermediate_size=layer.inter,
                            num_experts=layer.experts, num_experts_per_tok=layer.top_k)
    config._experts_implementation = "grouped_mm"
    module = Qwen3MoeExperts(config).to(DEVICE, torch.bfloat16)
    module.gate_up_proj = torch.nn.Parameter(gate_up, requires_grad=False)
    module.down_proj = torch.nn.Parameter(down, requires_grad=False)
    return module


def measure(layer: Layer, tokens: int, dtype: str, configs: list[tuple]) -> dict:
    """Time every candidate and transformers' grouped_mm; check the winner's output."""
    from llm.kernels.cpu import experts_cpu
    from llm.kernels.fused_moe import fused_experts

    x, ids, weights, gate_up, down = problem(layer, tokens, dtype == "fp8")
    graph = decode(layer, tokens)
    times = {}
    for config in configs:
        c = KernelConfig(*config)
        try:
            times[config] = timed(lambda c=c: fused_experts(x, ids, weights, gate_up, down,
                                                             config=c), graph)
        except Exception as exc:
            print(f"  {config} failed: {type(exc).__name__}: {str(exc)[:160]}", flush=True)
    if not times:
        raise RuntimeError(f"no candidate ran for {layer.name} {dtype} at {tokens} tokens")
    best = min(times, key=times.get)
    out = fused_experts(x, ids, weights, gate_up, down, config=KernelConfig(*best)).float()
    # torch reference (fp8 weights dequantised per expert)
    ref = experts_cpu(x.float(), gate_up if dtype == "fp8" else gate_up.float(),
                      down if dtype == "fp8" else down.float(), ids, weights).float()
    error = ((out - ref).abs().max() / ref.abs().max()).item()
    # the same weights in bf16 (the same seed) for transformers, which has no fp8 experts
    bf16_weights = problem(layer, tokens, False)[3:] if dtype == "fp8" else (gate_up, down)
    module = transformers_experts(layer, *bf16_weights)
    w16 = weights.to(torch.bfloat16)
    with torch.inference_mode():
        baseline = timed(lambda: module(x, ids, w16), graph)
    return {"layer": layer.name, "tokens": tokens, "dtype": dtype, "best": list(best),
            "seconds": times[best], "grouped_mm_seconds": baseline, "max_rel_error": error,
            "active_experts": int(ids.unique().numel()),
            "all": {"-".join(map(str, c)): t for c, t in times.items()}}


def figures(row: dict, layer: Layer) -> dict:
    """TFLOP/s (prefill) or GB/s of expert weights read (decode)."""
    pairs = row["tokens"] * layer.top_k
    flops = 2 * pairs * 3 * layer.hidden * layer.inter
    weight_bytes = row["active_experts"] * 3 * layer.hidden * layer.inter * (
        1 if row["dtype"] == "fp8" else 2)
    return {"tflops": flops / row["seconds"] / 1e12,
            "gbps": weight_bytes / row["seconds"] / 1e9,
            "speedup_vs_grouped_mm": row["grouped_mm_seconds"] / row["seconds"]}


def tune(out_dir: Path, card: str) -> list[dict]:
    """Sweep every layer, dtype and token count; write tuned.json and the rows."""
    precompile(min(12, os.cpu_count() or 2))
    rows, table = [], {card: {}}
    for layer in LAYERS:
        for dtype in dtypes(layer):
            for tokens in layer.tokens:
                pool = DECODE_CANDIDATES if decode(layer, tokens) else PREFILL_CANDIDATES
                try:
                    row = measure(layer, tokens, dtype, pool[dtype])
                except Exception as exc:  # one shape's failure must not lose the others
                    print(f"[{card}] {layer.name} {dtype} {tokens}: {exc}", flush=True)
                    continue
                row.update(figures(row, layer))
                rows.append(row)
                entry = table[card].setdefault(dtype_name(
                    torch.float8_e4m3fn if dtype == "fp8" else torch.bfloat16), {}).setdefault(
                    shape_key(layer.experts, layer.inter, layer.hidden), {})
                entry[str(tokens)] = {"config": row["best"],
                                      "us": round(row["seconds"] * 1e6, 1)}
                print(f"[{card}] {layer.name} {dtype} {tokens:>5} tokens: best {row['best']} "
                      f"{row['seconds'] * 1e6:9.1f} us, {row['tflops']:6.1f} TFLOP/s, "
                      f"{row['gbps']:7.0f} GB/s, {row['speedup_vs_grouped_mm']:.2f}x grouped_mm "
                      f"({row['grouped_mm_seconds'] * 1e6:.1f} us), rel err "
                      f"{row['max_rel_error']:.1e}", flush=True)
                (out_dir / "tuned.json").write_text(json.dumps(table, indent=1))
                (out_dir / "tune_rows.json").write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out.mkdir(parents=True, exist_ok=True)
    tune(out, torch.cuda.get_device_name())
