"""How novel a galaxy is to the training set, in CLAP's latent space: a per-galaxy flag.

A KNN PDF is only as good as its neighbours. A target far from every training galaxy in
v_A (a kind of galaxy, a redshift or a noise level the spectroscopic sample lacks) gets
neighbours that are not like it, and its PDF, however well calibrated on average, says
little about it. The score compares the target's mean distance to its nearest training
galaxies with the same distance of the training galaxies to their own nearest others:

    novelty = 100 × fraction of training galaxies whose distance is smaller

(ties count one half). About 50 is typical of the training set; above 99 the target is
farther from the training set than 99% of the training galaxies are from each other, and
its PDF deserves suspicion. The distances come from
:meth:`clapkit.photoz.AdaptiveKNN.neighbour_distance` (and ``train_distance_``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clapkit.errors import ValidationError

#: Above this percentile a galaxy is flagged: the training set does not cover it.
NOVEL_ABOVE = 99.0


def novelty_percentile(
    target_distance: ArrayLike, train_distance: ArrayLike
) -> NDArray[np.float64]:
    """Percentile of each target's neighbour distance among the training galaxies' own.

    Parameters
    ----------
    target_distance : array_like, shape (N,)
        Mean latent distance of each target to its nearest training galaxies.
    train_distance : array_like, shape (M,)
        The same for each training galaxy, to its nearest *other* training galaxies.

    Returns
    -------
    ndarray, shape (N,)
        In [0, 100]: 100 × (number of training distances below + half the number equal)
        / M.

    Examples
    --------
    >>> novelty_percentile([0.5, 2.0, 10.0], [1.0, 2.0, 3.0, 4.0]).tolist()
    [0.0, 37.5, 100.0]
    """
    target = np.asarray(target_distance, dtype=np.float64)
    train = np.asarray(train_distance, dtype=np.float64)
    if target.ndim != 1 or train.ndim != 1:
        raise ValidationError(f"distances must be 1-D, got shapes {target.shape} and {train.shape}")
    if train.size == 0:
        raise ValidationError("the training distances are empty")
    for name, values in (("target_distance", target), ("train_distance", train)):
        bad = ~np.isfinite(values) | (values < 0)
        if np.any(bad):
            raise ValidationError(
                f"{name} must be finite and >= 0; index {int(np.flatnonzero(bad)[0])} is not"
            )
    train = np.sort(train)
    below = np.searchsorted(train, target, side="left")
    not_above = np.searchsorted(train, target, side="right")
    return 100.0 * (below + 0.5 * (not_above - below)) / train.size
