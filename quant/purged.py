"""Walk-forward splits for models trained on labels that span several sessions.

A label at session t (the return over the next `horizon` sessions) is only known `horizon`
sessions later. Trained on the sessions just before a test block, a model would learn from
labels that overlap the test labels, and its out-of-sample score would be a leak, not an edge.
Purging drops every training session whose label is not complete by the first test session;
an embargo drops `embargo` more (López de Prado, "Advances in Financial Machine Learning",
ch. 7). Only the sessions' positions are split here: whatever model is fitted on them, only its
predictions on the test blocks are out of sample.
"""

from __future__ import annotations

import numpy as np


def walk_forward_splits(sessions: int, test: int, horizon: int, train: int | None = None,
                        embargo: int = 0, first_test: int | None = None
                        ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(training positions, test positions) for consecutive test blocks of `test` sessions,
    from `first_test` (by default the first session that leaves `train`, or `horizon` + 1,
    sessions of usable history) to the end. A block trains on the sessions before it whose
    label ends by its first session (t + horizon <= start - embargo): the last `train` of
    them, or all (an expanding window)."""
    if min(sessions, test, horizon) < 1 or embargo < 0 or (train is not None and train < 1):
        raise ValueError("sessions, test and horizon must be at least 1, train (if given) at "
                         "least 1 and embargo not negative")
    start = first_test if first_test is not None else (train or 1) + horizon + embargo
    splits = []
    for block in range(start, sessions, test):
        last = block - horizon - embargo  # the last training session whose label is complete
        if last < 0:
            continue
        begin = 0 if train is None else max(0, last + 1 - train)
        splits.append((np.arange(begin, last + 1), np.arange(block, min(block + test,
                                                                          sessions))))
    return splits
