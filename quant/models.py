"""The model a workspace scores with: the load request its quant.toml names (one value for
every scorer, here and on Ray, so each loads the same weights), its engine, and `Model`, a
loaded model for scoring texts directly (no warehouse)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from llm.model.load import LoadRequest
from llm.scored import DocInput
from quant.config import Config


def model_cache(config: Config) -> Path | None:
    """Where converted models live: quant.toml's [model] cache_dir, else the user's cache."""
    if not config.model.cache_dir:
        return None
    return config.root / Path(config.model.cache_dir).expanduser()  # absolute paths stay


def load_request(config: Config, spec: str | None = None, precision: str | None = None,
                 adapter: str | None = None) -> LoadRequest:
    """The model quant.toml names, with the caller's overrides."""
    cache = model_cache(config)
    return LoadRequest(spec or config.model.spec, precision or config.model.precision,
                       str(cache) if cache else None, tuple(sorted(config.models.items())),
                       adapter or config.model.adapter or None)


def load_model(config: Config, spec: str | None = None, precision: str | None = None,
               adapter: str | None = None):
    return load_request(config, spec, precision, adapter).load()


def load_engine(config: Config, spec: str | None = None, precision: str | None = None,
                adapter: str | None = None):
    """An engine on the model quant.toml names (with the caller's overrides), with its
    [model] settings."""
    return make_engine(load_model(config, spec, precision, adapter), config.model)


def make_engine(loaded, settings=None, **overrides: object):
    """An engine on a loaded model, with quant.toml's [model] settings (or `overrides` of
    `llm.infer.engine.EngineSettings`)."""
    from llm.infer.engine import Engine  # torch and transformers: only once a model is loaded

    return Engine(loaded, settings, **overrides)


class Model:
    """A loaded model with its engine, for scoring texts directly (no warehouse)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.loaded = engine.loaded

    def __repr__(self) -> str:
        return (f"Model({self.loaded.model_id!r}, precision={self.loaded.precision!r}, "
                f"fingerprint={self.loaded.fingerprint!r})")

    def score(self, texts: str | list[str], ticker: str = "", mode: str = "score"
              ) -> pl.DataFrame:
        """One row per text: status, sentiment, confidence, event type, reason."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        results = self.engine.run([DocInput(ticker, t) for t in texts], mode)
        return pl.DataFrame([{
            "text": t, "status": r.status,
            "sentiment": r.fields.sentiment if r.fields else None,
            "confidence": r.fields.confidence if r.fields else None,
            "event_type": r.fields.event_type.value if r.fields else None,
            "reason": r.reason} for t, r in zip(texts, results, strict=True)],
            schema_overrides={"sentiment": pl.Float64, "confidence": pl.Float64,
                              "event_type": pl.String, "reason": pl.String})


def model(spec: str = "default", precision: str = "auto", adapter: str | None = None,
          **engine_settings: object) -> Model:
    """Load a model (`default`, a Hugging Face directory, a .gguf file) for ad-hoc scoring;
    `engine_settings` as `llm.infer.engine.EngineSettings` (batch_size, events, ...)."""
    return Model(make_engine(LoadRequest(spec, precision, adapter=adapter).load(),
                             **engine_settings))
