"""Score mode vs a naive baseline, and the grammar's cost in reason mode, on the default model.

- score mode: the batched single forward pass, on N documents (default 500);
- naive baseline: one unconstrained `generate` of the JSON per document at batch 1 (what a
  first attempt looks like), timed on a sample and reported as docs/s;
- reason mode with the llguidance grammar vs the same generation without it: time per
  generated token (the grammar's overhead per token).

The documents are the generated sample headlines. Run:
`python bench/bench_engine.py [N] [SAMPLE] [--grammar-only]`.
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path

import polars as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import llm  # noqa: E402
from data.samples import generate_news, sample_prices_path  # noqa: E402
from llm.infer import prompts  # noqa: E402
from llm.infer.engine import DocInput, Engine  # noqa: E402


def documents(n: int) -> list[DocInput]:
    prices = pl.read_csv(sample_prices_path()).rename(
        {"Ticker": "ticker", "Date": "session", "Open": "open", "Close": "close",
         "Adj Close": "adj_close"}).with_columns(pl.col("session").str.to_date())
    news = generate_news(prices).head(n)
    return [DocInput(t[0], f"{title}. {body}") for t, title, body in
            zip(news["tickers"], news["title"], news["body"], strict=True)]


def score_rates(engines: dict[str, Engine], docs: list[DocInput], rounds: int
                ) -> dict[str, float]:
    """Score-mode docs/s of each engine on `docs`, after a warm-up, in alternating rounds."""
    for engine in engines.values():
        engine.score(docs[:16])  # warm-up
    return alternating_rates({name: partial(engine.score, docs)
                              for name, engine in engines.items()}, len(docs), rounds)


def alternating_rates(runs: dict, n: int, rounds: int) -> dict[str, float]:
    """Docs/s of each run (a callable that processes `n` documents), in rounds that take the
    runs in turn, so that machine noise hits each alike."""
    seconds = {name: 0.0 for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            seconds[name] += time.perf_counter() - started
    return {name: n * rounds / s for name, s in seconds.items()}


@torch.inference_mode()
def naive(engine: Engine, docs: list[DocInput], max_new_tokens: int) -> float:
    tok = engine.tokenizer
    started = time.perf_counter()
    for doc in docs:
        text = prompts.chat(tok, prompts.REASON_USER.format(ticker=doc.ticker, text=doc.text))
        ids = tok(text, return_tensors="pt", add_special_tokens=False)
        engine.model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                              pad_token_id=tok.pad_token_id)
    return len(docs) / (time.perf_counter() - started)


def score_vs_naive(loaded, n: int, sample: int) -> None:
    engine = Engine(loaded, batch_size=16, max_new_tokens=96)
    docs = documents(n)
    engine.score(docs[:16])  # warm-up
    started = time.perf_counter()
    engine.score(docs)
    score_rate = n / (time.perf_counter() - started)
    naive_rate = naive(engine, docs[:sample], 96)
    print(f"score mode: {score_rate:.1f} docs/s on {n} docs; naive generate (batch 1, "
          f"unconstrained JSON, {sample} docs): {naive_rate:.2f} docs/s -> "
          f"{score_rate / naive_rate:.0f}x")


def grammar_cost(loaded, sample: int) -> None:
    subset = documents(sample)
    grammar = Engine(loaded, batch_size=1, max_new_tokens=96)
    started = time.perf_counter()
    results = grammar.reason(subset)
    with_grammar = time.perf_counter() - started
    tokens_with = sum(r.tokens for r in results)
    free_tokens, started = 0, time.perf_counter()
    tok = loaded.tokenizer
    for doc in subset:  # the same prompts, the same greedy decoding, no grammar
        text = prompts.chat(tok, prompts.REASON_USER.format(ticker=doc.ticker, text=doc.text))
        ids = tok(text + prompts.REASON_PREFIX, return_tensors="pt", add_special_tokens=False)
        out = loaded.model.generate(**ids, max_new_tokens=96, do_sample=False,
                                    pad_token_id=tok.pad_token_id)
        free_tokens += out.shape[1] - ids["input_ids"].shape[1]
    without = time.perf_counter() - started
    per_with, per_without = with_grammar / tokens_with, without / free_tokens
    ok = sum(r.status == "ok" for r in results)
    print(f"reason mode, {sample} docs: {per_with * 1000:.1f} ms/token with the grammar vs "
          f"{per_without * 1000:.1f} ms/token without ({per_with / per_without - 1:+.1%} per "
          f"token); valid signals with the grammar: {ok}/{sample}")


def main(n: int = 500, sample: int = 10, grammar_only: bool = False) -> None:
    torch.manual_seed(0)
    loaded = llm.load("default", "bf16")
    if not grammar_only:
        score_vs_naive(loaded, n, sample)
    grammar_cost(loaded, sample)


if __name__ == "__main__":
    numbers = [int(a) for a in sys.argv[1:] if a.isdigit()]
    main(*numbers[:2], grammar_only="--grammar-only" in sys.argv)
