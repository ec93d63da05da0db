"""A model's identity: a hash of what changes its numbers, never of a file a library writes.

`fingerprint(path, precision, extra)` hashes three things:

- the **tensors**: every tensor's name, dtype, shape and bytes, in name order, so neither the
  file's metadata, its tensor order nor its split into shards matters;
- the **architecture config**: `config.json` with the keys a library writes for its own
  bookkeeping removed (`LIBRARY_METADATA`: its version, the source's name, the dtype
  annotation) and the rest in sorted key order, so a new transformers release that writes the
  same model with another version string keeps its identity, while any field that changes the
  forward pass (`rms_norm_eps`, `num_hidden_layers`, ...) changes it;
- what the caller adds: the precision it runs at, the upcycle, the adapter.

The tensor hash is cached beside the weights (`.fingerprint.json`, keyed by the files' sizes
and modification times), so a model directory is read in full once.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

# Keys that record who wrote config.json, not what the model computes. The weights' dtype is
# in the tensor hash; the dtype a model runs at is the precision, hashed separately.
LIBRARY_METADATA = frozenset({
    "transformers_version", "_name_or_path", "_model_name_or_path", "_commit_hash",
    "dtype", "torch_dtype", "_attn_implementation_autoset",
})
# torch's dtype names as safetensors spells them, so a .bin and a .safetensors copy agree.
_DTYPES = {"float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16",
           "float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2", "int64": "I64",
           "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}
_CACHE = ".fingerprint.json"
_CACHE_FORMAT = 2          # 1 hashed the files' bytes; 2 hashes the tensors


def fingerprint(path: Path, precision: str, extra: str = "") -> str:
    """16 hex digits naming the model in `path` run at `precision`, with `extra` (upcycle,
    adapter) mixed in."""
    parts = (tensors_digest(path), architecture_digest(path), precision, extra)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def architecture_config(config: dict) -> dict:
    """The config without library metadata, at every nesting level (text_config, ...)."""
    return {key: architecture_config(value) if isinstance(value, dict) else value
            for key, value in config.items() if key not in LIBRARY_METADATA}


def architecture_digest(path: Path) -> str:
    config = json.loads((path / "config.json").read_text())
    canonical = json.dumps(architecture_config(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def tensors_digest(path: Path) -> str:
    """Hash of every tensor in the directory's safetensors (or .bin) files, cached."""
    files = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
    stamp = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    cache = path / _CACHE
    try:
        known = json.loads(cache.read_text())
    except (OSError, json.JSONDecodeError):
        known = {}
    if known.get("format") == _CACHE_FORMAT and known.get("stamp") == stamp:
        return known["tensors"]
    digest = hashlib.sha256()
    for name, dtype, shape, chunks in sorted(_tensors(files), key=lambda t: t[0]):
        digest.update(f"{name}|{dtype}|{shape}|".encode())
        for chunk in chunks():
            digest.update(chunk)
    tensors = digest.hexdigest()
    try:
        cache.write_text(json.dumps({"format": _CACHE_FORMAT, "stamp": stamp,
                                     "tensors": tensors}))
    except OSError:
        pass  # a read-only model directory: hash again next time
    return tensors


def _tensors(files: list[Path]):
    """(name, dtype, shape, bytes in chunks) for every tensor in the files."""
    for file in files:
        if file.suffix == ".safetensors":
            yield from _safetensors(file)
        else:
            yield from _pickled(file)


def _pickled(file: Path):
    import torch  # only for a .bin checkpoint; a safetensors one is read without it

    for name, tensor in torch.load(file, map_location="cpu", weights_only=True).items():
        data = tensor.contiguous().view(-1).view(torch.uint8).numpy().tobytes()
        name_of_dtype = str(tensor.dtype).removeprefix("torch.")
        dtype = _DTYPES.get(name_of_dtype, name_of_dtype)
        yield name, dtype, list(tensor.shape), lambda data=data: (data,)


def _safetensors(file: Path, chunk: int = 1 << 24):
    """Read the safetensors header directly: the bytes are hashed as stored, no tensor built.
    Dtype names are safetensors' own (F32, BF16, ...)."""
    with file.open("rb") as handle:
        size = struct.unpack("<Q", handle.read(8))[0]
        header = json.loads(handle.read(size))
    start = 8 + size
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]

        def chunks(begin=begin, end=end):
            with file.open("rb") as handle:
                handle.seek(start + begin)
                left = end - begin
                while left > 0:
                    block = handle.read(min(chunk, left))
                    if not block:
                        raise OSError(f"{file} is truncated (tensor data ends early)")
                    left -= len(block)
                    yield block

        yield name, info["dtype"], info["shape"], chunks
