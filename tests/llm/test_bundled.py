"""The bundled bases' names, and how their GGUFs are found, joined and checked."""

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from llm.errors import ModelError
from llm.model import bundled
from llm.model.load import gguf_to_safetensors


def test_every_base_loads_by_three_names_and_default_is_one_of_them():
    names = bundled.names()
    for base in bundled.BASES:
        assert {base, f"{base}-base", f"{base}-dense"} <= set(names)
    assert bundled.parse("default") == (bundled.BASES[bundled.DEFAULT_BASE], "")
    assert bundled.parse("gemma-270m-base") == (bundled.BASES["gemma-270m"], "base")
    assert bundled.parse("smollm2-135m-dense") == (bundled.BASES["smollm2-135m"], "dense")
    assert bundled.parse("gemma-270m-other") is None and bundled.parse("my-model-base") is None


class FakeDist:
    """An installed distribution as importlib.metadata shows it: files and requirements."""

    def __init__(self, root: Path, files: dict[str, bytes], requires=()):
        self.root, self.requires = root, list(requires)
        self.files = list(files)
        for name, data in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)

    def locate_file(self, name):
        return self.root / name


@pytest.fixture
def split_package(tmp_path, monkeypatch):
    """A base whose GGUF is split over two part packages, and its pinned digest."""
    parts = [b"GGUF" + b"a" * 100, b"b" * 57]
    digest = hashlib.sha256(b"".join(parts)).hexdigest()
    base = replace(bundled.BASES["gemma-270m"], package="whole", gguf="m.gguf", sha256=digest)
    dists = {"whole": FakeDist(tmp_path, {"whole/data/SHA256SUMS": f"{digest}  m.gguf\n".encode()},
                               requires=["part-b==1", "part-a==1"]),
             "part-a": FakeDist(tmp_path, {"a/data/m.gguf.part00": parts[0]}),
             "part-b": FakeDist(tmp_path, {"b/data/m.gguf.part01": parts[1]})}
    monkeypatch.setattr(bundled, "_distribution", lambda _base, name: dists[name])
    return base, dists, b"".join(parts)


def test_parts_are_joined_in_order_once_and_checked(split_package, tmp_path):
    base, _, whole = split_package
    path = bundled.gguf_path(base, tmp_path / "cache")
    assert path.read_bytes() == whole
    assert path.parent.name == f"{base.name}-{base.sha256[:16]}"
    assert [p.name for p in path.parent.iterdir()] == ["m.gguf"]   # no partial file left
    mtime = path.stat().st_mtime_ns
    assert bundled.gguf_path(base, tmp_path / "cache").stat().st_mtime_ns == mtime


def test_parts_that_join_into_another_file_are_refused_and_nothing_is_kept(split_package,
                                                                          tmp_path):
    base, dists, _ = split_package
    (dists["part-b"].root / "b/data/m.gguf.part01").write_bytes(b"tampered")
    with pytest.raises(ModelError, match="not the pinned"):
        bundled.gguf_path(base, tmp_path / "cache")
    assert not any((tmp_path / "cache").rglob("m.gguf*"))


def test_a_package_listing_another_digest_is_refused(split_package, tmp_path):
    base, _, _ = split_package
    with pytest.raises(ModelError, match="lists m.gguf with sha256"):
        bundled.gguf_path(replace(base, sha256="0" * 64), tmp_path / "cache")


def test_a_missing_part_package_says_how_to_install(split_package, tmp_path, monkeypatch):
    base, dists, _ = split_package

    def missing(_base, name):
        if name == "part-a":
            raise ModelError(f"model {base.name} needs package part-a, which is not installed")
        return dists[name]
    monkeypatch.setattr(bundled, "_distribution", missing)
    with pytest.raises(ModelError, match="part-a"):
        bundled.gguf_path(base, tmp_path / "cache")


def test_a_gguf_with_another_digest_than_pinned_is_not_converted(tmp_path):
    gguf = tmp_path / "x.gguf"
    gguf.write_bytes(b"GGUF not the pinned file")
    with pytest.raises(ModelError, match="not the pinned"):
        gguf_to_safetensors(gguf, tmp_path / "cache", expect="f" * 64)
    assert not (tmp_path / "cache").exists()
