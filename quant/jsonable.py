"""One JSON encoder for what the framework writes: numpy scalars as numbers, dates as ISO
strings, anything else as its text."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np


def default(value: object) -> object:
    """`json.dumps(..., default=default)`."""
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return str(value)
