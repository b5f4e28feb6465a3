"""The novelty percentile: a galaxy's neighbour distance among the training galaxies'."""

import numpy as np
import pytest

from clapkit.errors import ValidationError
from clapkit.photoz.novelty import novelty_percentile


def test_targets_like_the_training_set_spread_evenly_and_outsiders_sit_at_100():
    rng = np.random.default_rng(0)
    train = rng.gamma(4.0, 0.1, 5000)
    alike = rng.gamma(4.0, 0.1, 5000)
    percentile = novelty_percentile(alike, train)
    # Drawn from the same distribution: the percentiles are uniform on [0, 100].
    assert np.histogram(percentile, bins=10, range=(0, 100))[0].min() > 400
    assert novelty_percentile([train.max() * 2], train)[0] == 100.0
    assert novelty_percentile([0.0], train)[0] == 0.0
    # Monotone in the distance.
    grid = np.linspace(0, 2, 50)
    assert np.all(np.diff(novelty_percentile(grid, train)) >= 0)


def test_bad_distances_are_refused_by_index():
    with pytest.raises(ValidationError, match=r"target_distance .* index 1"):
        novelty_percentile([0.1, np.nan], [0.1, 0.2])
    with pytest.raises(ValidationError, match=r"train_distance .* index 0"):
        novelty_percentile([0.1], [-1.0, 0.2])
    with pytest.raises(ValidationError, match="empty"):
        novelty_percentile([0.1], [])
