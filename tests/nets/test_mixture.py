"""The published Gaussian-mixture output: its CRPS loss and exact bin probabilities."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from clapkit.errors import ValidationError
from clapkit.nets.mixture import (
    MIN_WIDTH,
    initialise_mixture_head,
    mixture_bin_probabilities,
    mixture_crps_loss,
    mixture_density_at_centres,
)


def _outputs(weights, widths, means):
    """Head outputs for a mixture: weight logits, log widths, means."""
    return torch.tensor([[*np.log(weights), *np.log(widths), *means]], dtype=torch.float64)


def test_bin_probabilities_are_the_mixture_integrals():
    outputs = _outputs([0.3, 0.7], [2.0, 4.0], [10.0, 25.0])
    p = mixture_bin_probabilities(outputs, 40, 2)[0]
    edges = np.arange(41)
    s1, s2 = 2.0 + MIN_WIDTH, 4.0 + MIN_WIDTH  # σ = exp(s) + 1e-5, as published
    expected = 0.3 * np.diff(stats.norm.cdf(edges, 10, s1)) + 0.7 * np.diff(
        stats.norm.cdf(edges, 25, s2)
    )
    np.testing.assert_allclose(p, expected / expected.sum(), rtol=1e-8, atol=1e-12)
    # The published training density is the mixture at the bin centres.
    density = mixture_density_at_centres(outputs, 40, 2)[0].numpy()
    centres = edges[:-1] + 0.5
    expected = 0.3 * stats.norm.pdf(centres, 10, s1) + 0.7 * stats.norm.pdf(centres, 25, s2)
    np.testing.assert_allclose(density, expected, rtol=1e-5, atol=1e-8)


def test_the_crps_loss_is_smallest_for_a_narrow_mixture_on_the_truth():
    z_bin = torch.tensor([20])

    def loss(width, mean):
        return float(mixture_crps_loss(_outputs([1.0], [width], [mean]), z_bin, 40, 1))

    assert loss(1.0, 20.5) < loss(1.0, 23.5) < loss(1.0, 30.5)
    assert loss(1.0, 20.5) < loss(6.0, 20.5)
    # Gradients reach every output.
    outputs = _outputs([0.5, 0.5], [2.0, 3.0], [15.0, 22.0]).requires_grad_(True)
    mixture_crps_loss(outputs, z_bin, 40, 2).backward()
    assert torch.all(outputs.grad != 0)


def test_the_head_starts_spread_over_the_training_bins():
    layer = torch.nn.Linear(8, 15)
    train_bins = np.concatenate([np.full(50, 10), np.full(50, 30)])
    initialise_mixture_head(layer, train_bins, 40, 5)
    means = layer.bias[10:].detach().numpy()
    np.testing.assert_allclose(means, np.quantile(train_bins + 0.5, (np.arange(5) + 0.5) / 5))
    assert layer.bias[5:10].detach().numpy() == pytest.approx([math.log(2.0)] * 5)
    with pytest.raises(ValidationError, match="must output 15"):
        initialise_mixture_head(torch.nn.Linear(8, 12), train_bins, 40, 5)
    with pytest.raises(ValidationError, match=r"shape \(B, 6\)"):
        mixture_bin_probabilities(torch.zeros(2, 5), 40, 2)
