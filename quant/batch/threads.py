"""Idle OpenMP threads that wait politely, for jobs that share a machine.

torch and LightGBM run their parallel loops on GNU OpenMP, whose idle threads spin (busy-wait)
for a while before they sleep. Alone on a machine that costs nothing; beside another process
(a scheduled job, a second worker) the spinning threads take the cores the working ones need.
On 2 cores with another process busy on one, a LightGBM fit of the learned model's size took
8.6-32 s spinning by default and 4.2 s with `GOMP_SPINCOUNT=1000`, and scoring tweets ran at
28 docs/s by default and 70 with it; alone, the short spin cost 9% (LightGBM) and 14% (torch).
A scheduled job cannot know whether it will be alone, so the command line waits politely;
a value the user set is kept (`GOMP_SPINCOUNT=` unset or larger to spin longer).
"""

from __future__ import annotations

import os

# Read by the OpenMP runtime when it first starts, so set before torch or LightGBM load.
POLITE = {"GOMP_SPINCOUNT": "1000",   # GNU OpenMP (torch, LightGBM): spin ~1000 rounds, then sleep
          "KMP_BLOCKTIME": "1"}       # Intel OpenMP, where a library brings it: 1 ms


def wait_politely() -> dict[str, str]:
    """Set each polite default the environment does not already set; returns what it set."""
    chosen = {k: v for k, v in POLITE.items() if k not in os.environ}
    os.environ.update(chosen)
    return chosen
