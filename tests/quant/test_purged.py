"""Purged walk-forward: overlapping labels leak without purging, and not with it."""

import numpy as np
import pytest

from quant.purged import walk_forward_splits


def _leaky_world(sessions: int = 3000, horizon: int = 10, seed: int = 0):
    """Labels that overlap: y_t is the sum of the next `horizon` daily returns, which are pure
    noise, so nothing can predict them."""
    r = np.random.default_rng(seed).normal(size=sessions + horizon)
    y = np.array([r[t + 1:t + 1 + horizon].sum() for t in range(sessions)])
    return y


def _nearest_in_time_ic(y: np.ndarray, splits) -> float:
    """A model that memorises: it predicts each test label as the label of the latest
    training session (1-nearest neighbour on time). Out-of-sample correlation."""
    predicted, truth = [], []
    for train, test in splits:
        predicted.extend([y[train[-1]]] * len(test))
        truth.extend(y[test])
    return float(np.corrcoef(predicted, truth)[0, 1])


def test_without_purging_the_walk_forward_finds_the_leak_and_with_it_does_not():
    horizon = 10
    y = _leaky_world(horizon=horizon)
    # Not purged: split as if the labels were one session long.
    leaky = walk_forward_splits(len(y), test=5, horizon=1, train=250, first_test=260)
    purged = walk_forward_splits(len(y), test=5, horizon=horizon, train=250, first_test=260)
    assert _nearest_in_time_ic(y, leaky) > 0.5           # a "skill" that is only overlap
    assert abs(_nearest_in_time_ic(y, purged)) < 0.1     # gone once the overlap is purged


def test_every_training_label_ends_before_its_test_block_starts():
    for train in (None, 50):
        for embargo in (0, 3):
            splits = walk_forward_splits(400, test=20, horizon=5, train=train, embargo=embargo)
            assert splits
            for training, testing in splits:
                assert training.max() + 5 + embargo <= testing.min()
                assert train is None or len(training) <= train
            tested = np.concatenate([t for _, t in splits])
            assert (np.diff(tested) == 1).all() and tested[-1] == 399  # blocks tile the rest


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="at least 1"):
        walk_forward_splits(100, test=0, horizon=5)
