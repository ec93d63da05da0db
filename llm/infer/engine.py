"""The inference engine: batched score mode and grammar-constrained reason mode.

Score mode is one forward pass per document and no generation, and it computes only what it
reads. The prompt's opening (everything before the ticker) is the same for every document: it
runs once per engine and the documents attend to its cached keys and values (llm/infer/prefix.py).
A model with a domain adapter (llm/model/adapter.py) reads the sentiment from its trained head, the
mean of the document's own tokens at the head's layer, so the pass stops there. Otherwise, or
with `events=True`, the prompt goes on to two cues, `Event type:` and `Sentiment:`, through
every layer, and the next-token probabilities of the label words at each cue give the event
type and (without a head) the sentiment: P(bullish) - P(bearish), confidence = the margin
between the two most likely labels. Documents are sorted by length and batched.

Reason mode writes a one-line reasoning trace, then JSON constrained to the signal schema.

A document that cannot be scored becomes a `failed` result with its reason; a model that puts
almost no probability on any label `abstain`s. A batch never fails because of one document.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import fields

import torch

from llm.infer import prompts
from llm.infer.prefix import SharedPrefix
from llm.infer.reason import reason
from llm.model.adapter import LABELS as HEAD_LABELS
from llm.model.adapter import decoder_layers
from llm.model.loaded import LoadedModel
from llm.schema import EventType, SignalFields, signal_ticker
from llm.scored import DocInput, Progress, Scored
from llm.settings import MODES, EngineSettings

__all__ = ["DocInput", "Engine", "EngineSettings", "Progress", "Scored"]

class Engine:
    def __init__(self, loaded: LoadedModel, settings: EngineSettings | None = None,
                 **overrides: object) -> None:
        """`settings` (or any subclass of it, such as the [model] config), then `overrides`
        by name: Engine(loaded, batch_size=8)."""
        base = settings or EngineSettings()
        self.options = EngineSettings(**{f.name: overrides.get(f.name, getattr(base, f.name))
                                         for f in fields(EngineSettings)})
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.batch_size = self.options.batch_size
        self.batch_tokens = self.options.batch_tokens
        self.max_input_tokens = self.options.max_input_tokens
        self.max_new_tokens = self.options.max_new_tokens
        self.min_label_mass = self.options.min_label_mass
        self.events = self.options.events
        self.device = next(self.model.parameters()).device
        self.sentiment_ids = self._first_tokens(prompts.SENTIMENT_WORDS)
        self.event_ids = self._first_tokens({e.value: w for e, w in prompts.EVENT_WORDS.items()})
        self.stats: dict[str, float] = {}
        self._runner: SharedPrefix | None = None
        self.prior: dict[str, dict[str, float]] | None = None
        if self.options.calibrate and self.full_depth:  # the prior corrects label words only
            self.prior = self._content_free_prior()

    def _content_free_prior(self) -> dict[str, dict[str, float]]:
        """Contextual calibration (Zhao et al., 2021): the label probabilities the model gives
        to content-free texts are its bias; score mode divides them out."""
        probes = [DocInput("the company", text) for text in prompts.CONTENT_FREE]
        saved, self.prior = self.prior, None
        results = self.score(probes)
        self.prior = saved
        prior: dict[str, dict[str, float]] = {"sentiment": {}, "event": {}}
        for result in results:
            for label, p in result.decoding.get("raw_sentiment", {}).items():
                prior["sentiment"][label] = prior["sentiment"].get(label, 0) + p / len(results)
            for label, p in result.decoding.get("raw_event", {}).items():
                prior["event"][label] = prior["event"].get(label, 0) + p / len(results)
        return prior

    def _first_tokens(self, words: dict[str, str]) -> dict[str, int]:
        return {label: self.encode(word)[0] for label, word in words.items()}

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _encode_many(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []

    # ------------------------------------------------------------ prompts

    def build_prompts(self, docs: Sequence[DocInput], user: str, cues: list[str], opening: str = "",
               ending: bool = True) -> list[tuple[list[int] | None, bool, tuple[int, int]]]:
        """Token ids per document (None when it cannot fit), whether the text was cut, and
        where the document's own tokens are (start, end). Ids start after `opening`, a text
        every prompt begins with (its tokens count toward the budget); without `ending`, the
        text and cues after the document are left off but still budgeted, so a document reads
        the same text either way."""
        head_ids, tail_ids, cue_ids, fixed = self._frame([d.ticker for d in docs], user, cues,
                                                         opening)
        body_ids = self._encode_many([prompts.normalise(d.text) for d in docs])
        built = []
        for head, body, tail in zip(head_ids, body_ids, tail_ids, strict=True):
            budget = self._room(fixed, head, tail)
            if budget < 8 or not body:
                built.append((None, False, (0, 0)))
                continue
            span = (len(head), len(head) + min(len(body), budget))
            ids = head + body[:budget] + (tail + cue_ids if ending else [])
            built.append((ids, len(body) > budget, span))
        return built

    def _frame(self, tickers: Sequence[str], user: str, cues: list[str], opening: str):
        """Per ticker, the prompt's tokens before the document (after `opening`) and after
        it; the cues' tokens; and how many tokens the opening and cues take."""
        heads, tails = [], []
        for ticker in tickers:
            head, tail = prompts.around_document(self.tokenizer, user, ticker)
            heads.append(head[len(opening):])
            tails.append(tail)
        cue_ids = [tok for cue in cues for tok in self.encode(cue)]
        fixed = len(self.encode(opening)) + len(cue_ids) if opening else len(cue_ids)
        return self._encode_many(heads), self._encode_many(tails), cue_ids, fixed

    def _room(self, fixed: int, head: list[int], tail: list[int]) -> int:
        return self.max_input_tokens - fixed - len(head) - len(tail)

    def prompt_parts(self, mode: str) -> tuple[str, list[str], str]:
        """A mode's prompt: the user template, the cues after the document, and the opening
        every prompt of the mode shares ("" for none)."""
        if mode == "score":
            return (prompts.SCORE_USER, [prompts.SCORE_EVENT_CUE, prompts.SCORE_SENTIMENT_CUE],
                    prompts.opening(self.tokenizer, prompts.SCORE_USER))
        if self.options.think_tokens > 0:  # open the think block, unless the template does
            _, tail = prompts.around_document(self.tokenizer, prompts.REASON_USER, "")
            opened = tail.rstrip().endswith(prompts.THINK_OPEN.strip())
            return prompts.REASON_USER, ["" if opened else prompts.THINK_OPEN], ""
        return prompts.REASON_USER, [prompts.REASON_PREFIX], ""

    def room(self, ticker: str, mode: str) -> int:
        """How many tokens of a document about `ticker` the `mode` prompt reads (the rest is
        cut): a longer text must be read in passages of at most this many."""
        heads, tails, _, fixed = self._frame([ticker], *self.prompt_parts(mode))
        return self._room(fixed, heads[0], tails[0])

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Each text's length in tokens, as the prompt would read it."""
        return [len(ids) for ids in self._encode_many([prompts.normalise(t) for t in texts])]

    def batches(self, built: list[tuple[list[int] | None, bool, tuple[int, int]]],
                tokens: int = 0):
        """Indices of fitting documents, sorted by length, in batches of at most `batch_size`
        documents and, with `tokens`, at most that many tokens once padded to the batch's
        longest (short posts then go many to a batch, long passages few; a document longer
        than `tokens` goes alone)."""
        order = sorted((i for i, (ids, *_) in enumerate(built) if ids is not None),
                       key=lambda i: len(built[i][0]))
        batch: list[int] = []
        for i in order:  # ascending: the newest document is the batch's longest
            padded = (len(batch) + 1) * len(built[i][0])
            if batch and (len(batch) == self.batch_size
                          or 0 < tokens < padded):
                yield batch
                batch = []
            batch.append(i)
        if batch:
            yield batch

    def pad_left(self, sequences: list[list[int]]):
        width = max(len(s) for s in sequences)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(s)) + s for s in sequences], device=self.device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences],
                            device=self.device)
        return ids, mask

    # ------------------------------------------------------------ score mode

    @property
    def full_depth(self) -> bool:
        """Whether score mode runs every layer: to read the event type, or the sentiment from
        label words when the model has no sentiment head."""
        return self.events or self.loaded.head is None

    def prompt_version(self, mode: str) -> str:
        return prompts.prompt_version(mode, events=mode != "score" or self.full_depth,
                                      think_tokens=self.options.think_tokens)

    def settings(self, mode: str) -> dict:
        """How `mode` decodes, recorded with every result so a run can be reproduced."""
        settings = {"precision": self.loaded.precision, "batch_size": self.batch_size,
                    "max_input_tokens": self.max_input_tokens}
        if mode == "score":
            return settings | {"events": self.full_depth, "batch_tokens": self.batch_tokens}
        return settings | {"max_new_tokens": self.max_new_tokens, "greedy": True}

    def run(self, docs: Sequence[DocInput], mode: str, progress: Progress | None = None
            ) -> list[Scored]:
        """`score` or `reason` the documents, by name."""
        if mode not in MODES:
            raise ValueError(f"mode must be score or reason, not {mode!r}")
        return (self.score if mode == "score" else self.reason)(docs, progress)

    def _opening(self) -> SharedPrefix:
        """The score prompt's opening, run once per engine (its keys and values are kept)."""
        if self._runner is None:
            ids = self.encode(prompts.opening(self.tokenizer, prompts.SCORE_USER))
            self._runner = SharedPrefix(self.model, ids, frozen=True)
        return self._runner

    def _score_inputs(self, docs: Sequence[DocInput]
                      ) -> list[tuple[list[int] | None, bool, tuple[int, int]]]:
        """The score prompt per document after the shared opening; the question and cues after
        the document only when the pass reads them."""
        user, cues, opening = self.prompt_parts("score")
        return self.build_prompts(docs, user, cues, opening=opening, ending=self.full_depth)

    @torch.inference_mode()
    def score(self, docs: Sequence[DocInput], progress: Progress | None = None) -> list[Scored]:
        built = self._score_inputs(docs)
        runner = self._opening()
        sentiment_cue = len(self.encode(prompts.SCORE_SENTIMENT_CUE))
        layers = len(decoder_layers(self.model))
        results: list[Scored | None] = [None] * len(docs)
        started, tokens = time.perf_counter(), 0
        for batch in self.batches(built, self.batch_tokens):
            t0 = time.perf_counter()
            sequences = [built[i][0] for i in batch]
            lengths = [len(s) for s in sequences]
            width, pad = max(lengths), self.tokenizer.pad_token_id
            ids = torch.tensor([s + [pad] * (width - len(s)) for s in sequences],
                               device=self.device)
            try:
                hidden, head_probs = runner.embed(ids), None
                if self.loaded.head is not None:
                    hidden = runner.run(hidden, 0, self.loaded.head_layer)
                    head_probs = self._head_probs(hidden, [built[i][2] for i in batch])
                event_probs = sentiment_probs = None
                if self.full_depth:
                    hidden = runner.run(hidden, self.loaded.head_layer or 0, layers)
                    rows = torch.arange(len(batch), device=self.device)
                    last = torch.tensor(lengths, device=self.device) - 1
                    sentiment_probs = runner.logits(hidden[rows, last]).softmax(-1)
                    event_probs = runner.logits(hidden[rows, last - sentiment_cue]).softmax(-1)
            except RuntimeError as exc:  # e.g. out of memory: fail these, keep going
                for i in batch:
                    results[i] = Scored("failed", reason=f"forward pass failed: {exc}")
                continue
            per_doc = (time.perf_counter() - t0) * 1000 / len(batch)
            for row, i in enumerate(batch):
                n = runner.length + lengths[row]
                tokens += n
                try:
                    results[i] = self._score_result(
                        docs[i], per_doc, n, built[i][1],
                        None if sentiment_probs is None else sentiment_probs[row],
                        None if event_probs is None else event_probs[row],
                        None if head_probs is None else head_probs[row])
                except ValueError as exc:  # one invalid signal fails alone, not the batch
                    results[i] = Scored("failed", reason=f"invalid signal: {exc}")
            if progress:
                progress(len(batch))
        return self.finish(results, started, tokens)

    def _head_probs(self, hidden: torch.Tensor, spans: list[tuple[int, int]]) -> torch.Tensor:
        """The head's (bearish, neutral, bullish) probabilities from the mean of each
        document's own tokens at the head's layer."""
        pooled = torch.stack([hidden[row, a:b].float().mean(0)
                              for row, (a, b) in enumerate(spans)])
        return self.loaded.head(pooled).softmax(-1)

    def _score_result(self, doc: DocInput, latency_ms: float, tokens: int, truncated: bool,
                      sentiment_probs: torch.Tensor | None, event_probs: torch.Tensor | None,
                      head_probs: torch.Tensor | None) -> Scored:
        """Sentiment from the head when there is one, else from the label words (calibrated,
        abstaining when they get almost no probability); event type from the label words when
        the pass read them, else `other` (not read)."""
        decoding = {"truncated": truncated, "calibrated": self.prior is not None,
                    "sentiment_from": "label words" if head_probs is None else "head",
                    "event_from": "label words" if event_probs is not None else "not read"}
        events = ({k: float(event_probs[t]) for k, t in self.event_ids.items()}
                  if event_probs is not None else {EventType.other.value: 1.0})
        if self.prior is None and event_probs is not None:  # what the calibration reads
            decoding["raw_event"] = events
        elif event_probs is not None:
            events = _divide(events, self.prior["event"])
        if head_probs is not None:  # trained on labelled data: no calibration needed
            p = {label: float(head_probs[i]) for i, label in enumerate(HEAD_LABELS)}
        else:
            raw = {k: float(sentiment_probs[t]) for k, t in self.sentiment_ids.items()}
            mass = sum(raw.values())
            decoding["label_mass"] = round(mass, 6)
            if self.prior is None:
                decoding["raw_sentiment"] = {k: v / mass for k, v in raw.items()} if mass else {}
            if mass < self.min_label_mass:
                return Scored("abstain", reason=f"label probability mass {mass:.4f} below "
                              f"{self.min_label_mass}", latency_ms=latency_ms, tokens=tokens,
                              decoding=decoding)
            p = {k: v / max(mass, 1e-12) for k, v in raw.items()}
            if self.prior is not None:
                p = _divide(p, self.prior["sentiment"])
        top, second = sorted(p.values(), reverse=True)[:2]
        fields = SignalFields(
            ticker=signal_ticker(doc.ticker),
            sentiment=max(-1.0, min(1.0, p["bullish"] - p["bearish"])),
            confidence=max(0.0, min(1.0, top - second)),
            event_type=EventType(max(events, key=events.get)),
            horizon_days=prompts.SCORE_HORIZON_DAYS,
            rationale=" ".join(f"p_{k}={v:.3f}" for k, v in p.items()))
        return Scored("ok", fields=fields, latency_ms=latency_ms, tokens=tokens, probs=p,
                      decoding=decoding)

    # ------------------------------------------------------------ reason mode

    def reason(self, docs: Sequence[DocInput], progress: Progress | None = None) -> list[Scored]:
        """A short reasoning and the JSON signal under the grammar (`llm.infer.reason`)."""
        return reason(self, docs, progress)

    def finish(self, results: list[Scored | None], started: float, tokens: int
                ) -> list[Scored]:
        """Documents no batch took (empty, or the prompt alone is too long) fail with the
        reason; throughput is recorded in `stats`."""
        for i, result in enumerate(results):
            if result is None:
                results[i] = Scored("failed", reason="empty text or the prompt does not fit "
                                    f"max_input_tokens={self.max_input_tokens}")
        seconds = max(time.perf_counter() - started, 1e-9)
        self.stats = {"seconds": seconds, "docs": len(results), "tokens": tokens,
                      "docs_per_s": len(results) / seconds, "tokens_per_s": tokens / seconds}
        return results  # type: ignore[return-value]


def _divide(p: dict[str, float], prior: dict[str, float]) -> dict[str, float]:
    """p / prior, renormalised (labels the prior never saw keep their probability)."""
    scaled = {k: v / max(prior.get(k, 1.0), 1e-6) for k, v in p.items()}
    total = sum(scaled.values()) or 1.0
    return {k: v / total for k, v in scaled.items()}
