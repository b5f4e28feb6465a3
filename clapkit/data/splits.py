"""Reproducible train/validation/test splits keyed on galaxy ids.

A split must not change when a catalog is re-sorted or re-read, so the assignment
depends only on the set of ids, the fractions and the seed: ids are sorted, shuffled with
``np.random.default_rng(seed)``, cut into blocks of exact size and mapped back to rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from clapkit.checks import check_int
from clapkit.errors import ValidationError

__all__ = ["DEFAULT_FRACTIONS", "assign_splits", "split_counts"]

DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.7, "valid": 0.15, "test": 0.15}

# Fractions are user input such as 0.7 + 0.15 + 0.15, which is not exactly 1 in floats.
_SUM_TOLERANCE = 1e-6


def _check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(fractions, Mapping) or not fractions:
        raise ValidationError(
            f"fractions must be a non-empty dict of split name -> fraction, got {fractions!r}"
        )
    checked = {}
    for name, value in fractions.items():
        if not isinstance(name, str) or not name:
            raise ValidationError(f"split names must be non-empty strings, got {name!r}")
        try:
            value = float(value)
        except (TypeError, ValueError) as err:
            raise ValidationError(
                f"fraction of split {name!r} must be a number, got {value!r}"
            ) from err
        if not np.isfinite(value) or value <= 0:
            raise ValidationError(f"fraction of split {name!r} must be > 0, got {value!r}")
        checked[name] = value
    total = sum(checked.values())
    if abs(total - 1.0) > _SUM_TOLERANCE:
        raise ValidationError(f"fractions must sum to 1, got {total:.6g} from {checked}")
    return checked


def split_counts(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Exact number of galaxies per split, by largest-remainder rounding.

    Each split gets ``floor(f * n)``; the galaxies left over go one each to the splits
    with the largest remainders (ties to the alphabetically first name), so the counts
    always sum to ``n``.

    Parameters
    ----------
    n : int
        Number of galaxies.
    fractions : dict of str to float
        Positive fractions summing to 1.

    Examples
    --------
    >>> split_counts(10, {"train": 0.7, "valid": 0.15, "test": 0.15})
    {'test': 2, 'train': 7, 'valid': 1}
    """
    fractions = _check_fractions(fractions)
    names = sorted(fractions)
    quota = np.array([fractions[name] * n for name in names])
    counts = np.floor(quota).astype(np.int64)
    left = int(n - counts.sum())
    # Stable sort on the negated remainder: equal remainders keep alphabetical order.
    order = np.argsort(-(quota - counts), kind="stable")
    counts[order[:left]] += 1
    return {name: int(c) for name, c in zip(names, counts, strict=True)}


def assign_splits(
    ids: Sequence | np.ndarray, fractions: Mapping[str, float], seed: int
) -> np.ndarray:
    """Assign each id to a split, reproducibly and independently of row order.

    Parameters
    ----------
    ids : array-like
        Unique galaxy ids (integers or strings), one per row.
    fractions : dict of str to float
        Split name -> fraction; each > 0, summing to 1. Only the content matters, not the
        order of the keys.
    seed : int
        Seed of ``np.random.default_rng``.

    Returns
    -------
    numpy.ndarray of str
        The split name of each row. The counts are exact (see :func:`split_counts`), and
        the same (ids, fractions, seed) give the same split per id whatever the row order.

    Examples
    --------
    >>> labels = assign_splits([10, 11, 12, 13], {"train": 0.5, "test": 0.5}, seed=0)
    >>> sorted(labels.tolist())
    ['test', 'test', 'train', 'train']
    >>> shuffled = assign_splits([13, 12, 11, 10], {"train": 0.5, "test": 0.5}, seed=0)
    >>> bool((shuffled[::-1] == labels).all())
    True
    """
    counts = split_counts(0, fractions)  # validates before any work
    check_int(seed, "seed", minimum=None)
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValidationError(f"ids must be 1-D, got shape {ids.shape}")
    n = ids.size
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    repeated = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
    if repeated.size:
        raise ValidationError(
            f"ids must be unique to be split reproducibly; id {sorted_ids[repeated[0]].item()!r} "
            "appears more than once"
        )
    counts = split_counts(n, fractions)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)  # k-th shuffled slot holds the perm[k]-th smallest id
    names = list(counts)
    width = max(len(name) for name in names)
    shuffled_labels = np.repeat(np.array(names, dtype=f"<U{width}"), list(counts.values()))
    labels = np.empty(n, dtype=f"<U{width}")
    labels[order[perm]] = shuffled_labels
    return labels
