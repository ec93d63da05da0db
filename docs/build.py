"""Build the API reference from the docstrings (pdoc) into docs/api/, then check that every
link in it leads to a page and an anchor that exist. Exits non-zero on a pdoc warning or a
broken link.

Run: `make docs` (or `python docs/build.py [OUT]`).
"""

from __future__ import annotations

import importlib
import re
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("data", "llm", "strategies", "quant")


def modules() -> list[str]:
    sys.path.insert(0, str(REPO))
    """Every module; pdoc does not descend into a package that declares `__all__`, so its
    submodules are named explicitly (and only those)."""
    names = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if path.name == "__main__.py":
                continue
            parts = path.relative_to(REPO).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    declared = {n: set(getattr(importlib.import_module(n), "__all__", None) or ())
                for n in names if (REPO / n.replace(".", "/")).is_dir()}
    # A package with `__all__` hides its other submodules from pdoc; one named in it (as
    # `llm.load` is, by its function) pdoc adds by itself.
    return [n for n in names if n in PACKAGES or (
        declared.get(n.rpartition(".")[0]) and n.rpartition(".")[2]
        not in declared[n.rpartition(".")[0]])]


def broken_links(out: Path) -> list[str]:
    """Links between the pages that lead nowhere: a missing page or a missing anchor."""
    out = out.resolve()
    anchors = {page: set(re.findall(r'id="([^"]+)"', page.read_text()))
               for page in out.rglob("*.html")}
    broken = []
    for page in anchors:
        for href in re.findall(r'href="([^"]+)"', page.read_text()):
            if href.startswith(("http:", "https:", "mailto:", "data:")):
                continue
            target, _, anchor = href.partition("#")
            path = (page.parent / target).resolve() if target else page
            if path.suffix == ".html" and path not in anchors:
                broken.append(f"{page.relative_to(out)}: {href} (no such page)")
            elif anchor and path in anchors and anchor not in anchors[path]:
                broken.append(f"{page.relative_to(out)}: {href} (no such anchor)")
    return broken


def build(out: Path) -> list[str]:
    """Render the reference into `out`; returns the problems (pdoc warnings, broken links)."""
    import pdoc

    sys.path.insert(0, str(REPO))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*modules(), output_directory=out)
    problems = [f"pdoc: {w.message}" for w in caught if "pdoc" in str(w.filename)]
    return problems + broken_links(out)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "api"
    found = build(target)
    print("\n".join(found) or f"API reference written to {target}: no broken links")
    sys.exit(1 if found else 0)
