"""Per-band attributions of the image stellar-mass models, and the summaries asked of them.

:func:`attribute` runs captum's integrated gradients, saliency or SmoothGrad on any
image model called as ``model(images, extra)`` (or ``model(images)``), such as
:class:`~clapkit.nets.scl.SCLNet`, and returns one map per band, not an RGB composite:
which bands and which pixels the estimate of the target mass bin leans on. The rest
summarises and checks those maps:

- :func:`radial_profiles` and :func:`centre_fraction`: how much of the attribution sits
  at the centre of the galaxy and how much in its outskirts;
- :func:`mean_by_group`: averages per galaxy type (see
  :func:`~clapkit.interpret.galaxy_types.galaxy_types`);
- :func:`randomisation_check`: the model-parameter randomisation test of Adebayo et al.
  (2018, "Sanity Checks for Saliency Maps", NeurIPS): maps that barely change when the
  weights are replaced by random ones explain the input, not the model.

Maps are of the target bin's logit, so integrated gradients over all bands and pixels
sum to ``logit(x) - logit(baseline)`` (completeness).
"""

from __future__ import annotations

import contextlib
import copy
import numbers
from collections.abc import Hashable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from numpy.typing import ArrayLike, NDArray
from scipy.stats import rankdata
from tqdm.auto import tqdm

from clapkit.checks import check_int, check_number
from clapkit.errors import ClapkitError, ValidationError
from clapkit.interpret.attribution_names import METHODS, SMOOTHGRAD_NOISE, SMOOTHGRAD_SAMPLES

__all__ = [
    "METHODS",
    "RANDOMISATION_THRESHOLD",
    "attribute",
    "centre_fraction",
    "mean_by_group",
    "radial_profiles",
    "randomisation_check",
    "randomised_copy",
    "rank_correlation",
]

#: Median |Spearman ρ| between original and randomised maps below which the check passes.
RANDOMISATION_THRESHOLD = 0.5
_CHECK_BLOCK = 1024


# -----------------------------------------------------------------------------
# Input checks


def _check_maps(maps: ArrayLike, name: str) -> NDArray:
    """A finite real (N, bands, H, W) array with at least one galaxy."""
    arr = np.asarray(maps)
    if arr.dtype.kind not in "biuf":
        raise ValidationError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 4 or 0 in arr.shape:
        raise ValidationError(
            f"{name} must have shape (N, bands, H, W) with no empty axis, got {arr.shape}"
        )
    # In blocks of galaxies: a whole survey's stack can be larger than a second copy fits.
    for start in range(0, arr.shape[0], _CHECK_BLOCK):
        block = arr[start : start + _CHECK_BLOCK]
        bad = start + np.flatnonzero(~np.isfinite(block).all(axis=(1, 2, 3)))
        if bad.size:
            raise ValidationError(f"{name} is not finite for galaxies {bad[:5].tolist()}")
    return arr


def _check_target(target: ArrayLike, n: int) -> NDArray[np.int64]:
    arr = np.asarray(target)
    if arr.dtype.kind not in "iu":
        raise ValidationError(f"target must hold integer bin indices, got dtype {arr.dtype}")
    if arr.ndim == 0:
        arr = np.full(n, arr)
    if arr.shape != (n,):
        raise ValidationError(f"target must have shape ({n},), one bin per image, got {arr.shape}")
    if (arr < 0).any():
        raise ValidationError(f"target bins must be >= 0, got {arr.min()}")
    return arr.astype(np.int64)


def _check_extra(extra: ArrayLike | None, n: int) -> NDArray[np.float32] | None:
    if extra is None:
        return None
    arr = np.asarray(extra)
    if arr.dtype.kind not in "biuf":
        raise ValidationError(f"extra must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]  # one scalar per galaxy, as E(B−V) is usually stored
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValidationError(f"extra must have shape ({n}, n_extra), got {np.shape(extra)}")
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if bad.size:
        raise ValidationError(f"extra is not finite for galaxies {bad[:5].tolist()}")
    return arr.astype(np.float32)


def _check_baseline(baseline: ArrayLike | None, shape: tuple[int, ...]) -> NDArray | None:
    """The baseline as float32, (bands, H, W) or (N, bands, H, W) as given."""
    if baseline is None:
        return None
    arr = np.asarray(baseline)
    if arr.dtype.kind not in "biuf":
        raise ValidationError(f"baseline must hold real numbers, got dtype {arr.dtype}")
    if arr.shape not in (shape, shape[1:]):
        raise ValidationError(
            f"baseline must have shape {shape[1:]} (one for all images) or {shape}, got {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ValidationError("baseline must be finite")
    return arr.astype(np.float32)


def _device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Where the model's weights live and their floating dtype (CPU float32 if none)."""
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32


def _captum_attr() -> Any:
    try:
        import captum.attr
    except ImportError as err:
        raise ClapkitError(
            "attributions need captum: install the interpretability extra, "
            "`pip install -e .[interpret]`"
        ) from err
    return captum.attr


@contextlib.contextmanager
def _frozen_eval(model: nn.Module) -> Iterator[None]:
    """Evaluation mode and no weight gradients for the block, then the model as it was.

    Dropout must be off for the maps to be reproducible. Gradients are only needed with
    respect to the images: weights that require none spare the backward pass their
    gradients. Flags are saved per module and per parameter, since a model may be
    partly frozen or partly in training mode on purpose.
    """
    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, p.requires_grad) for p in model.parameters()]
    try:
        model.eval()
        for p, _ in grads:
            p.requires_grad_(False)
        yield
    finally:
        for m, training in modes:
            m.training = training
        for p, requires_grad in grads:
            p.requires_grad_(requires_grad)


def _call(model: nn.Module, x: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
    return model(x) if extra is None else model(x, extra)


#: Stream of :func:`_torch_seed` that SmoothGrad's noise is drawn from; the weights of
#: :func:`randomised_copy` come from another, so that the two never share draws.
_NOISE_STREAM = 1


def _torch_seed(seed: int, stream: int | None = None) -> int:
    """A PyTorch seed hashed from ``seed`` (and ``stream``, an independent sequence).

    Hashed, not ``seed`` itself: a model built right after ``torch.manual_seed(seed)``
    would otherwise draw what its own initialisation drew.
    """
    spawn_key = () if stream is None else (stream,)
    sequence = np.random.SeedSequence(int(seed), spawn_key=spawn_key)
    return int(sequence.generate_state(1)[0])


@contextlib.contextmanager
def _seeded_torch(device: torch.device, seed: int) -> Iterator[None]:
    """The global generator of ``device`` seeded with ``seed`` for the block, then restored.

    captum's NoiseTunnel and ``reset_parameters`` draw from the global generator of the
    device the tensors live on; forking it keeps the caller's random state as it was.
    """
    fork = (
        torch.random.fork_rng(devices=[])
        if device.type == "cpu"
        else torch.random.fork_rng(devices=[device.index or 0], device_type=device.type)
    )
    with fork:
        torch.manual_seed(seed)
        yield


# -----------------------------------------------------------------------------
# Attributions


def attribute(
    model: nn.Module,
    images: ArrayLike,
    target: ArrayLike,
    *,
    extra: ArrayLike | None = None,
    method: str = "integrated_gradients",
    baseline: ArrayLike | None = None,
    n_steps: int = 32,
    n_samples: int = SMOOTHGRAD_SAMPLES,
    noise_fraction: float = SMOOTHGRAD_NOISE,
    seed: int = 0,
    batch_size: int = 32,
    internal_batch_size: int = 32,
    progress: bool = False,
) -> NDArray[np.float32]:
    """Attribution of each pixel in each band to the logit of a target bin.

    Parameters
    ----------
    model : torch.nn.Module
        Called as ``model(images, extra)``, or ``model(images)`` when ``extra`` is None;
        returns logits of shape (n, n_bins). Run on its own device, in evaluation mode;
        its training flags and ``requires_grad`` flags are restored afterwards.
    images : array_like, shape (N, bands, H, W)
        The images exactly as the model reads them (for CLAP's networks: cropped and
        scaled by ``sign(x) log(1 + |x|)``).
    target : array_like of int, shape (N,)
        The bin whose logit is attributed, per image (a single integer: the same bin for
        all), e.g. the true mass bin or ``logits.argmax(1)``.
    extra : array_like, shape (N, n_extra) or (N,), optional
        Scalars per galaxy passed to the model, such as E(B−V); not attributed.
    method : {"integrated_gradients", "saliency", "smoothgrad"}
        Integrated gradients (Sundararajan et al. 2017; Gauss–Legendre quadrature along
        the straight path from the baseline), saliency, the absolute gradient
        (Simonyan et al. 2014), or SmoothGrad (Smilkov et al. 2017): the saliency map
        averaged over ``n_samples`` copies of the image with Gaussian noise added
        (captum's ``NoiseTunnel`` over ``Saliency``).
    baseline : array_like, shape (bands, H, W) or (N, bands, H, W), optional
        Start of the integration path; zeros by default, i.e. blank sky in the scaled
        images. Integrated gradients only.
    n_steps : int
        Quadrature points of integrated gradients.
    n_samples : int
        Noisy copies per image of SmoothGrad.
    noise_fraction : float
        SmoothGrad's noise σ as a fraction of each image's dynamic range (its max − min
        over all bands and pixels), in (0, 1).
    seed : int
        Seeds SmoothGrad's noise, drawn in a forked random state: the same seed gives
        the same maps, and the global PyTorch generators are left as they were.
    batch_size : int
        Images per chunk handed to captum.
    internal_batch_size : int
        Most images per forward pass of integrated gradients (path points of a chunk
        are evaluated in groups), so memory does not grow with ``n_steps``. Chunks are
        cut to at most this many images. SmoothGrad sends the ``n_samples`` noisy copies
        of one image through the network together, whatever this is: how captum groups
        the copies changes the noise it draws, and the maps should not depend on a
        memory setting.
    progress : bool
        Show a progress bar over chunks.

    Returns
    -------
    numpy.ndarray of float32, shape (N, bands, H, W)
        Signed for integrated gradients, non-negative for saliency and SmoothGrad.

    Raises
    ------
    ValidationError
        For an unknown method, arrays of the wrong shape or not finite, target bins
        outside the model's output, or a model that does not return (n, n_bins).

    Examples
    --------
    A linear model: integrated gradients from zero are the image times the weights.

    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 4 * 4, 3))
    >>> images = np.ones((5, 2, 4, 4), dtype=np.float32)
    >>> maps = attribute(model, images, target=np.zeros(5, dtype=int))
    >>> maps.shape
    (5, 2, 4, 4)
    >>> weights = model[1].weight.detach().numpy()[0].reshape(2, 4, 4)
    >>> bool(np.allclose(maps[0], weights, atol=1e-6))
    True

    Its gradient is the same everywhere, so noise changes nothing: SmoothGrad is saliency.

    >>> smooth = attribute(model, images, target=0, method="smoothgrad", n_samples=4)
    >>> bool(np.allclose(smooth, attribute(model, images, target=0, method="saliency")))
    True
    """
    if method not in METHODS:
        raise ValidationError(f"method must be one of {list(METHODS)}, got {method!r}")
    if not isinstance(model, nn.Module):
        raise ValidationError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    x_all = _check_maps(images, "images")  # converted chunk by chunk, on the way in
    n = x_all.shape[0]
    t_all = _check_target(target, n)
    e_all = _check_extra(extra, n)
    b_all = _check_baseline(baseline, x_all.shape)
    if b_all is not None and method != "integrated_gradients":
        raise ValidationError(f"baseline applies to integrated_gradients only, not {method!r}")
    n_steps = check_int(n_steps, "n_steps")
    n_samples = check_int(n_samples, "n_samples")
    noise_fraction = check_number(noise_fraction, "noise_fraction", above=0, below=1)
    seed = check_int(seed, "seed", minimum=0)
    batch_size = check_int(batch_size, "batch_size")
    internal_batch_size = check_int(internal_batch_size, "internal_batch_size")
    # captum falls back (with a warning) to a whole chunk per forward pass when a chunk
    # has more images than internal_batch_size: cut chunks so that never happens.
    chunk = batch_size if method != "integrated_gradients" else min(batch_size, internal_batch_size)

    attr = _captum_attr()
    device, dtype = _device_dtype(model)
    maps = np.empty(x_all.shape, dtype=np.float32)
    noise = (
        _seeded_torch(device, _torch_seed(seed, _NOISE_STREAM))
        if method == "smoothgrad"
        else contextlib.nullcontext()
    )
    # Grad mode on even when called under torch.no_grad(): the maps are gradients.
    with _frozen_eval(model), torch.enable_grad(), noise:
        n_bins = _n_bins(model, x_all[:1], None if e_all is None else e_all[:1], device, dtype)
        if t_all.max() >= n_bins:
            raise ValidationError(
                f"target bins must be < {n_bins}, the model's number of bins; got {t_all.max()}"
            )
        if method == "integrated_gradients":
            explainer = attr.IntegratedGradients(model)
        elif method == "saliency":
            explainer = attr.Saliency(model)
        else:
            explainer = attr.NoiseTunnel(attr.Saliency(model))
        starts = range(0, n, chunk)
        for s in tqdm(starts, desc=method, unit="batch", disable=not progress):
            rows = slice(s, s + chunk)
            # torch.tensor copies: the caller's arrays may be read-only (memory maps).
            x = torch.tensor(x_all[rows], device=device, dtype=dtype)  # (b, bands, H, W)
            t = torch.tensor(t_all[rows], device=device)
            args = None
            if e_all is not None:
                args = (torch.tensor(e_all[rows], device=device, dtype=dtype),)
            if method == "integrated_gradients":
                base = None
                if b_all is not None:
                    one = b_all[rows] if b_all.ndim == 4 else b_all[None]
                    base = torch.tensor(one, device=device, dtype=dtype).expand_as(x)
                a = explainer.attribute(
                    x,
                    baselines=base,
                    target=t,
                    additional_forward_args=args,
                    n_steps=n_steps,
                    internal_batch_size=internal_batch_size,
                )
            elif method == "saliency":
                # A fresh tensor of ours: asking for its gradient up front spares
                # captum's warning that it had to.
                x.requires_grad_(True)
                a = explainer.attribute(x, target=t, abs=True, additional_forward_args=args)
            else:
                a = _smoothgrad(explainer, x, t, args, n_samples, noise_fraction)
            maps[rows] = a.detach().to("cpu", torch.float32).numpy()
    return maps


def _smoothgrad(
    explainer: Any,
    x: torch.Tensor,
    t: torch.Tensor,
    args: tuple[torch.Tensor] | None,
    n_samples: int,
    noise_fraction: float,
) -> torch.Tensor:
    """SmoothGrad of |gradient| of a chunk ``x`` (b, bands, H, W), image by image.

    captum's NoiseTunnel takes one σ per input tensor, not per image: each image is its
    own call, with σ from its own dynamic range. One call per image also makes an
    image's noise independent of how the images are chunked.
    """
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        one = x[i : i + 1]  # (1, bands, H, W)
        sigma = noise_fraction * float(one.max() - one.min())
        out[i] = explainer.attribute(
            one,
            nt_type="smoothgrad",
            nt_samples=n_samples,
            stdevs=sigma,
            target=t[i : i + 1],
            abs=True,
            additional_forward_args=None if args is None else (args[0][i : i + 1],),
        )[0]
    return out


def _n_bins(
    model: nn.Module,
    x: NDArray,
    extra: NDArray | None,
    device: torch.device,
    dtype: torch.dtype,
) -> int:
    """The model's number of output bins, from one image; checks the output's shape."""
    with torch.no_grad():
        e = None if extra is None else torch.tensor(extra, device=device, dtype=dtype)
        out = _call(model, torch.tensor(x, device=device, dtype=dtype), e)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 1:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValidationError(
            f"the model must return logits of shape (n, n_bins); for one image it returned {shape}"
        )
    return int(out.shape[1])


# -----------------------------------------------------------------------------
# Centre against outskirts


def _radii(h: int, w: int) -> NDArray[np.float64]:
    """Distance in pixels of each pixel centre from the stamp's centre, (H, W)."""
    y, x = np.indices((h, w), dtype=float)
    return np.hypot(y - (h - 1) / 2, x - (w - 1) / 2)


def radial_profiles(
    maps: ArrayLike, n_radii: int | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean |attribution| in annuli around the centre of each map.

    The centre is the middle of the stamp, ``((H - 1) / 2, (W - 1) / 2)`` in pixel
    indices, where the cutouts put the galaxy.

    Parameters
    ----------
    maps : array_like, shape (N, bands, H, W)
        Attribution maps, e.g. from :func:`attribute`.
    n_radii : int, optional
        Number of annuli of equal width from 0 to the farthest pixel centre (a corner),
        so that every pixel falls in one. By default annuli are one pixel wide: annulus
        k holds the pixels at k ≤ r < k + 1.

    Returns
    -------
    profiles : numpy.ndarray, shape (N, bands, R)
        Mean |attribution| per annulus; NaN for an annulus without pixel centres.
    edges : numpy.ndarray, shape (R + 1,)
        Annulus edges in pixels.

    Examples
    --------
    >>> maps = np.zeros((1, 1, 5, 5))
    >>> maps[0, 0, 2, 2] = 4.0
    >>> profiles, edges = radial_profiles(maps)
    >>> profiles[0, 0].tolist(), edges.tolist()
    ([4.0, 0.0, 0.0], [0.0, 1.0, 2.0, 3.0])
    """
    arr = np.abs(_check_maps(maps, "maps").astype(np.float64))
    n, b, h, w = arr.shape
    r = _radii(h, w).ravel()
    r_far = r.max()
    if n_radii is None:
        edges = np.arange(np.floor(r_far) + 2.0)
    else:
        n_radii = check_int(n_radii, "n_radii")
        edges = np.linspace(0.0, r_far, n_radii + 1)
    # The farthest pixel sits on the last edge: it belongs to the last annulus.
    annulus = np.minimum(np.searchsorted(edges, r, side="right") - 1, len(edges) - 2)
    members = np.zeros((h * w, len(edges) - 1))
    members[np.arange(h * w), annulus] = 1.0
    counts = members.sum(axis=0)
    sums = arr.reshape(n * b, h * w) @ members  # (N * bands, R)
    profiles = np.divide(sums, counts, out=np.full_like(sums, np.nan), where=counts > 0)
    return profiles.reshape(n, b, -1), edges


def centre_fraction(maps: ArrayLike, radius: float) -> NDArray[np.float64]:
    """Fraction of each map's total |attribution| within ``radius`` pixels of the centre.

    Pixels whose centre lies at r ≤ ``radius`` from the stamp's centre count as inside.

    Parameters
    ----------
    maps : array_like, shape (N, bands, H, W)
        Attribution maps, e.g. from :func:`attribute`.
    radius : float
        Radius in pixels, > 0.

    Returns
    -------
    numpy.ndarray, shape (N, bands)
        Values in [0, 1]; NaN for a map that is zero everywhere.

    Examples
    --------
    >>> maps = np.ones((1, 2, 5, 5))
    >>> centre_fraction(maps, radius=1.0).tolist()  # the centre and its 4 neighbours
    [[0.2, 0.2]]
    """
    arr = np.abs(_check_maps(maps, "maps").astype(np.float64))
    if isinstance(radius, bool) or not isinstance(radius, numbers.Real) or not radius > 0:
        raise ValidationError(f"radius must be a number of pixels > 0, got {radius!r}")
    if not np.isfinite(radius):
        raise ValidationError(f"radius must be finite, got {radius!r}")
    inside = _radii(*arr.shape[2:]) <= radius
    total = arr.sum(axis=(2, 3))
    centre = arr[..., inside].sum(axis=-1)
    return np.divide(centre, total, out=np.full_like(total, np.nan), where=total > 0)


def mean_by_group(values: ArrayLike, labels: ArrayLike) -> dict[Hashable, NDArray[np.float64]]:
    """Mean over the galaxies of each label, e.g. of each galaxy type.

    Parameters
    ----------
    values : array_like, shape (N, ...)
        One entry per galaxy: maps, profiles, fractions.
    labels : array_like, shape (N,)
        Group of each galaxy, such as ``"early"`` or ``"late"``.

    Returns
    -------
    dict
        Sorted labels (as Python scalars) to the mean over their galaxies, of shape
        ``values.shape[1:]``. NaN entries make their mean NaN.

    Examples
    --------
    >>> means = mean_by_group([[1.0, 2.0], [3.0, 4.0], [10.0, 0.0]], ["late", "late", "early"])
    >>> {k: v.tolist() for k, v in means.items()}
    {'early': [10.0, 0.0], 'late': [2.0, 3.0]}
    """
    arr = np.asarray(values)
    lab = np.asarray(labels)
    if arr.dtype.kind not in "biuf" or arr.ndim < 1:
        raise ValidationError(
            f"values must be a real array with one entry per galaxy, got dtype {arr.dtype} "
            f"and shape {arr.shape}"
        )
    if lab.ndim != 1 or lab.shape[0] != arr.shape[0]:
        raise ValidationError(
            f"labels must have shape ({arr.shape[0]},), one per row of values, got {lab.shape}"
        )
    return {
        (g.item() if isinstance(g, np.generic) else g): np.asarray(
            arr[lab == g].mean(axis=0, dtype=np.float64)
        )
        for g in np.unique(lab)
    }


# -----------------------------------------------------------------------------
# Model-parameter randomisation


def randomised_copy(model: nn.Module, *, seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` with every submodule's ``reset_parameters()`` called.

    The draws are seeded and made in a forked random state, so the global PyTorch
    generators are as they were. The generator is seeded with a hash of ``seed``, not
    ``seed`` itself: a model built right after ``torch.manual_seed(seed)`` would
    otherwise be re-initialised to its own initial weights. Parameters owned by a
    module without ``reset_parameters`` keep their values (:func:`randomisation_check`
    lists them).

    Examples
    --------
    >>> model = torch.nn.Linear(3, 2)
    >>> a, b = randomised_copy(model, seed=1), randomised_copy(model, seed=1)
    >>> torch.equal(a.weight, b.weight), torch.equal(a.weight, model.weight)
    (True, False)
    """
    if not isinstance(model, nn.Module):
        raise ValidationError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_int(seed, "seed", minimum=0)
    clone = copy.deepcopy(model)
    device, _ = _device_dtype(clone)
    # Initialisers draw from the global generator of the weights' device.
    with _seeded_torch(device, _torch_seed(seed)):
        for module in clone.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    return clone


def rank_correlation(maps_a: ArrayLike, maps_b: ArrayLike) -> NDArray[np.float64]:
    """Spearman rank correlation between |maps_a| and |maps_b|, per galaxy.

    Each galaxy's bands and pixels are ranked together (ties share their mean rank).

    Parameters
    ----------
    maps_a, maps_b : array_like, shape (N, bands, H, W)
        Two sets of maps of the same galaxies.

    Returns
    -------
    numpy.ndarray, shape (N,)
        ρ in [−1, 1]; NaN where either map is constant.

    Examples
    --------
    >>> a = np.arange(8.0).reshape(1, 2, 2, 2)
    >>> rank_correlation(a, a**2).tolist(), rank_correlation(a, -a).tolist()
    ([1.0], [1.0])
    """
    a = np.abs(_check_maps(maps_a, "maps_a").astype(np.float64))
    b = np.abs(_check_maps(maps_b, "maps_b").astype(np.float64))
    if a.shape != b.shape:
        raise ValidationError(f"maps_a and maps_b must have one shape, got {a.shape} and {b.shape}")
    # Pearson of the ranks, row by row: scipy.stats.spearmanr on 2-D input correlates
    # every row with every other (an N × N matrix), not row i of a with row i of b.
    ra = rankdata(a.reshape(len(a), -1), axis=1)
    rb = rankdata(b.reshape(len(b), -1), axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    num = (ra * rb).sum(axis=1)
    den = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    rho = np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)
    return np.clip(rho, -1.0, 1.0)


def randomisation_check(
    model: nn.Module,
    images: ArrayLike,
    target: ArrayLike,
    *,
    extra: ArrayLike | None = None,
    method: str = "integrated_gradients",
    baseline: ArrayLike | None = None,
    n_steps: int = 32,
    n_samples: int = SMOOTHGRAD_SAMPLES,
    noise_fraction: float = SMOOTHGRAD_NOISE,
    batch_size: int = 32,
    internal_batch_size: int = 32,
    seed: int = 0,
    threshold: float = RANDOMISATION_THRESHOLD,
    progress: bool = False,
) -> dict[str, Any]:
    """The model-parameter randomisation test (Adebayo et al. 2018) of an attribution.

    Attributions are computed for ``model`` and for :func:`randomised_copy` of it, and
    compared galaxy by galaxy with :func:`rank_correlation` of their absolute values.
    A method that explains the model gives unrelated maps for random weights; one
    whose maps survive randomisation mostly shows the input (edges, bright pixels).
    ``model`` itself is not modified.

    Parameters
    ----------
    model, images, target, extra, method, baseline, n_steps, n_samples, noise_fraction
        As for :func:`attribute`.
    batch_size, internal_batch_size, progress
        As for :func:`attribute`.
    seed : int
        Seed of the re-initialisation and of SmoothGrad's noise (two independent
        streams). Both models' maps see the same noise, so only the weights differ.
    threshold : float
        The check passes when the median |ρ| is below it. The paper gives no number;
        the default, 0.5, asks that the maps share less than about a quarter of their
        rank variance.

    Returns
    -------
    dict
        ``rho`` (N,) per-galaxy Spearman ρ; ``median_rho`` and ``median_abs_rho`` over
        galaxies with a defined ρ; ``threshold``; ``verdict``: "passed", "failed", or
        "inconclusive" when no ρ is defined (a map constant everywhere); ``method``;
        ``unchanged``: names of parameters the re-initialisation left as they were;
        ``attributions`` and ``randomised``: the two sets of maps.

    Notes
    -----
    Integrated gradients multiply the averaged gradient by ``x - baseline``, so their
    |maps| share the image's bright pixels whatever the weights: ρ stays higher for them
    than for saliency, as Adebayo et al. found for gradient × input. Compare ρ between
    methods on the same galaxies rather than reading one value against the threshold.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(1 * 6 * 6, 4))
    >>> images = np.random.default_rng(0).normal(size=(8, 1, 6, 6)).astype(np.float32)
    >>> result = randomisation_check(model, images, np.zeros(8, dtype=int), method="saliency")
    >>> result["verdict"], result["unchanged"]
    ('passed', [])
    """
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise ValidationError(f"threshold must be a number in (0, 1], got {threshold!r}")
    if not 0 < threshold <= 1:
        raise ValidationError(f"threshold must be in (0, 1], got {threshold}")
    kwargs = dict(
        extra=extra,
        method=method,
        baseline=baseline,
        n_steps=n_steps,
        n_samples=n_samples,
        noise_fraction=noise_fraction,
        seed=seed,
        batch_size=batch_size,
        internal_batch_size=internal_batch_size,
        progress=progress,
    )
    original = attribute(model, images, target, **kwargs)
    clone = randomised_copy(model, seed=seed)
    before = dict(model.named_parameters())
    unchanged = [
        name
        for name, p in clone.named_parameters()
        if name in before and torch.equal(p.detach(), before[name].detach())
    ]
    randomised = attribute(clone, images, target, **kwargs)
    rho = rank_correlation(original, randomised)
    defined = rho[np.isfinite(rho)]
    if defined.size:
        median_rho = float(np.median(defined))
        median_abs = float(np.median(np.abs(defined)))
        verdict = "passed" if median_abs < threshold else "failed"
    else:
        median_rho = median_abs = float("nan")
        verdict = "inconclusive"
    return {
        "rho": rho,
        "median_rho": median_rho,
        "median_abs_rho": median_abs,
        "threshold": float(threshold),
        "verdict": verdict,
        "method": method,
        "unchanged": unchanged,
        "attributions": original,
        "randomised": randomised,
    }
