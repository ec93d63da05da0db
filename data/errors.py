"""The error hierarchy's base, at the bottom of the dependency order.

Every package derives its own subclass from `FrameworkError` (`llm` has ModelError, `quant` has
ConfigError, BacktestError, JobError). Messages say what went wrong, where, and how to fix it;
the CLI prints them without a traceback and exits non-zero.
"""

import errno


class FrameworkError(Exception):
    """Base of every error the framework raises on purpose."""


class DataError(FrameworkError):
    """Bad input data, a warehouse that cannot be opened, or a schema mismatch."""


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error (an OSError, or a library's error wrapping one) is a full disk: never
    a bad record, always the whole operation's failure."""
    return (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) or (
        "No space left on device" in str(exc))
