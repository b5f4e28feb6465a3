"""A Gaussian-mixture output trained on the CRPS: the published GMM baseline of CLAP.

The estimator head outputs ``3 K`` numbers per galaxy (K components): weight logits,
log-widths and means, all in units of redshift bins (bin b spans [b, b + 1)). As in the
published code (CLAP-I, ``CLAP_network.py``, ``get_p_gmm_crps``):

- weights w = softmax(logits), widths σ = exp(s) + 1e-5, means μ unconstrained;
- the training density is the mixture evaluated at the bin centres b + ½, and the loss is
  the CRPS on the bins, Σ_b (P_b − Y_b)², with P and Y the cumulative sums of that
  density and of the one-hot spec-z bin, averaged over the batch.

For the PDFs it reports, :func:`mixture_bin_probabilities` integrates the mixture
exactly over each bin and renormalises on the grid (the published code reads the
density at the centres, which agrees once σ spans more than a bin).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from clapkit.errors import ValidationError

#: Added to every width, as published: keeps σ > 0.
MIN_WIDTH = 1e-5


def mixture_parameters(
    outputs: torch.Tensor, n_components: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weights, means and widths (bin units) from head outputs (B, 3K), each (B, K).

    Examples
    --------
    >>> w, mu, sigma = mixture_parameters(torch.zeros(2, 6), 2)
    >>> w.tolist()[0], mu.tolist()[0], [round(s, 4) for s in sigma.tolist()[0]]
    ([0.5, 0.5], [0.0, 0.0], [1.0, 1.0])
    """
    k = int(n_components)
    if outputs.ndim != 2 or outputs.shape[1] != 3 * k:
        raise ValidationError(
            f"mixture outputs must have shape (B, {3 * k}) for {k} components, "
            f"got {tuple(outputs.shape)}"
        )
    weights = F.softmax(outputs[:, :k], dim=1)
    widths = outputs[:, k : 2 * k].exp() + MIN_WIDTH
    means = outputs[:, 2 * k :]
    return weights, means, widths


def mixture_density_at_centres(
    outputs: torch.Tensor, n_bins: int, n_components: int
) -> torch.Tensor:
    """The mixture density at the bin centres b + ½, (B, n_bins): the published training
    density (not renormalised)."""
    weights, means, widths = mixture_parameters(outputs, n_components)
    centres = torch.arange(n_bins, dtype=outputs.dtype, device=outputs.device) + 0.5
    u = (centres[None, None, :] - means[:, :, None]) / widths[:, :, None]  # (B, K, n_bins)
    density = torch.exp(-0.5 * u**2) / (math.sqrt(2 * math.pi) * widths[:, :, None])
    return (weights[:, :, None] * density).sum(1)  # (B, n_bins)


def mixture_crps_loss(
    outputs: torch.Tensor, z_bin: torch.Tensor, n_bins: int, n_components: int
) -> torch.Tensor:
    """The published CRPS loss: batch mean of Σ_b (cumsum(p) − cumsum(one-hot))².

    Parameters
    ----------
    outputs : torch.Tensor, shape (B, 3K)
        Head outputs (see :func:`mixture_parameters`).
    z_bin : torch.Tensor of int, shape (B,)
        Each galaxy's true bin.
    n_bins : int
        Bins of the grid.
    n_components : int
        K, the mixture's components.

    Returns
    -------
    torch.Tensor
        The scalar loss.

    Examples
    --------
    >>> z = torch.tensor([2])  # the true bin, of 5
    >>> right, wrong = torch.tensor([[0.0, 0.0, 2.5]]), torch.tensor([[0.0, 0.0, 0.5]])
    >>> [round(float(mixture_crps_loss(out, z, 5, 1)), 3) for out in (right, wrong)]
    [0.188, 0.844]
    """
    density = mixture_density_at_centres(outputs, n_bins, n_components)
    target = F.one_hot(z_bin.long(), n_bins).to(density.dtype)
    return (density.cumsum(1) - target.cumsum(1)).pow(2).sum(1).mean()


@torch.no_grad()
def mixture_bin_probabilities(outputs: torch.Tensor, n_bins: int, n_components: int) -> np.ndarray:
    """The mixture's probability in each bin (exact integrals), renormalised on the grid,
    as float64 (B, n_bins).

    Examples
    --------
    >>> p = mixture_bin_probabilities(torch.tensor([[0.0, math.log(0.5), 2.5]]), 5, 1)
    >>> p.round(3).tolist()
    [[0.001, 0.157, 0.683, 0.157, 0.001]]
    """
    weights, means, widths = (t.double() for t in mixture_parameters(outputs, n_components))
    edges = torch.arange(n_bins + 1, dtype=torch.float64, device=outputs.device)
    u = (edges[None, None, :] - means[:, :, None]) / widths[:, :, None]  # (B, K, n_bins + 1)
    cdf = 0.5 * (1 + torch.erf(u / math.sqrt(2)))
    per_bin = (weights[:, :, None] * cdf.diff(dim=2)).sum(1)  # (B, n_bins)
    totals = per_bin.sum(1, keepdim=True)
    # A mixture entirely off the grid (never seen once trained) falls back to uniform.
    per_bin = torch.where(totals > 0, per_bin / totals.clamp_min(1e-300), 1.0 / n_bins)
    return per_bin.cpu().numpy()


def initialise_mixture_head(
    last_layer: torch.nn.Linear, train_bins: np.ndarray, n_bins: int, n_components: int
) -> None:
    """Start the means at the quantiles of the training bins and the widths at a few bins.

    The published code starts every mean near bin 0 and trains 150,000 steps; from
    there the means need thousands of steps to reach the data. Starting them spread over
    the training redshifts (equal weights, σ ≈ n_bins / 4K) lets a CPU-sized training
    converge; the model and the loss are unchanged.

    Parameters
    ----------
    last_layer : torch.nn.Linear
        The head's output layer (3K outputs), changed in place.
    train_bins : array of int
        The training galaxies' redshift bins.
    n_bins : int
        Bins of the grid.
    n_components : int
        K, the mixture's components.
    """
    k = int(n_components)
    if last_layer.out_features != 3 * k:
        raise ValidationError(
            f"the head must output {3 * k} numbers, not {last_layer.out_features}"
        )
    quantiles = (np.arange(k) + 0.5) / k
    means = np.quantile(np.asarray(train_bins, dtype=np.float64) + 0.5, quantiles)
    with torch.no_grad():
        last_layer.weight[2 * k :].mul_(0.1)
        last_layer.bias[:k] = 0.0
        last_layer.bias[k : 2 * k] = math.log(max(1.0, n_bins / (4 * k)))
        last_layer.bias[2 * k :] = torch.as_tensor(means, dtype=last_layer.bias.dtype)
