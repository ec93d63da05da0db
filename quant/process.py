"""Whether a process of this machine still runs (for what a dead writer or job left behind)."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """True while process `pid` runs here (one we may not signal runs too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
