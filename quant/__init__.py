"""The orchestrator: config, CLI, scoring, pipeline, evaluation, backtests, reports, jobs.

From Python: `quant.open(path)` gives a `Workspace` (see `quant.api`), `quant.model(spec)` a
model for scoring texts, `quant.init_workspace(path)` a new workspace.
"""

from __future__ import annotations


def __getattr__(name: str):
    # Loaded on first use, so `quant.cli` and the jobs do not pay for what they do not use.
    if name == "open":
        from quant.api import open_workspace

        return open_workspace
    if name in ("Workspace", "model"):
        from quant import api

        return getattr(api, name)
    if name == "init_workspace":
        from quant.workspace import init_workspace

        return init_workspace
    raise AttributeError(f"module 'quant' has no attribute {name!r}")
