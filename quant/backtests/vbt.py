"""vectorbt, loaded once with numba's compile cache in the user's cache folder.

numba compiles vectorbt's kernels on first use (about 20 s); a writable cache makes every later
process start fast. The variable must be set before vectorbt is imported, hence a function
rather than a module-level import.
"""

from __future__ import annotations

import os
from pathlib import Path


def load():
    """The vectorbt module (imported on first call)."""
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "numba"))
    import vectorbt

    return vectorbt
