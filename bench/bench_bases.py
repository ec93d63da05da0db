"""The bundled bases side by side, each with its shipped adapter, on this CPU, in one process.

For each base (`smollm2-135m`, `gemma-270m`; the plain names load the adapter shipped for each):
- per validation file (tfns/valid, stockemotions/val, sentfin/valid and its rows naming
  several entities): accuracy, weighted F1 and ECE of score mode, and the Loughran-McDonald
  dictionary's weighted F1 on the same rows;
- score-mode speed on the demo headlines, StockNet tweets and 10-K passages (each base cuts
  the passages with its own tokenizer): docs/s, achieved GFLOP/s (`bench_score.work_flops`) and
  that as a share of this machine's GEMM rate in the precision that ran, measured at each
  base's own layer shapes in the same process;
- the FLOPs one document costs (its tokens through the layers up to the head), so reading per
  FLOP can be compared.

Run: `python bench/bench_bases.py [PRECISION] [N] [LIMIT]` (PRECISION auto by default; N
documents per speed corpus, 96; LIMIT rows per validation file, all by default, 0 for speed
alone). Needs the datasets folder beside the repository for the quality half.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import llm  # noqa: E402
from bench.bench_score import (  # noqa: E402
    DATASETS,
    fast,
    filing_passages,
    gemm_rate,
    headlines,
    layer_flops_per_token,
    timed,
    tweets,
    work_flops,
)
from llm.infer.engine import Engine  # noqa: E402
from llm.infer.evaluate import evaluate, read_labelled  # noqa: E402
from llm.model.load import cpu_features  # noqa: E402

BASES = ("smollm2-135m", "gemma-270m")
FILES = {"tfns/valid": ("tfns/valid.parquet", "label"),
         "stockemotions/val": ("stockemotions/val.parquet", "sentiment"),
         "sentfin/valid": ("sentfin/valid.parquet", "label")}


def quality(engine: Engine, limit: int | None) -> dict:
    out = {}
    for name, (path, label) in FILES.items():
        if not (DATASETS / path).exists():
            continue
        m = evaluate(engine, read_labelled(DATASETS / path, "text", label, limit=limit))
        out[name] = {"n": m["n"], "accuracy": round(m["accuracy"], 4),
                     "weighted_f1": round(m["weighted_f1"], 4), "ece": round(m["ece"], 4),
                     "dictionary_f1": m["dictionary"]["weighted_f1"]}
        if "multi_entity" in m:
            out[name + " (several entities)"] = {
                k: round(v, 4) for k, v in m["multi_entity"].items()}
    return out


def speed(loaded, n: int, spec: str) -> dict:
    rate = gemm_rate(loaded.precision, loaded.model)
    per_token = layer_flops_per_token(loaded.model)
    corpora = {"demo headlines": headlines(n), "StockNet tweets": tweets(n),
               "10-K passages": filing_passages(max(8, n // 4), spec)}
    engine = Engine(loaded, calibrate=False)
    out = {"gemm_rate": round(rate, 1), "head_layer": loaded.head_layer,
           "layers": loaded.config.num_hidden_layers}
    for corpus, docs in corpora.items():
        if not docs:
            continue
        seconds, shapes = timed(fast, engine, docs)
        flops = work_flops(loaded, per_token, shapes, loaded.head_layer)
        out[corpus] = {"docs_per_s": round(len(docs) / seconds, 2),
                       "gflops": round(flops / seconds / 1e9, 1),
                       "share_of_gemm": round(flops / seconds / 1e9 / rate, 3),
                       "mflop_per_doc": round(flops / len(docs) / 1e6, 1)}
    return out


def main() -> None:
    precision = sys.argv[1] if len(sys.argv) > 1 else "auto"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 96
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else None
    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()} (native bf16: "
          f"{cpu_features()['native_bf16']}), {torch.get_num_threads()} threads")
    report = {}
    for base in BASES:
        loaded = llm.load(base, precision)
        report[base] = {"model_id": loaded.model_id, "precision": loaded.precision,
                        "speed": speed(loaded, n, base),
                        "quality": quality(Engine(loaded), limit) if limit != 0 else {}}
        print(json.dumps({base: report[base]}, indent=1))
    first, second = (report[b]["speed"] for b in BASES)
    for corpus in ("demo headlines", "StockNet tweets", "10-K passages"):
        if corpus in first and corpus in second:
            print(f"{corpus}: {BASES[1]} / {BASES[0]} docs/s "
                  f"{second[corpus]['docs_per_s'] / first[corpus]['docs_per_s']:.2f}x")


if __name__ == "__main__":
    main()
