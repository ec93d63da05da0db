"""The GPU run, as one prepared script (needs a CUDA GPU and triton):

1. The card's ceilings, measured here: a dense 8192^3 bf16 GEMM and an fp8 one
   (torch._scaled_mm), and a device-to-device copy (HBM bandwidth).
2. `gpu_tune.py`: every launch configuration tuned per layer shape, dtype and token count,
   the winners checked against the torch path and timed against transformers' grouped_mm.
3. `gpu_engine.py`: score mode on a model of the default's architecture, ours vs
   transformers' experts (when MODEL_DIR is given).
4. The goals, each as measured / target.

Correctness first: `python -m pytest --noconftest -m gpu tests/llm/test_kernels_gpu.py`.
Run: `python bench/gpu_check.py OUT_DIR [MODEL_DIR]`; OUT_DIR receives tuned.json (the table
for llm/kernels/tuned.json) and the rows as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import gpu_tune  # noqa: E402


def ceilings() -> dict:
    """Dense GEMM rates and copy bandwidth, each the mean of timed runs after warm-ups."""
    import triton.testing

    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    bf16 = 2 * n**3 / (triton.testing.do_bench(lambda: a @ b, warmup=50, rep=200) / 1e3)
    a8, b8 = a.to(torch.float8_e4m3fn), b.to(torch.float8_e4m3fn).T.contiguous().T
    one = torch.ones((), device="cuda")
    fp8 = 2 * n**3 / (triton.testing.do_bench(
        lambda: torch._scaled_mm(a8, b8, one, one, out_dtype=torch.bfloat16),
        warmup=50, rep=200) / 1e3)
    src = torch.empty(2**30, dtype=torch.uint8, device="cuda")   # 1 GiB, well past the L2
    dst = torch.empty_like(src)
    copy = 2 * src.numel() / (triton.testing.do_bench(lambda: dst.copy_(src), rep=100) / 1e3)
    return {"bf16_tflops": bf16 / 1e12, "fp8_tflops": fp8 / 1e12, "copy_gbps": copy / 1e9}


def goals(rows: list[dict], roof: dict) -> list[str]:
    """Each goal of the kernels, measured against its target."""
    lines = []
    for r in rows:
        if r["layer"] == "default":
            lines.append(f"default layer {r['dtype']} {r['tokens']}: {r['tflops']:.0f} TFLOP/s, "
                         f"{r['speedup_vs_grouped_mm']:.2f}x grouped_mm")
        elif r["tokens"] in gpu_tune.PREFILL:
            lines.append(f"prefill {r['layer']} {r['dtype']} {r['tokens']}: "
                         f"{r['tflops']:.0f} TFLOP/s = {r['tflops'] / roof['bf16_tflops']:.0%} "
                         f"of dense bf16; {r['speedup_vs_grouped_mm']:.2f}x grouped_mm")
        elif r["tokens"] == 8:
            lines.append(f"decode {r['layer']} {r['dtype']} 8 tokens: {r['gbps']:.0f} GB/s = "
                         f"{r['gbps'] / roof['copy_gbps']:.0%} of the measured copy "
                         f"bandwidth; {r['speedup_vs_grouped_mm']:.2f}x grouped_mm")
        else:
            lines.append(f"decode {r['layer']} {r['dtype']} {r['tokens']} tokens: "
                         f"{r['speedup_vs_grouped_mm']:.2f}x grouped_mm")
    for layer in gpu_tune.LAYERS:
        for tokens in gpu_tune.PREFILL:
            pair = {r["dtype"]: r["seconds"] for r in rows
                    if r["layer"] == layer.name and r["tokens"] == tokens}
            if len(pair) == 2:
                lines.append(f"fp8 vs bf16 prefill {layer.name} {tokens}: "
                             f"{pair['bf16'] / pair['fp8']:.2f}x")
    return lines


def main(out_dir: Path, model_dir: Path | None) -> None:
    if not torch.cuda.is_available():
        sys.exit("no CUDA GPU here: this script only runs on a GPU machine")
    import transformers
    import triton

    card = torch.cuda.get_device_name()
    started = time.perf_counter()
    report = {"card": card, "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__,
              "triton": triton.__version__, "transformers": transformers.__version__}
    print(json.dumps(report), flush=True)
    try:
        report["ceilings"] = roof = ceilings()
    except Exception as exc:  # the kernels' figures still come, against the datasheet
        print(f"ceilings failed: {type(exc).__name__}: {exc}", flush=True)
        report["ceilings"] = roof = {"bf16_tflops": 989.0, "fp8_tflops": 1979.0,
                                     "copy_gbps": 4800.0, "datasheet": True}
    print(f"[{card}] dense bf16 {roof['bf16_tflops']:.0f} TFLOP/s, dense fp8 "
          f"{roof['fp8_tflops']:.0f} TFLOP/s, copy {roof['copy_gbps']:.0f} GB/s", flush=True)
    report["kernels"] = rows = gpu_tune.tune(out_dir, card)
    report["goals"] = goals(rows, roof)
    print("\n".join(report["goals"]), flush=True)
    (out_dir / "gpu_check.json").write_text(json.dumps(report, indent=1))
    print(f"kernels done in {time.perf_counter() - started:.0f} s", flush=True)
    if model_dir is not None:
        from bench import gpu_engine

        try:
            report["engine"] = gpu_engine.main(model_dir, out_dir)
        except Exception:
            import traceback

            traceback.print_exc()
        (out_dir / "gpu_check.json").write_text(json.dumps(report, indent=1))
    print(f"done in {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out.mkdir(parents=True, exist_ok=True)
    main(out, Path(sys.argv[2]) if len(sys.argv) > 2 else None)
