"""The shape of the code: imports only go down the layers, no module takes part in an import
circle, no module reaches into another's private names, the command line starts without a
model or data-frame library beyond polars, few imports hide in functions (each saying why), and
nothing grows too long.

The layers (ARCHITECTURE.md): `quant` on top may import `llm`, `strategies` and `data`; `llm`
may import `data`; `strategies` and `data` import nothing of ours above them. Every import
counts, function-local ones too: an upward import hidden in a function is still a cycle.
Imports under `if TYPE_CHECKING:` are annotations only and do not count.
"""

from __future__ import annotations

import ast
import subprocess
import sys
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
# Function-local imports of our own modules defer a heavy library (torch, transformers,
# pandas, plotly, vectorbt, numba, triton) to the command that needs it; each says so.
MAX_LOCAL_IMPORTS = 22
HEAVY = ("torch", "transformers", "vectorbt", "scipy", "pandas", "plotly", "numba",
         "exchange_calendars", "sklearn", "lightgbm", "ray")
# Inside `llm` and `quant`, folders in one order: a module imports only modules of its own
# rank or below (ARCHITECTURE.md draws it). A package's top-level modules are rank 0 (the
# leaves of `llm`; the research core of `quant`), except the doors named here.
RANKS = {
    "llm": {"kernels": 1, "model": 2, "infer": 3, "train": 4},
    "quant": {"text": 1, "backtests": 1, "reports": 2, "live": 3, "api": 4, "batch": 5,
              "demo": 6, "cli": 7},
}
DOORS = {"llm", "quant"}   # the packages' own __init__: lazy doors to what is above
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


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.AST, modules: set[str]) -> set[str]:
    """Our modules a module imports when it runs (a name imported from a package counts as
    that submodule when there is one); TYPE_CHECKING blocks left out."""
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules
            found |= subs or ({node.module} & modules)
    return found


def _circles() -> list[list[str]]:
    """Strongly connected groups of modules (Tarjan), largest first."""
    paths = {_module_name(p): p for p in _modules()}
    graph = {m: _runtime_imports(ast.parse(p.read_text()), set(paths)) - {m}
             for m, p in paths.items()}
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
                on.discard(group[-1])
            if len(group) > 1:
                out.append(sorted(group))

    for module in graph:
        if module not in index:
            visit(module)
    return sorted(out, key=len, reverse=True)


def test_no_module_takes_part_in_an_import_circle():
    assert _circles() == [], "import circles:\n" + "\n".join(" -> ".join(c) for c in _circles())


def test_no_module_calls_into_another_modules_private_names():
    """`x._name(...)` on anything but self/cls (or a library's own), and `from m import _name`
    of ours: a private name is its module's to change."""
    libraries = {"torch", "np", "pl", "pd", "sys", "os"}
    found = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES:
                found += [f"{path.relative_to(REPO)}:{node.lineno} imports {a.name}"
                          for a in node.names if a.name.startswith("_")
                          and not a.name.startswith("__")]
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr.startswith("_") and not node.func.attr.endswith("_")
                    and not (isinstance(node.func.value, ast.Name)
                             and node.func.value.id in {"self", "cls", *libraries})
                    and not ast.unparse(node.func.value).startswith("torch.")):
                found.append(f"{path.relative_to(REPO)}:{node.lineno} calls "
                             f"{ast.unparse(node.func)}")
    assert not found, "private names used from outside:\n" + "\n".join(found)


@pytest.mark.parametrize("modules", ["quant.cli, quant.api, data.status, quant.batch.jobs",
                                     "quant.config, quant.settings, llm.settings"])
def test_the_command_line_and_the_api_start_without_heavy_libraries(modules):
    """`quant --help`, `quant db status`, `import quant.api` and the settings load no model,
    backtest or pandas-based library: they come in with the command that needs them."""
    code = (f"import sys, {modules}; "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"


def _local_imports() -> list[tuple[str, str]]:
    """(where, the line) of every import of our own modules inside a function."""
    found = []
    for path in _modules():
        source = path.read_text()
        lines = source.splitlines()
        for function in ast.walk(ast.parse(source)):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                         else [a.name for a in node.names] if isinstance(node, ast.Import)
                         else [])
                if any(name.split(".")[0] in PACKAGES for name in names):
                    found.append((f"{path.relative_to(REPO)}:{node.lineno}",
                                  lines[node.end_lineno - 1]))
    return found


def test_few_imports_hide_in_functions_and_each_says_why():
    local = _local_imports()
    assert len(local) <= MAX_LOCAL_IMPORTS, (
        f"{len(local)} function-local imports of our modules (at most {MAX_LOCAL_IMPORTS}): "
        "import at the top unless it defers a heavy library\n"
        + "\n".join(where for where, _ in local))
    silent = [where for where, line in local if "#" not in line]
    assert not silent, "a function-local import says which heavy library it defers:\n" + \
        "\n".join(silent)


def _rank(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] not in RANKS or module in DOORS:
        return None
    return RANKS[parts[0]].get(parts[1], 0) if len(parts) > 1 else 0


def test_folders_inside_a_package_import_only_downward():
    paths = {_module_name(p): p for p in _modules()}
    upward = []
    for module, path in paths.items():
        mine = _rank(module)
        if mine is None:
            continue
        for target in _runtime_imports(ast.parse(path.read_text()), set(paths)):
            theirs = _rank(target)
            if target.split(".")[0] == module.split(".")[0] and (theirs or 0) > mine:
                upward.append(f"{module} (rank {mine}) imports {target} (rank {theirs})")
    assert not upward, "imports up the folders:\n" + "\n".join(sorted(upward))


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


def test_the_command_line_waits_politely_unless_told_otherwise():
    """Its OpenMP threads sleep soon after their work (jobs share machines); a user's own
    setting is kept."""
    import os

    probe = ("import os, sys; sys.argv = ['quant', '--help'];\n"
             "from quant.cli import main\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print('SPIN', os.environ.get('GOMP_SPINCOUNT'), 'torch' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env=env, cwd=REPO, check=True).stdout
    assert "SPIN 1000 False" in out   # set before anything could have started OpenMP
    env["GOMP_SPINCOUNT"] = "300000"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env=env, cwd=REPO, check=True).stdout
    assert "SPIN 300000" in out
