"""Score mode: the fast path against one full forward pass of the whole prompt, on this CPU.

Configurations, all on the same documents in one process:
- baseline bf16 / fp32: the whole prompt (opening, document, question, cues) through every
  layer in one left-padded forward, the head read by a hook (score mode before the fast path);
- fast auto / fp32 / int8: the opening's keys and values computed once, the documents' own
  tokens through the layers up to the sentiment head, nothing after.

The fast fp32 path is also timed at batch sizes 16-128 (what `[model] batch_size` is chosen
from). Each prints docs/s, achieved GFLOP/s (linear + attention FLOPs of the work done) and
that as a share of this machine's measured fp32 GEMM rate (the roofline of this work), and
ratios against the baselines. Weighted F1 on tfns/valid is measured for each fast precision.

Documents: N (default 96) of the generated demo headlines and N of the StockNet 2014 tweets
(skipped when the datasets folder is absent). Run: `python bench/bench_score.py [N] [F1_LIMIT]`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import polars as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import llm  # noqa: E402
from data.samples import generate_news, sample_prices_path  # noqa: E402
from llm.adapter import decoder_layers  # noqa: E402
from llm.engine import DocInput, Engine  # noqa: E402
from llm.evaluate import evaluate, read_labelled  # noqa: E402
from llm.load import cpu_features  # noqa: E402

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def headlines(n: int) -> list[DocInput]:
    prices = pl.read_csv(sample_prices_path()).rename(
        {"Ticker": "ticker", "Date": "session", "Open": "open", "Close": "close",
         "Adj Close": "adj_close"}).with_columns(pl.col("session").str.to_date())
    news = generate_news(prices).sample(n, seed=0)
    return [DocInput(t[0], f"{title}. {body}") for t, title, body in
            zip(news["tickers"], news["title"], news["body"], strict=True)]


def tweets(n: int) -> list[DocInput] | None:
    path = DATASETS / "stocknet" / "tweets_2014.parquet"
    if not path.exists():
        return None
    frame = pl.read_parquet(path).sample(n, seed=0)
    return [DocInput(t, x) for t, x in zip(frame["ticker"], frame["text"], strict=True)]


def gemm_rate(seconds: float = 2.0) -> float:
    """This machine's fp32 GEMM rate (GFLOP/s) at the model's shapes."""
    x, w = torch.randn(1024, 576), torch.randn(1536, 576)
    x @ w.T
    began, n = time.perf_counter(), 0
    while time.perf_counter() - began < seconds:
        x @ w.T
        n += 1
    return 2 * 1024 * 576 * 1536 * n / (time.perf_counter() - began) / 1e9


def layer_flops_per_token(model: torch.nn.Module) -> float:
    """2 x the weights one token multiplies in a decoder layer (active experts only)."""
    from llm.upcycle import moe_blocks

    layer = decoder_layers(model)[0]
    params = sum(p.numel() for p in layer.parameters() if p.dim() >= 2)
    for block in moe_blocks(layer):
        per_expert = (block.gate_up.numel() + block.down.numel()) / block.config.n_experts
        params -= per_expert * (block.config.n_experts - block.config.top_k)
    return 2.0 * params


def work_flops(loaded, per_token: float, docs: list[tuple[int, int]], layers: int) -> float:
    """(context before, own tokens) per document through `layers` layers: linears plus
    attention (4 x hidden per key attended)."""
    hidden = loaded.config.hidden_size
    total = 0.0
    for before, own in docs:
        attended = own * before + own * (own + 1) / 2
        total += layers * (own * per_token + 4 * hidden * attended)
    return total


@torch.inference_mode()
def baseline(engine: Engine, docs: list[DocInput]) -> list[tuple[int, int]]:
    """Score mode as one full forward of the whole prompt (left-padded, every layer, logits at
    the cues, the head read by a hook); returns (0, tokens) per document for the FLOP count."""
    built = engine._score_inputs(docs)  # the engine has events=True: question and cues too
    opening = engine._opening().prefix_ids[0].tolist()
    sequences = [opening + ids for ids, _, _ in built if ids]
    loaded = engine.loaded
    layer = decoder_layers(engine.model)[loaded.head_layer - 1]
    captured = []
    hook = layer.register_forward_hook(
        lambda _m, _i, out: captured.append(out[0] if isinstance(out, tuple) else out))
    try:
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        for start in range(0, len(order), engine.batch_size):
            batch = [sequences[i] for i in order[start:start + engine.batch_size]]
            width = max(len(s) for s in batch)
            pad = engine.tokenizer.pad_token_id
            ids = torch.tensor([[pad] * (width - len(s)) + s for s in batch])
            mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in batch])
            captured.clear()
            engine.model(input_ids=ids, attention_mask=mask,
                         position_ids=(mask.cumsum(-1) - 1).clamp(min=0), logits_to_keep=3,
                         use_cache=False)
            # The head's cost, on the last tokens (which span is pooled does not change it).
            loaded.head(captured[0][:, -8:].float().mean(1)).softmax(-1)
    finally:
        hook.remove()
    return [(0, len(s)) for s in sequences]


def fast(engine: Engine, docs: list[DocInput]) -> list[tuple[int, int]]:
    engine.score(docs)
    opening = engine._opening().length
    return [(opening, len(ids)) for ids, _, _ in engine._score_inputs(docs) if ids]


def timed(run, engine, docs) -> tuple[float, list[tuple[int, int]]]:
    run(engine, docs[:8])  # warm-up
    began = time.perf_counter()
    shapes = run(engine, docs)
    return time.perf_counter() - began, shapes


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 96
    f1_limit = int(sys.argv[2]) if len(sys.argv) > 2 else None
    capability = torch.backends.cpu.get_cpu_capability()
    native = cpu_features()["native_bf16"]
    roofline = gemm_rate()
    print(f"CPU capability: {capability} (native bf16: {native}), {torch.get_num_threads()} "
          f"threads; fp32 GEMM 1024x576x1536: {roofline:.1f} GFLOP/s")
    corpora = {"demo headlines": headlines(n), "StockNet tweets": tweets(n)}
    corpora = {name: docs for name, docs in corpora.items() if docs}
    configs = [("baseline", "bf16"), ("baseline", "fp32"), ("fast", "auto"), ("fast", "fp32"),
               ("fast", "int8")]
    rates: dict[tuple[str, str, str], float] = {}
    f1: dict[str, float] = {}
    per_token = 0.0
    for path, precision in configs:
        loaded = llm.load("default", precision)
        engine = Engine(loaded, batch_size=32, events=path == "baseline", calibrate=False)
        # The same work at every precision (int8 keeps its weights packed, out of sight).
        per_token = per_token or layer_flops_per_token(loaded.model)
        layers = len(decoder_layers(loaded.model)) if path == "baseline" else loaded.head_layer
        for corpus, docs in corpora.items():
            seconds, shapes = timed(baseline if path == "baseline" else fast, engine, docs)
            gflops = work_flops(loaded, per_token, shapes, layers) / seconds / 1e9
            rates[(path, precision, corpus)] = len(docs) / seconds
            print(f"{path:8} {precision:5} ({loaded.precision:4}) {corpus:15} "
                  f"{len(docs) / seconds:7.2f} docs/s  {gflops:6.1f} GFLOP/s "
                  f"({gflops / roofline:.0%} of fp32 GEMM)")
        tfns = DATASETS / "tfns" / "valid.parquet"
        if path == "fast" and tfns.exists() and loaded.precision not in f1:
            frame = read_labelled(tfns, "text", "label", limit=f1_limit)
            f1[loaded.precision] = evaluate(Engine(loaded, batch_size=32), frame)["weighted_f1"]
            print(f"         tfns/valid weighted F1 ({frame.height} docs): "
                  f"{f1[loaded.precision]:.4f}")
        if path == "fast" and precision == "fp32":
            for size in (16, 32, 64, 128):  # what the batch size is chosen from
                engine.batch_size = size
                line = ", ".join(f"{corpus} {len(docs) / timed(fast, engine, docs)[0]:.2f}"
                                 for corpus, docs in corpora.items())
                print(f"         batch {size:3}: {line} docs/s")
    for corpus in corpora:
        fast_auto = rates[("fast", "auto", corpus)]
        print(f"{corpus}: fast auto vs baseline bf16 {fast_auto / rates[('baseline', 'bf16', corpus)]:.1f}x, "  # noqa: E501
              f"vs baseline fp32 {fast_auto / rates[('baseline', 'fp32', corpus)]:.1f}x; "
              f"int8 vs fast fp32 "
              f"{rates[('fast', 'int8', corpus)] / rates[('fast', 'fp32', corpus)]:.2f}x")


if __name__ == "__main__":
    main()
