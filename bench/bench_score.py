"""Score mode: the fast path against one full forward pass of the whole prompt, on this CPU.

Configurations, all on the same documents in one process:
- baseline bf16 / fp32: the whole prompt (opening, document, question, cues) through every
  layer in one left-padded forward, the head read by a hook (score mode before the fast path);
- fast auto / fp32 / int8: the opening's keys and values computed once, the documents' own
  tokens through the layers up to the sentiment head, nothing after.

`by count` is the fast path batched 64 documents at a time whatever their length (the default
before `[model] batch_tokens`); the fast auto and fp32 paths are also timed at batch sizes
32-128 and token budgets (what `[model] batch_size` and `batch_tokens` are chosen from).
Each prints docs/s, achieved GFLOP/s (linear + attention FLOPs of the work done) and that as
a share of the roofline of the precision that ran: this machine's GEMM rate in that
precision (bf16, fp32, or int8 through torch's dynamic-quantised linear) on the shapes a
decoder layer multiplies, measured in the same process. Then ratios against the baselines.
Weighted F1 on tfns/valid is measured for each fast precision.

Documents: N (default 96) of the generated demo headlines, N of the StockNet 2014 tweets and
N/4 passages of Apple's 2024 10-K's risk factors and MD&A as scoring cuts them (the longest
documents read; both skipped when the datasets folder is absent).
Run: `python bench/bench_score.py [N] [F1_LIMIT]`.
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
from llm.infer.engine import DocInput, Engine  # noqa: E402
from llm.infer.evaluate import evaluate, read_labelled  # noqa: E402
from llm.model.adapter import decoder_layers  # noqa: E402
from llm.model.load import cpu_features  # noqa: E402

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


def filing_passages(n: int, spec: str = "default") -> list[DocInput] | None:
    """The first `n` passages of Apple's 2024 10-K's risk factors and MD&A, cut as scoring
    cuts them for the model `spec`: the longest documents the framework reads."""
    import tempfile

    from data.ingest import ingest_files
    from data.warehouse import Warehouse
    from quant.text.scoring import reading_units

    filing = DATASETS / "edgar" / "aapl-10-k-2024-11-01.html.gz"
    if not filing.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp, Warehouse(Path(tmp) / "w.duckdb") as wh:
        ingest_files(wh, "filings", [filing], index=filing.parent / "index.csv")
        sections = wh.query("SELECT s.item, s.text, d.tickers[1] AS ticker FROM "
                            "filing_sections s JOIN documents d USING (doc_id) "
                            "WHERE s.item IN ('1A', '7') ORDER BY s.item")
    engine = Engine(llm.load(spec, "fp32"), calibrate=False)
    tickers, texts = sections["ticker"].to_list(), sections["text"].to_list()
    units = reading_units(engine, tickers, texts, sections["item"].to_list(), "score")
    return [DocInput(tickers[r], texts[r][a:b]) for r, a, b in units[:n]]


def gemm_rate(precision: str, model: torch.nn.Module, rows: int = 1024,
              seconds: float = 0.5) -> float:
    """This machine's GEMM rate (GFLOP/s) in `precision` (bf16, fp32, or int8 through torch's
    dynamic-quantised linear) on the shapes one decoder layer multiplies, `rows` tokens at a
    time, each shape weighted by its FLOPs: the roofline of the score path's linear work."""
    from llm.kernels.int8 import int8_weight
    from llm.kernels.int8 import linear as int8_linear

    layer = decoder_layers(model)[0]
    shapes = [tuple(p.shape[-2:]) for p in layer.parameters() if p.dim() >= 2]
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    total_flops = total_seconds = 0.0
    for out_features, in_features in dict.fromkeys(shapes):
        x, w = torch.randn(rows, in_features, dtype=dtype), torch.randn(out_features,
                                                                       in_features)
        if precision == "int8":
            packed = int8_weight(w).packed
            multiply = lambda: int8_linear(x, packed)  # noqa: E731
        else:
            w = w.to(dtype)
            multiply = lambda: x @ w.T  # noqa: E731
        multiply()
        began, n = time.perf_counter(), 0
        while time.perf_counter() - began < seconds:
            multiply()
            n += 1
        weight = shapes.count((out_features, in_features))
        total_flops += weight * 2 * rows * in_features * out_features * n
        total_seconds += weight * (time.perf_counter() - began)
    return total_flops / total_seconds / 1e9


def layer_flops_per_token(model: torch.nn.Module) -> float:
    """2 x the weights one token multiplies in a decoder layer (active experts only)."""
    from llm.model.upcycle import moe_blocks

    layer = decoder_layers(model)[0]
    params = sum(p.numel() for p in layer.parameters() if p.dim() >= 2)
    for block in moe_blocks(layer):
        per_expert = (block.gate_up.numel() + block.down.numel()) / block.config.n_experts
        params -= per_expert * (block.config.n_experts - block.config.top_k)
    return 2.0 * params


def work_flops(loaded, per_token: float, docs: list[tuple[int, int]], layers: int) -> float:
    """(context before, own tokens) per document through `layers` layers: linears plus
    attention (4 x the query width, heads x head size, per key attended)."""
    config = loaded.config
    head_dim = (getattr(config, "head_dim", None)
                or config.hidden_size // config.num_attention_heads)
    hidden = config.num_attention_heads * head_dim   # SmolLM2: the hidden size; Gemma: more
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
    model = llm.load("default", "fp32").model
    roofline = {p: gemm_rate(p, model) for p in (("bf16", "fp32", "int8") if native
                                                 else ("fp32", "int8", "bf16"))}
    print(f"CPU capability: {capability} (native bf16: {native}), {torch.get_num_threads()} "
          f"threads; GEMM at the model's shapes, 1024 rows (GFLOP/s): "
          + ", ".join(f"{p} {r:.0f}" for p, r in roofline.items()))
    corpora = {"demo headlines": headlines(n), "StockNet tweets": tweets(n),
               "10-K passages": filing_passages(max(8, n // 4))}
    corpora = {name: docs for name, docs in corpora.items() if docs}
    configs = [("baseline", "bf16"), ("baseline", "fp32"), ("by count", "auto"),
               ("fast", "auto"), ("fast", "fp32"), ("fast", "int8")]
    rates: dict[tuple[str, str, str], float] = {}
    f1: dict[str, float] = {}
    per_token = 0.0
    for path, precision in configs:
        loaded = llm.load("default", precision)
        # `by count`: the fast path batched 64 documents at a time, whatever their length
        # (the default before the token budget); the others: the engine's defaults.
        batching = ({"batch_size": 64, "batch_tokens": 0} if path == "by count"
                    else {"batch_size": 32} if path == "baseline" else {})
        engine = Engine(loaded, events=path == "baseline", calibrate=False, **batching)
        # The same work at every precision (int8 keeps its weights packed, out of sight).
        per_token = per_token or layer_flops_per_token(loaded.model)
        layers = len(decoder_layers(loaded.model)) if path == "baseline" else loaded.head_layer
        for corpus, docs in corpora.items():
            seconds, shapes = timed(baseline if path == "baseline" else fast, engine, docs)
            gflops = work_flops(loaded, per_token, shapes, layers) / seconds / 1e9
            rates[(path, precision, corpus)] = len(docs) / seconds
            # the roofline of the precision that ran: its own GEMM rate on this machine
            print(f"{path:8} {precision:5} ({loaded.precision:4}) {corpus:15} "
                  f"{len(docs) / seconds:7.2f} docs/s  {gflops:6.1f} GFLOP/s "
                  f"({gflops / roofline[loaded.precision]:.0%} of {loaded.precision} GEMM)")
        tfns = DATASETS / "tfns" / "valid.parquet"
        if path == "fast" and tfns.exists() and loaded.precision not in f1:
            frame = read_labelled(tfns, "text", "label", limit=f1_limit)
            f1[loaded.precision] = evaluate(Engine(loaded, batch_size=32), frame)["weighted_f1"]
            print(f"         tfns/valid weighted F1 ({frame.height} docs): "
                  f"{f1[loaded.precision]:.4f}")
        if path == "fast" and precision in ("auto", "fp32"):  # what the defaults came from
            for size, tokens in ((32, 0), (64, 0), (128, 0), (128, 1024), (128, 2048),
                                 (128, 4096)):
                engine.batch_size, engine.batch_tokens = size, tokens
                line = ", ".join(f"{corpus} {len(docs) / timed(fast, engine, docs)[0]:.2f}"
                                 for corpus, docs in corpora.items())
                print(f"         batch {size:3} docs, {tokens or 'any':>4} tokens: {line} docs/s")
    for corpus in corpora:
        fast_auto = rates[("fast", "auto", corpus)]
        print(f"{corpus}: fast auto vs baseline bf16 {fast_auto / rates[('baseline', 'bf16', corpus)]:.1f}x, "  # noqa: E501
              f"vs baseline fp32 {fast_auto / rates[('baseline', 'fp32', corpus)]:.1f}x; "
              f"vs by count {fast_auto / rates[('by count', 'auto', corpus)]:.2f}x; int8 vs fast "
              f"fp32 {rates[('fast', 'int8', corpus)] / rates[('fast', 'fp32', corpus)]:.2f}x")


if __name__ == "__main__":
    main()
