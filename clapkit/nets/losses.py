"""Losses of CLAP: the two variants of the SCL loss and the refit loss.

Both SCL losses train encoder, estimator and decoder together on views of each galaxy
(the original, its reconstruction and a rotated or flipped copy) with four terms:
cross-entropy of the redshift bin, mean-squared reconstruction error weighted by ``c``
(100 for SDSS images), a contrastive term on v_A and a consistency term between the
estimator outputs of the views.

- :func:`scl_loss_published` is the loss of the published code (CLAP-I,
  ``CLAP_network.py``): cross-entropy on the original and on its reconstruction; three
  reconstruction errors (the reconstruction, the second cycle decode(encode(x̂)), and
  the augmented view's own reconstruction); the consistency term as two symmetric
  cross-entropies (original vs reconstruction, original vs augmented view); and the
  contrastive term softplus(d⁺ − d⁻) of *batch-mean* RMS distances, d⁺ between the
  views of each galaxy and d⁻ between each galaxy and one other random galaxy.
- :func:`scl_loss` is this project's variant: cross-entropy averaged over three views,
  one reconstruction error, the consistency term averaged, and a per-galaxy contrastive
  term against every other galaxy of the batch (:func:`contrastive_term`).

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

#: The SCL loss variants: the published code's, and this project's.
SCL_LOSSES = ("published", "project")

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
    """This project's variant of the four-term SCL loss, on one batch.

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
    z_bin = _check_bins(x, z_bin)

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


def random_partners(batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random other row for every row of a batch (a random cyclic derangement).

    The published loss pairs each galaxy with one random *different* galaxy as its
    negative; taking both from one batch, every galaxy is paired once as the first and
    once as the second member.

    Examples
    --------
    >>> partners = random_partners(6, torch.Generator().manual_seed(0))
    >>> bool((partners != torch.arange(6)).all()), sorted(partners.tolist())
    (True, [0, 1, 2, 3, 4, 5])
    """
    if batch < 2:
        raise ValidationError(f"a contrastive batch needs at least 2 galaxies, got {batch}")
    order = torch.randperm(batch, generator=generator)
    partners = torch.empty(batch, dtype=torch.long)
    partners[order] = order.roll(-1)
    return partners


def _rms_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise root-mean-square difference of two (B, D) tensors (finite gradient at 0)."""
    return (a - b).pow(2).mean(-1).clamp_min(_EPS).sqrt()


def _cross_entropy_both_ways(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """H(p_a, q_b) + H(p_b, q_a), batch means, each target detached: the published
    consistency term between two views (twice :func:`symmetric_cross_entropy`)."""
    return 2.0 * symmetric_cross_entropy(logits_a, logits_b)


def scl_loss_published(
    net: SCLNet,
    x: torch.Tensor,
    extra: torch.Tensor | None,
    z_bin: torch.Tensor,
    augment: Callable[[torch.Tensor], torch.Tensor],
    weights: SCLLossWeights = SCLLossWeights(),  # noqa: B008 (a dataclass, never mutated)
    generator: torch.Generator | None = None,
    partners: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The SCL loss of the published code on one batch.

    Views of each galaxy: the input x, its reconstruction x̂ = decode(encode(x)) and an
    augmented copy x′ = ``augment(x)``. With v = encode(·) and ℓ = estimate(v_A):

    - ``cross_entropy``: CE(ℓ(x)) + CE(ℓ(x̂)), batch means;
    - ``reconstruction``: c × [MSE(x̂, x) + MSE(decode(encode(x̂)), x) + MSE(x̂′, x′)];
    - ``consistency``: the cross-entropies both ways, targets detached, between ℓ(x) and
      ℓ(x̂) and between ℓ(x) and ℓ(x′), × ``weights.consistency``;
    - ``contrastive``: softplus(d⁺ − d⁻) × ``weights.contrastive``, with d⁺ the batch
      mean of the RMS distances of v_A(x) to v_A(x̂) and to v_A(x′), and d⁻ the batch
      mean RMS distance of v_A(x) to the v_A of a random other galaxy of the batch
      (:func:`random_partners`).

    The published code draws the negative galaxies as a second, independent half-batch
    and gives them the same terms; one batch paired with itself by a derangement gives
    every term the same expectation (and the same value when ``partners`` swaps pairs).
    Its training images are also randomly rotated or flipped before they enter (done by
    the caller). ``partners`` fixes the negative of each row (default: drawn with
    ``generator``).

    Parameters
    ----------
    net : SCLNet
        The network (encoder, decoder and estimator).
    x : torch.Tensor, shape (B, ...)
        The batch's inputs (images or features).
    extra : torch.Tensor or None, shape (B, E)
        Extra inputs that enter beside the latent vector.
    z_bin : torch.Tensor of int, shape (B,)
        Each galaxy's true redshift bin.
    augment : callable
        Makes the augmented copy x′ of a batch.
    weights : SCLLossWeights
        Weights of the terms.
    generator : torch.Generator, optional
        Draws the negative partners.
    partners : torch.Tensor of int, shape (B,), optional
        Each row's negative partner.

    Returns
    -------
    (torch.Tensor, dict)
        The total loss (differentiable) and every term as a float.

    Examples
    --------
    >>> from clapkit.nets.scl import NetConfig
    >>> cfg = NetConfig(kind="mlp", n_bins=4, n_features=3, n_extra=0, hidden=(8,),
    ...                 estimator_hidden=8)
    >>> total, parts = scl_loss_published(SCLNet(cfg), torch.zeros(5, 3), None,
    ...                                   torch.zeros(5, dtype=torch.long), lambda x: x + 0.1)
    >>> sorted(parts)
    ['consistency', 'contrastive', 'cross_entropy', 'reconstruction', 'total']
    """
    z_bin = _check_bins(x, z_bin)
    if net.decoder is None:
        raise ValidationError("the published SCL loss needs a network with a decoder")
    if partners is None:
        partners = random_partners(x.shape[0], generator)
    partners = partners.to(x.device)

    v_a, v_b = net.encode(x, extra)  # (B, latent_dim), (B, rest_dim)
    logits = net.estimate(v_a)  # (B, n_bins)
    x_hat = net.decode(v_a, v_b)  # shaped like x
    v_a_rec, v_b_rec = net.encode(x_hat, extra)
    logits_rec = net.estimate(v_a_rec)
    x_hat_2 = net.decode(v_a_rec, v_b_rec)  # the second cycle
    x_aug = augment(x)
    v_a_aug, v_b_aug = net.encode(x_aug, extra)
    logits_aug = net.estimate(v_a_aug)
    x_aug_hat = net.decode(v_a_aug, v_b_aug)

    ce = cross_entropy(logits, z_bin) + cross_entropy(logits_rec, z_bin)
    reconstruction = (
        F.mse_loss(x_hat, x) + F.mse_loss(x_hat_2, x) + F.mse_loss(x_aug_hat, x_aug)
    ) * weights.reconstruction
    consistency = _cross_entropy_both_ways(logits, logits_rec) + _cross_entropy_both_ways(
        logits, logits_aug
    )
    consistency = consistency * weights.consistency
    d_pos = 0.5 * (_rms_distance(v_a, v_a_rec) + _rms_distance(v_a, v_a_aug)).mean()
    d_neg = _rms_distance(v_a, v_a[partners]).mean()
    contrastive = F.softplus(d_pos - d_neg) * weights.contrastive
    total = ce + reconstruction + contrastive + consistency
    parts = {
        "cross_entropy": ce,
        "reconstruction": reconstruction,
        "contrastive": contrastive,
        "consistency": consistency,
        "total": total,
    }
    return total, {name: float(value.detach()) for name, value in parts.items()}


def _check_bins(x: torch.Tensor, z_bin: torch.Tensor) -> torch.Tensor:
    if z_bin.ndim != 1 or z_bin.shape[0] != x.shape[0]:
        raise ValidationError(
            f"z_bin must have shape ({x.shape[0]},), one bin per galaxy, got {tuple(z_bin.shape)}"
        )
    if z_bin.dtype.is_floating_point or z_bin.dtype == torch.bool:
        raise ValidationError(f"z_bin must hold integer bin indices, got dtype {z_bin.dtype}")
    return z_bin.long()


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
