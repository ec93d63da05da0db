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


def _python_blocks(section: str) -> list[str]:
    """The ```python blocks of a README section."""
    readme = (BUILD.parents[1] / "README.md").read_text()
    body = readme.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [block.split("```", 1)[0] for block in body.split("```python\n")[1:]]


@pytest.mark.slow
def test_the_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    """"Use it from Python", run as a newcomer would: on a workspace called research/ with
    the bundled prices, the generated news and its signals."""
    import quant
    from tests.quant.helpers import sample_workspace

    root = sample_workspace(tmp_path / "research")
    monkeypatch.chdir(tmp_path)
    blocks = _python_blocks("Use it from Python")
    assert blocks, "the README has no Python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    # "Add a strategy": its example registers a strategy a backtest then runs
    from strategies import REGISTRY

    for block in _python_blocks("Add a strategy"):
        exec(compile(block, "README.md", "exec"), {})
    try:
        run = quant.open(root, write=True).backtest("contrarian", sweep=True)
        assert run.metrics["configurations"] == 3
    finally:
        REGISTRY.pop("contrarian", None)
