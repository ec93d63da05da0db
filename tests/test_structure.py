"""The shape of the code: imports only go down the layers, and nothing grows too long.

The layers (ARCHITECTURE.md): `quant` on top may import `llm`, `strategies` and `data`; `llm`
may import `data`; `strategies` and `data` import nothing of ours above them. Every import
counts, function-local ones too: an upward import hidden in a function is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("data", "llm", "strategies", "quant")
ALLOWED = {
    "data": {"data"},
    "strategies": {"strategies"},
    "llm": {"llm", "data"},
    "quant": {"quant", "llm", "strategies", "data"},
}
MAX_FUNCTION_LINES = 60   # kernels excepted: a Triton kernel is one function by nature
MAX_MODULE_LINES = 400


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (REPO / package).rglob("*.py"))


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_imports_only_go_down_the_layers():
    upward = []
    for path in _modules():
        package = path.relative_to(REPO).parts[0]
        for line, name in _imports(ast.parse(path.read_text())):
            top = name.split(".")[0]
            if top in PACKAGES and top not in ALLOWED[package]:
                upward.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_the_layering_check_sees_function_local_imports():
    tree = ast.parse("def f():\n    from quant.pipeline import align\n")
    assert _imports(tree) == [(2, "quant.pipeline")]


def test_no_module_or_function_is_too_long():
    long = []
    for path in _modules():
        source = path.read_text()
        name = path.relative_to(REPO)
        if len(source.splitlines()) > MAX_MODULE_LINES:
            long.append(f"{name}: {len(source.splitlines())} lines")
        if "kernels" in path.parts:
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{name}:{node.lineno} {node.name}: {lines} lines")
    assert not long, "too long:\n" + "\n".join(long)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_imports(package):
    __import__(package)
