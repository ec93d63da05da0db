"""The API reference builds from the docstrings with no pdoc warning and no broken link."""

import runpy
from pathlib import Path

import pytest

BUILD = Path(__file__).resolve().parents[1] / "docs" / "build.py"


def test_the_api_reference_builds_without_broken_links(tmp_path):
    pytest.importorskip("pdoc")
    build = runpy.run_path(str(BUILD))["build"]
    assert build(tmp_path) == []
    assert (tmp_path / "quant" / "api.html").exists()


def test_the_link_check_finds_a_broken_link(tmp_path, monkeypatch):
    broken_links = runpy.run_path(str(BUILD))["broken_links"]
    (tmp_path / "a.html").write_text('<p id="x"><a href="b.html">b</a><a href="#y">y</a>'
                                     '<a href="c/d.html#z">d</a></p>')
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "d.html").write_text('<p id="z"><a href="../a.html#x">a</a></p>')
    assert len(broken_links(tmp_path)) == 2
    monkeypatch.chdir(tmp_path)   # a relative output folder, as `make docs` gives
    assert len(broken_links(Path("."))) == 2
