"""The orchestrator: config, CLI, scoring, pipeline, evaluation, backtests, reports, jobs.

From Python: `quant.open(path)` gives a `Workspace` (see `quant.api`), `quant.model(spec)` a
model for scoring texts, `quant.init_workspace(path)` a new workspace.
"""

from __future__ import annotations


def __getattr__(name: str):
    # Loaded on first use, so `quant.cli` and the jobs do not pay for what they do not use.
    if name in ("open", "Workspace", "model", "init_workspace"):
        from quant import api  # the API's modules: not for the command line's start

        return getattr(api, "open_workspace" if name == "open" else name)
    raise AttributeError(f"module 'quant' has no attribute {name!r}")
