"""Losses of CLAP: the four-term SCL loss and the refit loss.

The SCL loss (:func:`scl_loss`) trains encoder, estimator and decoder together on three
views of each galaxy (the original, its reconstruction and a rotated or flipped copy):

1. cross-entropy of the redshift bin, for every view;
2. mean-squared reconstruction error, weighted by ``c`` (100 for SDSS);
3. the contrastive term −log[P / (P + N)] on v_A (:func:`contrastive_term`);
4. the symmetric cross-entropy between the estimator outputs of the views
   (:func:`symmetric_cross_entropy`).

The refit loss (:func:`cdf_w1_times_ce`) trains a fresh estimator on KNN PDFs as soft
labels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from clapkit.errors import ValidationError
from clapkit.nets.scl import SCLNet

#: Squared distances below this are clamped before the square root, which keeps the
#: gradient finite when two views coincide.
_EPS = 1e-12


def _distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Euclidean distance of two (..., D) tensors, with a finite gradient at 0."""
    return (a - b).pow(2).sum(-1).clamp_min(_EPS).sqrt()


def contrastive_term(views: Sequence[torch.Tensor]) -> torch.Tensor:
    """The paper's contrastive term: mean over galaxies of −log[P_i / (P_i + N_i)].

    For galaxy i, P_i = exp(−d⁺_i) with d⁺_i the mean Euclidean distance between its own
    views (all pairs of views), and N_i = exp(−d⁻_i) with d⁻_i the mean distance from its
    views to every view of every other galaxy. Then −log[P/(P + N)] = softplus(d⁺ − d⁻),
    which is how it is computed (no overflow for distant galaxies).

    Parameters
    ----------
    views : sequence of torch.Tensor, each (B, D)
        V >= 2 views of the same B >= 2 galaxies, row i always the same galaxy.

    Returns
    -------
    torch.Tensor
        A scalar.

    Examples
    --------
    >>> a = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    >>> round(float(contrastive_term([a, a])), 4)  # softplus(0 - 5)
    0.0067
    """
    if len(views) < 2:
        raise ValidationError(f"contrastive_term needs at least 2 views, got {len(views)}")
    shape = tuple(views[0].shape)
    if len(shape) != 2 or shape[0] < 2:
        raise ValidationError(f"each view must have shape (B, D) with B >= 2, got {shape}")
    for k, view in enumerate(views):
        if tuple(view.shape) != shape:
            raise ValidationError(f"view {k} has shape {tuple(view.shape)}, expected {shape}")
    v = torch.stack(list(views))  # (V, B, D)
    n_views, batch, _ = v.shape

    # Positives: every pair of views of the same galaxy.
    first, second = torch.triu_indices(n_views, n_views, offset=1, device=v.device)
    d_pos = _distance(v[first], v[second]).mean(0)  # (B,)

    # Negatives: every view of galaxy i against every view of galaxy j != i.
    flat = v.reshape(n_views * batch, -1)  # (V B, D)
    sq = flat.pow(2).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * flat @ flat.T  # (V B, V B)
    d = d2.clamp_min(_EPS).sqrt().view(n_views, batch, n_views, batch)
    d = d.sum((0, 2))  # (B, B), summed over both views
    off_diagonal = ~torch.eye(batch, dtype=torch.bool, device=v.device)
    d_neg = (d * off_diagonal).sum(1) / (n_views * n_views * (batch - 1))  # (B,)

    return F.softplus(d_pos - d_neg).mean()


def symmetric_cross_entropy(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ½[H(p_a, p_b) + H(p_b, p_a)], with H(p, q) = −Σ p log q.

    Each view is the target of the other: the target side ``p`` of every H(p, q) is
    detached, so the gradient pulls each output towards the other (for a fixed target
    H is minimal at q = p) and never rewards sharpening both. Differentiating through the
    targets as well adds −∇H(p) to the loss: measured on a catalog of 240 galaxies, that
    entropy pressure drove the estimator to confident wrong bins (validation
    cross-entropy above that of a uniform PDF), which the detached form avoids.

    Examples
    --------
    >>> logits = torch.zeros(1, 4)
    >>> round(float(symmetric_cross_entropy(logits, logits)), 4)  # log 4
    1.3863
    """
    if logits_a.ndim != 2 or logits_a.shape != logits_b.shape:
        raise ValidationError(
            "logits must both have shape (B, n_bins), got "
            f"{tuple(logits_a.shape)} and {tuple(logits_b.shape)}"
        )
    log_a = F.log_softmax(logits_a, dim=1)  # (B, n_bins)
    log_b = F.log_softmax(logits_b, dim=1)
    h_ab = -(log_a.exp().detach() * log_b).sum(1)  # (B,)
    h_ba = -(log_b.exp().detach() * log_a).sum(1)
    return (0.5 * (h_ab + h_ba)).mean()


def cross_entropy(logits: torch.Tensor, z_bin: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the true bins ``z_bin`` (B,) under ``logits`` (B, n_bins).

    Examples
    --------
    >>> round(float(cross_entropy(torch.zeros(2, 4), torch.tensor([0, 3]))), 4)
    1.3863
    """
    return F.cross_entropy(logits, z_bin)


@dataclass
class SCLLossWeights:
    """Weights of the SCL loss terms; the cross-entropy has weight 1.

    ``reconstruction`` is the paper's c (100 for SDSS); it is ignored for a network
    without a decoder.
    """

    reconstruction: float = 100.0
    contrastive: float = 1.0
    consistency: float = 1.0


def scl_loss(
    net: SCLNet,
    x: torch.Tensor,
    extra: torch.Tensor | None,
    z_bin: torch.Tensor,
    augment: Callable[[torch.Tensor], torch.Tensor],
    weights: SCLLossWeights = SCLLossWeights(),  # noqa: B008 (a dataclass, never mutated)
) -> tuple[torch.Tensor, dict[str, float]]:
    """The four-term SCL loss of CLAP on one batch.

    Views: the original ``x``, its augmented copy ``augment(x)`` and, when the network has
    a decoder, its reconstruction x̂ = decode(encode(x)), encoded again. Terms:

    - ``cross_entropy``: cross-entropy of ``z_bin``, averaged over the views;
    - ``reconstruction``: MSE(x̂, x) × ``weights.reconstruction`` (0 without a decoder);
    - ``contrastive``: :func:`contrastive_term` of the views' v_A × ``weights.contrastive``;
    - ``consistency``: :func:`symmetric_cross_entropy` between the original's estimator
      output and each other view's, averaged, × ``weights.consistency``.

    Parameters
    ----------
    net : SCLNet
        The network being trained.
    x : torch.Tensor
        Inputs, (B, C, S, S) images or (B, F) features, already scaled.
    extra : torch.Tensor or None
        (B, n_extra) scalars such as E(B−V); the same for every view.
    z_bin : torch.Tensor, shape (B,), integer
        Index of each galaxy's spectroscopic-redshift bin.
    augment : callable
        Makes the augmented view, e.g. ``lambda x: random_dihedral(x, generator)``.
    weights : SCLLossWeights
        Term weights.

    Returns
    -------
    total : torch.Tensor
        The scalar to back-propagate.
    parts : dict of str to float
        The weighted terms and ``"total"``, for logging.

    Examples
    --------
    >>> from clapkit.nets.scl import NetConfig
    >>> cfg = NetConfig(kind="mlp", n_bins=4, n_features=3, n_extra=0, hidden=(8,),
    ...                 estimator_hidden=8)
    >>> total, parts = scl_loss(SCLNet(cfg), torch.zeros(5, 3), None,
    ...                         torch.zeros(5, dtype=torch.long), lambda x: x + 0.1)
    >>> sorted(parts)
    ['consistency', 'contrastive', 'cross_entropy', 'reconstruction', 'total']
    """
    if z_bin.ndim != 1 or z_bin.shape[0] != x.shape[0]:
        raise ValidationError(
            f"z_bin must have shape ({x.shape[0]},), one bin per galaxy, got {tuple(z_bin.shape)}"
        )
    if z_bin.dtype.is_floating_point or z_bin.dtype == torch.bool:
        raise ValidationError(f"z_bin must hold integer bin indices, got dtype {z_bin.dtype}")
    z_bin = z_bin.long()

    v_a, v_b = net.encode(x, extra)  # (B, latent_dim), (B, rest_dim)
    logits = net.estimate(v_a)  # (B, n_bins)
    x_aug = augment(x)
    v_a_aug, _ = net.encode(x_aug, extra)
    logits_aug = net.estimate(v_a_aug)

    latents = [v_a, v_a_aug]
    other_logits = [logits_aug]
    reconstruction = x.new_zeros(())
    if net.decoder is not None:
        x_hat = net.decode(v_a, v_b)  # shaped like x
        reconstruction = F.mse_loss(x_hat, x) * weights.reconstruction
        v_a_rec, _ = net.encode(x_hat, extra)
        latents.insert(1, v_a_rec)
        other_logits.insert(0, net.estimate(v_a_rec))

    ce = torch.stack([cross_entropy(lg, z_bin) for lg in (logits, *other_logits)]).mean()
    contrastive = contrastive_term(latents) * weights.contrastive
    consistency = torch.stack([symmetric_cross_entropy(logits, lg) for lg in other_logits]).mean()
    consistency = consistency * weights.consistency
    total = ce + reconstruction + contrastive + consistency
    parts = {
        "cross_entropy": ce,
        "reconstruction": reconstruction,
        "contrastive": contrastive,
        "consistency": consistency,
        "total": total,
    }
    return total, {name: float(value.detach()) for name, value in parts.items()}


def cdf_w1_times_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Refit loss: W1 between predicted and target CDFs, times the soft cross-entropy.

    Per galaxy, W1 = mean over bins of |cumsum(p) − cumsum(t)| with p = softmax(logits),
    and CE = −Σ t log p; the loss is the batch mean of their product. On equal bins the
    1-Wasserstein distance is Δz · Σ|ΔCDF|; the mean over bins drops the bin width and
    the range (a constant factor), so the loss does not depend on the redshift units.

    Parameters
    ----------
    logits : torch.Tensor, shape (B, n_bins)
        Estimator outputs.
    target : torch.Tensor, shape (B, n_bins)
        Target probabilities (KNN PDFs), rows summing to 1.

    Examples
    --------
    >>> logits = torch.tensor([[0.0, 1.0, 2.0]])
    >>> round(float(cdf_w1_times_ce(logits, torch.softmax(logits, 1))), 6)
    0.0
    """
    if logits.ndim != 2 or logits.shape != target.shape:
        raise ValidationError(
            "logits and target must both have shape (B, n_bins), got "
            f"{tuple(logits.shape)} and {tuple(target.shape)}"
        )
    log_p = F.log_softmax(logits, dim=1)  # (B, n_bins)
    cdf_p = log_p.exp().cumsum(1)
    cdf_t = target.cumsum(1)
    w1 = (cdf_p - cdf_t).abs().mean(1)  # (B,)
    ce = -(target * log_p).sum(1)  # (B,)
    return (w1 * ce).mean()
