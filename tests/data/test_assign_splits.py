"""Reproducible, exact, order-invariant splits."""

from __future__ import annotations

import numpy as np
import pytest

from clapkit.data import DEFAULT_FRACTIONS, assign_splits, split_counts
from clapkit.errors import ValidationError

IDS = np.arange(1000, 1997)  # 997 ids: the fractions do not divide evenly


def test_deterministic():
    a = assign_splits(IDS, DEFAULT_FRACTIONS, seed=5)
    b = assign_splits(IDS.copy(), dict(DEFAULT_FRACTIONS), seed=5)
    np.testing.assert_array_equal(a, b)
    assert a.dtype.kind == "U"


def test_exact_counts_by_largest_remainder():
    labels = assign_splits(IDS, DEFAULT_FRACTIONS, seed=0)
    counts = {name: int((labels == name).sum()) for name in DEFAULT_FRACTIONS}
    # 997 * (0.7, 0.15, 0.15) = 697.9, 149.55, 149.55 -> floors 697, 149, 149, 2 left over:
    # one to train (.9), one to 'test' (.55, alphabetically before 'valid').
    assert counts == {"train": 698, "valid": 149, "test": 150}
    assert counts == split_counts(997, DEFAULT_FRACTIONS)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 10, 101])
def test_counts_always_sum_to_n(n):
    counts = split_counts(n, {"a": 0.2, "b": 0.3, "c": 0.5})
    assert sum(counts.values()) == n
    for name, f in {"a": 0.2, "b": 0.3, "c": 0.5}.items():
        assert abs(counts[name] - f * n) < 1


def test_invariant_to_row_order():
    labels = assign_splits(IDS, DEFAULT_FRACTIONS, seed=3)
    perm = np.random.default_rng(99).permutation(IDS.size)
    shuffled = assign_splits(IDS[perm], DEFAULT_FRACTIONS, seed=3)
    np.testing.assert_array_equal(shuffled, labels[perm])


def test_invariant_to_key_order():
    a = assign_splits(IDS, {"train": 0.8, "test": 0.2}, seed=1)
    b = assign_splits(IDS, {"test": 0.2, "train": 0.8}, seed=1)
    np.testing.assert_array_equal(a, b)


def test_string_ids():
    ids = np.array([f"obj{i}" for i in range(50)])
    labels = assign_splits(ids, {"a": 0.5, "b": 0.5}, seed=0)
    perm = np.random.default_rng(1).permutation(50)
    np.testing.assert_array_equal(
        assign_splits(ids[perm], {"a": 0.5, "b": 0.5}, seed=0), labels[perm]
    )


def test_different_seeds_differ():
    a = assign_splits(IDS, DEFAULT_FRACTIONS, seed=0)
    b = assign_splits(IDS, DEFAULT_FRACTIONS, seed=1)
    assert (a != b).mean() > 0.2


def test_assignment_is_not_just_id_order():
    labels = assign_splits(IDS, {"a": 0.5, "b": 0.5}, seed=0)
    # A shuffle puts both labels in both halves of the id range.
    assert set(labels[:100]) == {"a", "b"}


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        ({"train": 0.7, "test": 0.2}, "sum to 1"),
        ({"train": 0.7, "test": 0.4}, "sum to 1"),
        ({"train": 1.2, "test": -0.2}, "must be > 0"),
        ({"train": 1.0, "test": 0.0}, "must be > 0"),
        ({"train": np.nan, "test": 0.5}, "must be > 0"),
        ({"": 1.0}, "non-empty strings"),
        ({3: 1.0}, "non-empty strings"),
        ({"a": "half", "b": 0.5}, "must be a number"),
        ({}, "non-empty dict"),
        ([0.5, 0.5], "non-empty dict"),
    ],
)
def test_bad_fractions(fractions, message):
    with pytest.raises(ValidationError, match=message):
        assign_splits(IDS, fractions, seed=0)


def test_duplicate_ids_and_bad_seed():
    with pytest.raises(ValidationError, match="id 3 appears more than once"):
        assign_splits([1, 3, 2, 3], DEFAULT_FRACTIONS, seed=0)
    with pytest.raises(ValidationError, match="seed must be an integer"):
        assign_splits(IDS, DEFAULT_FRACTIONS, seed=None)
