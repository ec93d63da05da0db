"""Multi-file artefacts (a saved model, a stored run's files) written whole or not at all, and
the one rule for the names users give them.

A name (of a model, a run, a report) is a name, never a path: `inside` resolves it under its
folder and refuses anything else. `write` puts the files into a hidden folder beside the
target with a `manifest.json` of their sizes and SHA-256 digests, then swaps it in by two
renames (the old folder aside, the new one in): a reader sees the old version or the new one,
never a mix, and the old one is kept until the new one is whole. A crash between the two
renames leaves the old version aside; `verified` puts it back. `verified` checks the manifest
on every load and refuses a torn or partial folder with the fix. Disk full is a clear error
(`no_space`) and leaves nothing partial.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from data.errors import FrameworkError, is_disk_full
from quant.errors import ConfigError
from quant.process import alive

MANIFEST = "manifest.json"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class ArtefactError(FrameworkError):
    """A stored artefact that is torn, partial or from an older version, or no space for one."""


def inside(folder: Path, name: str, what: str) -> Path:
    """`folder/name` for a plain `name` (letters, digits, '.', '_', '-'), refused otherwise: a
    user's name can never reach outside its folder."""
    if not isinstance(name, str) or not NAME.fullmatch(name) or ".." in name:
        raise ConfigError(f"{what} name {name!r} is not a plain name: use letters, digits, "
                          "'.', '_' and '-' (no '/', no '..', at most 128 characters)")
    return folder / name


def no_space(path: Path) -> ArtefactError:
    return ArtefactError(f"no space left on device under {path}; free space and rerun "
                         "(nothing partial was kept, earlier versions are intact)")


def write(folder: Path, files: dict[str, Callable[[Path], object]]) -> Path:
    """Write each `files[name](path)` into a new version of `folder`, with its manifest, and
    swap it in whole."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.new-{os.getpid()}"
    aside = folder.parent / f".{folder.name}.old-{os.getpid()}"
    _clean_stale(folder)
    try:
        staging.mkdir()
        for name, writer in files.items():
            writer(staging / name)
        manifest = {name: _digest(staging / name) for name in files}
        (staging / MANIFEST).write_text(json.dumps({"format": 1, "files": manifest}, indent=1))
        _sync(staging)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if is_disk_full(exc):
            raise no_space(folder.parent) from exc
        raise
    if folder.exists():
        folder.rename(aside)
    staging.rename(folder)
    shutil.rmtree(aside, ignore_errors=True)
    return folder


def write_file(path: Path, content: str | Callable[[Path], object]) -> Path:
    """One file written whole: through a temporary file and a rename, so a reader (a browser,
    a second process) sees the old file or the new one, never half of it."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        if isinstance(content, str):
            partial.write_text(content)
        else:
            content(partial)
    except BaseException as exc:
        partial.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise no_space(path.parent) from exc
        raise
    partial.replace(path)
    return path


def verified(folder: Path, what: str, fix: str) -> Path:
    """`folder` once its manifest's files are all there with their digests; otherwise an
    ArtefactError saying what is wrong and `fix`."""
    _recover(folder)
    manifest = folder / MANIFEST
    if not folder.is_dir():
        raise ArtefactError(f"no {what} at {folder}; {fix}")
    if not manifest.is_file():
        raise ArtefactError(f"the {what} at {folder} has no {MANIFEST} (written by an earlier "
                            f"version, or torn); {fix}")
    try:
        expected = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtefactError(f"the {what} at {folder} has an unreadable {MANIFEST}; {fix}") \
            from exc
    for name, digest in expected.items():
        path = folder / name
        if not path.is_file() or _digest(path) != digest:
            state = "missing" if not path.is_file() else "not the file its manifest names"
            raise ArtefactError(f"the {what} at {folder} is torn: {name} is {state}; {fix}")
    return folder


def _recover(folder: Path) -> None:
    """A crash between the two renames of `write` left the old version aside: put it back."""
    if folder.exists():
        return
    for aside in sorted(folder.parent.glob(f".{folder.name}.old-*")):
        aside.rename(folder)
        return


def _clean_stale(folder: Path) -> None:
    """Remove what writers that died left beside `folder` (their process is gone)."""
    for left in folder.parent.glob(f".{folder.name}.new-*"):
        pid = left.name.rpartition("-")[2]
        if not pid.isdigit() or not alive(int(pid)) or int(pid) == os.getpid():
            shutil.rmtree(left, ignore_errors=True)


def _digest(path: Path) -> dict:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return {"bytes": path.stat().st_size, "sha256": sha.hexdigest()}


def _sync(folder: Path) -> None:
    """Flush the files to disk before the rename makes them the current version."""
    for path in folder.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
