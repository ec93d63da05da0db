"""Score mode on a GPU with a model of the default's architecture: SmolLM2-135M upcycled into
4 experts, top-1, with the shipped adapter's sentiment head at layer 16, in bf16. The
weights are random (speed does not depend on them; the real ones stay on the CPU machine);
the tokenizer is the real one, so token counts are the real prompts'.

Documents/s and tokens/s at batch 16, 64 and 256, with our fused experts and with
transformers' grouped_mm experts on the same weights.

Run on a GPU: `python bench/gpu_engine.py MODEL_DIR [OUT_DIR]`, where MODEL_DIR holds the
default model's config.json and tokenizer files (the cached GGUF conversion, without its
weights).
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import llm.model.moe  # noqa: E402
from llm.infer.engine import DocInput, Engine  # noqa: E402
from llm.model.loaded import DEFAULT_ADAPTER, LoadedModel  # noqa: E402
from llm.model.upcycle import moe_blocks  # noqa: E402

DEVICE = "cuda"   # a CPU smoke test sets "cpu"
BATCHES = (16, 64, 256)
COMPANIES = ["Apple", "Microsoft", "Nvidia", "Amazon", "Tesla", "Exxon", "Pfizer", "Boeing"]
EVENTS = ["beats second-quarter estimates as services revenue climbs",
          "cuts full-year guidance after weaker demand in China",
          "announces a $5 billion buyback and raises its dividend",
          "faces a regulatory probe over accounting of long-term contracts",
          "names a new chief financial officer effective next month",
          "shares slide as analysts downgrade the stock to underperform",
          "agrees to acquire a smaller rival in an all-cash deal",
          "reports record deliveries despite supply-chain disruptions"]


def documents(n: int, seed: int = 0) -> list[DocInput]:
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        company = rng.choice(COMPANIES)
        sentences = " ".join(f"{company} {rng.choice(EVENTS)}." for _ in range(rng.randint(1, 4)))
        docs.append(DocInput(company[:4].upper(), sentences))
    return docs


def build(model_dir: Path) -> LoadedModel:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from llm.model import adapter as adapters
    from llm.model.experts import attach_experts
    from llm.model.upcycle import DEFAULT_UPCYCLE, upcycle

    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).to(DEVICE).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    upcycle(model, **DEFAULT_UPCYCLE)
    stray = [n for n, p in model.named_parameters() if p.device.type != DEVICE]
    print(f"parameters off {DEVICE} after upcycling: {len(stray)}", flush=True)
    model.to(DEVICE)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    loaded = LoadedModel(model=model, tokenizer=tokenizer, model_id="default (random weights)",
                         fingerprint="bench", precision="bf16", path=model_dir)
    found = adapters.read(DEFAULT_ADAPTER)
    # random weights stand in for the base the adapter was trained on
    loaded.head = adapters.apply(model, found, found.meta["base_id"]).to(DEVICE)
    loaded.head_layer = found.meta["stop"]
    loaded.notes += attach_experts(loaded)
    return loaded


def use_transformers_experts(loaded: LoadedModel) -> None:
    """Route every MoE block's experts through transformers' grouped_mm on the same weights."""
    from transformers import Qwen3MoeConfig
    from transformers.models.qwen3_moe.modeling_qwen3_moe import Qwen3MoeExperts

    modules = {}
    for block in moe_blocks(loaded.model):
        c = block.config
        config = Qwen3MoeConfig(hidden_size=c.hidden, moe_intermediate_size=c.inter,
                                num_experts=c.n_experts, num_experts_per_tok=c.top_k)
        config._experts_implementation = "grouped_mm"
        module = Qwen3MoeExperts(config)
        module.gate_up_proj, module.down_proj = block.gate_up, block.down
        modules[id(block.gate_up)] = module.to(DEVICE)

    def run(x, ids, weights, gate_up, down, int8=None):
        return modules[id(gate_up)](x, ids, weights.to(x.dtype))

    llm.model.moe.run_experts = run


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def rates(loaded: LoadedModel, batch: int) -> dict:
    """The second pass over the same documents: the first compiles every kernel
    specialisation the batches' token counts need."""
    engine = Engine(loaded, batch_size=batch, max_input_tokens=384)
    docs = documents(max(512, 4 * batch))
    engine.score(docs)
    sync()
    started = time.perf_counter()
    results = engine.score(docs)
    sync()
    seconds = time.perf_counter() - started
    ok = sum(r.status == "ok" for r in results)
    return {"batch": batch, "docs": len(docs), "ok": ok, "docs_per_s": len(docs) / seconds,
            "tokens_per_s": engine.stats["tokens"] / seconds,
            "tokens_per_doc": engine.stats["tokens"] / len(docs)}


@torch.inference_mode()
def main(model_dir: Path, out_dir: Path) -> list[dict]:
    card = torch.cuda.get_device_name()
    loaded = build(model_dir)
    print(f"[{card}] engine: {'; '.join(loaded.notes)}", flush=True)
    rows = []
    for experts in ("ours", "transformers grouped_mm"):
        if experts != "ours":
            use_transformers_experts(loaded)
        for batch in BATCHES:
            row = {"experts": experts, **rates(loaded, batch)}
            rows.append(row)
            print(f"[{card}] score mode, {experts}, batch {batch}: {row['docs_per_s']:.0f} docs/s, "
                  f"{row['tokens_per_s']:.0f} tokens/s ({row['tokens_per_doc']:.0f} tokens/doc, "
                  f"{row['ok']}/{row['docs']} ok)", flush=True)
            (out_dir / "engine_rows.json").write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    out = Path(sys.argv[2] if len(sys.argv) > 2 else ".")
    out.mkdir(parents=True, exist_ok=True)
    main(Path(sys.argv[1]), out)
