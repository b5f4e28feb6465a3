"""Image-level fidelity of translated galaxy images against real target images.

Pure-array functions on image stacks shaped ``(N, B, H, W)`` (galaxies, bands, rows,
columns; the GalaxySet convention), in three tiers of the published evaluation:

- pixel level: :func:`pixel_metrics` (MSE, PSNR, SSIM per band);
- morphology level: :func:`morphology` (flux, peak, HSM adaptive moments, concentration),
  :func:`peak_flux_ratios` and :func:`relative_errors` to compare two tables; the peak is
  measured at the galaxy (:func:`galaxy_peak_pixels`: its photutils segment), not at the
  brightest pixel of the stamp;
- noise: :func:`source_mask`, :func:`background_std` and :func:`noise_power_spectrum`.

No I/O and no models here. Every stack is checked at entry: a non-finite pixel raises
:class:`~clapkit.errors.ValidationError` naming its galaxy index and band.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import galsim
import numpy as np
from astropy.table import Table
from numpy.typing import ArrayLike, NDArray
from photutils.segmentation import detect_sources
from photutils.utils.exceptions import NoDetectionsWarning
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from clapkit.checks import check_int
from clapkit.errors import ValidationError
from clapkit.metrics.point import MAD_TO_SIGMA

#: Detection threshold of :func:`galaxy_peak_pixels`, in robust standard deviations.
DETECTION_NSIGMA = 2.0
#: Fewest connected pixels (8-connected) that make a segment in :func:`galaxy_peak_pixels`.
DETECTION_NPIXELS = 5
#: Side of the square window of :func:`skimage.metrics.structural_similarity` (its default).
SSIM_WINDOW = 7

_AXES = ("galaxies", "bands", "height", "width")


def _check_stack(images: ArrayLike, name: str = "images") -> NDArray[np.float64]:
    """Return ``images`` as a float64 (N, B, H, W) array of finite pixels, or raise."""
    arr = np.asarray(images, dtype=np.float64)
    if arr.ndim != 4:
        raise ValidationError(f"{name} must have shape (N, B, H, W), got {arr.shape}")
    if 0 in arr.shape:
        raise ValidationError(f"{name} is empty, shape {arr.shape}")
    bad = ~np.isfinite(arr).all(axis=(2, 3))  # (N, B)
    if np.any(bad):
        n, b = (int(i) for i in np.argwhere(bad)[0])
        raise ValidationError(f"{name} has non-finite pixels in galaxy {n}, band {b}")
    return arr


def _check_pair(
    translated: ArrayLike, real: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    t = _check_stack(translated, "translated")
    r = _check_stack(real, "real")
    if t.shape != r.shape:
        axis = next(i for i in range(4) if t.shape[i] != r.shape[i])
        raise ValidationError(
            f"translated has shape {t.shape} but real has {r.shape}: they differ in "
            f"{_AXES[axis]} (axis {axis})"
        )
    return t, r


def _band_names(bands: Sequence[str] | None, n_bands: int) -> list[str]:
    if bands is None:
        return [f"b{i}" for i in range(n_bands)]
    names = [str(b) for b in bands]
    if len(names) != n_bands:
        raise ValidationError(f"got {len(names)} band names for {n_bands} bands: {names}")
    return names


def pixel_metrics(
    translated: ArrayLike,
    real: ArrayLike,
    data_range: ArrayLike | None = None,
    per_galaxy: bool = False,
) -> dict[str, NDArray[np.float64]]:
    """Mean squared error, PSNR and SSIM per band, averaged over galaxies.

    Parameters
    ----------
    translated, real : array_like, shape (N, B, H, W)
        Translated images and the real target images of the same galaxies.
    data_range : float or array_like of shape (B,), optional
        Dynamic range used by PSNR and SSIM. Default: per band, the range (max - min) of
        the *real* images over all galaxies, so that every model is scored on the same
        scale. Galaxy images have no fixed range, which is why it is always explicit.
    per_galaxy : bool
        Return the per-galaxy values, shape (N, B), instead of their means (what a
        bootstrap over galaxies resamples).

    Returns
    -------
    dict
        ``"mse"``, ``"psnr"`` (dB) and ``"ssim"``, each of shape (B,): the mean over
        galaxies of the per-galaxy values, and ``"data_range"`` (B,) as used. A galaxy
        whose images are identical has PSNR ``inf``, so the band mean is ``inf`` too.
        SSIM uses scikit-image's defaults (a 7 × 7 uniform window).

    Examples
    --------
    >>> x = np.arange(2 * 1 * 8 * 8, dtype=float).reshape(2, 1, 8, 8)
    >>> m = pixel_metrics(x, x)
    >>> m["mse"], m["psnr"], m["ssim"]
    (array([0.]), array([inf]), array([1.]))
    """
    t, r = _check_pair(translated, real)
    n_gal, n_bands, height, width = r.shape
    if min(height, width) < SSIM_WINDOW:
        raise ValidationError(
            f"images must be at least {SSIM_WINDOW} × {SSIM_WINDOW} pixels for SSIM, "
            f"got {height} × {width}"
        )
    if data_range is None:
        dr = r.max(axis=(0, 2, 3)) - r.min(axis=(0, 2, 3))
    else:
        dr = np.broadcast_to(np.asarray(data_range, dtype=np.float64), (n_bands,)).copy()
    bad = ~(np.isfinite(dr) & (dr > 0))
    if np.any(bad):
        raise ValidationError(
            f"data_range must be finite and > 0, got {dr[bad][0]} in band "
            f"{int(np.flatnonzero(bad)[0])} (a constant band of real images has no range)"
        )
    mse = np.mean((t - r) ** 2, axis=(2, 3))  # (N, B)
    psnr = np.full((n_gal, n_bands), np.inf)
    ssim = np.empty((n_gal, n_bands))
    for n in range(n_gal):
        for b in range(n_bands):
            # skimage divides by the MSE, which warns for identical images: PSNR is inf.
            if mse[n, b] > 0:
                psnr[n, b] = peak_signal_noise_ratio(r[n, b], t[n, b], data_range=dr[b])
            ssim[n, b] = structural_similarity(r[n, b], t[n, b], data_range=dr[b])
    if per_galaxy:
        return {"mse": mse, "psnr": psnr, "ssim": ssim, "data_range": dr}
    return {
        "mse": mse.mean(axis=0),
        "psnr": psnr.mean(axis=0),
        "ssim": ssim.mean(axis=0),
        "data_range": dr,
    }


def _median_and_mad_sigma(arr: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
    med = np.median(arr, axis=(-2, -1), keepdims=True)
    sigma = MAD_TO_SIGMA * np.median(np.abs(arr - med), axis=(-2, -1), keepdims=True)
    return med, sigma


def source_mask(images: ArrayLike, nsigma: float = 3.0, dilate: int = 2) -> NDArray[np.bool_]:
    """Pixels that belong to a source, per galaxy and band.

    A pixel is a source pixel when it lies more than ``nsigma`` robust standard deviations
    above the median of its image; the standard deviation is 1.4826 × the median absolute
    deviation, which the galaxy itself barely moves while it covers under half the stamp.
    The mask is then dilated by ``dilate`` pixels (a 3 × 3 structure, repeated) to catch
    the faint wings just below the threshold. Source-free pixels are ``~mask``.

    Parameters
    ----------
    images : array_like, shape (N, B, H, W)
    nsigma : float
        Detection threshold in robust standard deviations.
    dilate : int
        Number of dilation steps; 0 keeps the thresholded pixels only.

    Returns
    -------
    ndarray of bool, shape (N, B, H, W)

    Examples
    --------
    >>> img = np.zeros((1, 1, 9, 9))
    >>> img[0, 0, 4, 4] = 1.0
    >>> int(source_mask(img, dilate=0).sum()), int(source_mask(img, dilate=1).sum())
    (1, 9)
    """
    arr = _check_stack(images)
    if nsigma < 0:
        raise ValidationError(f"nsigma must be >= 0, got {nsigma}")
    check_int(dilate, "dilate", minimum=0)
    med, sigma = _median_and_mad_sigma(arr)
    mask = (arr - med) > nsigma * sigma
    if dilate > 0:
        # Dilate within each image only: the structure is flat along galaxies and bands.
        structure = np.ones((1, 1, 3, 3), dtype=bool)
        mask = ndimage.binary_dilation(mask, structure=structure, iterations=int(dilate))
    return mask


def _mask_for(arr: NDArray[np.float64], mask: ArrayLike | None) -> NDArray[np.bool_]:
    if mask is None:
        return source_mask(arr)
    m = np.asarray(mask, dtype=bool)
    if m.shape != arr.shape:
        raise ValidationError(f"mask has shape {m.shape} but images have {arr.shape}")
    return m


def background_std(images: ArrayLike, mask: ArrayLike | None = None) -> NDArray[np.float64]:
    """Standard deviation of the source-free pixels, per galaxy and band.

    Parameters
    ----------
    images : array_like, shape (N, B, H, W)
    mask : array_like of bool, shape (N, B, H, W), optional
        True on source pixels; default :func:`source_mask` of ``images``.

    Returns
    -------
    ndarray, shape (N, B)
        Sample standard deviation (ddof=1); NaN where fewer than two pixels are free.

    Examples
    --------
    >>> img = np.zeros((1, 1, 8, 8))
    >>> img[0, 0, ::2] = 1.0
    >>> background_std(img, mask=np.zeros(img.shape, dtype=bool)).round(3)
    array([[0.504]])
    """
    arr = _check_stack(images)
    m = _mask_for(arr, mask)
    free = ~m
    n_free = free.sum(axis=(2, 3))
    # A masked mean/variance, vectorised; ddof=1 to match np.std(..., ddof=1).
    mean = np.where(free, arr, 0.0).sum(axis=(2, 3)) / np.maximum(n_free, 1)
    sq = np.where(free, (arr - mean[..., None, None]) ** 2, 0.0).sum(axis=(2, 3))
    out = np.full(n_free.shape, np.nan)
    ok = n_free >= 2
    out[ok] = np.sqrt(sq[ok] / (n_free[ok] - 1))
    return out


def noise_power_spectrum(
    images: ArrayLike,
    mask: ArrayLike | None = None,
    n_bins: int | None = None,
    per_galaxy: bool = False,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Radially averaged 2-D power spectrum of the source-free pixels, per band.

    Each image has the median of its source-free pixels subtracted and its source pixels
    set to zero; its power ``|FFT|² / (H W)`` is divided by the fraction of free pixels,
    so that white noise of standard deviation σ has a flat spectrum of mean σ² (the
    variance per pixel) whatever the mask. The 2-D power is averaged over galaxies, then
    over annuli in spatial frequency ``k = sqrt(kx² + ky²)`` in cycles per pixel, from 0
    (excluded: the mean, removed by the median subtraction) to the Nyquist 0.5; the corners
    beyond 0.5 are left out.

    Parameters
    ----------
    images : array_like, shape (N, B, H, W)
    mask : array_like of bool, shape (N, B, H, W), optional
        True on source pixels; default :func:`source_mask` of ``images``.
    n_bins : int, optional
        Number of annuli of equal width; default ``min(H, W) // 2``.
    per_galaxy : bool
        Return each galaxy's spectrum, shape (N, B, n_bins), instead of the mean over
        galaxies. The annulus average is linear, so the mean of these over galaxies is
        the default result: a bootstrap over galaxies averages resampled rows of them.

    Returns
    -------
    k : ndarray, shape (n_bins,)
        Bin centres in cycles per pixel.
    power : ndarray, shape (B, n_bins), or (N, B, n_bins) with ``per_galaxy``
        Mean power per annulus; NaN for an annulus that holds no frequency.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> noise = rng.normal(0.0, 2.0, size=(50, 1, 16, 16))
    >>> k, power = noise_power_spectrum(noise, mask=np.zeros(noise.shape, dtype=bool))
    >>> k.shape, power.shape, bool(abs(power.mean() / 4.0 - 1) < 0.05)
    ((8,), (1, 8), True)
    """
    arr = _check_stack(images)
    m = _mask_for(arr, mask)
    _, _, height, width = arr.shape
    if n_bins is None:
        n_bins = min(height, width) // 2
    n_bins = check_int(n_bins, "n_bins")
    free = ~m
    frac = free.mean(axis=(2, 3))  # (N, B)
    if np.any(frac == 0):
        n, b = (int(i) for i in np.argwhere(frac == 0)[0])
        raise ValidationError(f"no source-free pixels in galaxy {n}, band {b}")
    # NaN outside the free pixels so that nanmedian gives the background of free pixels.
    background = np.nanmedian(np.where(free, arr, np.nan), axis=(2, 3), keepdims=True)
    field = np.where(free, arr - background, 0.0)
    power2d = np.abs(np.fft.fft2(field)) ** 2 / (height * width)  # (N, B, H, W)
    power2d /= frac[..., None, None]
    # (G, B, H, W): the galaxies, or their mean as a single "galaxy".
    spectra2d = power2d if per_galaxy else power2d.mean(axis=0, keepdims=True)

    ky = np.fft.fftfreq(height)[:, None]
    kx = np.fft.fftfreq(width)[None, :]
    k2d = np.hypot(kx, ky)  # (H, W)
    edges = np.linspace(0.0, 0.5, n_bins + 1)
    # right=True puts k exactly on an edge in the lower annulus, and k = 0 in bin 0.
    index = np.digitize(k2d, edges, right=True) - 1
    keep = (k2d > 0) & (index < n_bins)
    counts = np.bincount(index[keep], minlength=n_bins)
    filled = counts > 0
    # One sparse sum per annulus: (G, B, pixels) @ (pixels, n_bins).
    members = np.zeros((int(keep.sum()), n_bins))
    members[np.arange(members.shape[0]), index[keep]] = 1.0
    sums = spectra2d[..., keep] @ members  # (G, B, n_bins)
    power = np.full(sums.shape, np.nan)
    power[..., filled] = sums[..., filled] / counts[filled]
    k = 0.5 * (edges[:-1] + edges[1:])
    return k, (power if per_galaxy else power[0])


def _background(arr: NDArray[np.float64], mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Median of the source-free pixels per image (N, B, 1, 1); 0 where none are free."""
    free_values = np.where(~mask, arr, np.nan)
    has_free = (~mask).any(axis=(2, 3), keepdims=True)
    safe = np.where(has_free, free_values, 0.0)  # nanmedian of an all-NaN image warns
    return np.where(has_free, np.nanmedian(safe, axis=(2, 3), keepdims=True), 0.0)


def _concentration(img: NDArray[np.float64], x0: float, y0: float) -> float:
    """5 log10(r80 / r20) from the curve of growth of pixels sorted by radius."""
    yy, xx = np.indices(img.shape)
    r = np.hypot(xx - x0, yy - y0).ravel()
    order = np.argsort(r)
    r_sorted = np.concatenate([[0.0], r[order]])
    # Noise makes the curve of growth wiggle; its running maximum is monotonic for interp.
    growth = np.maximum.accumulate(np.concatenate([[0.0], np.cumsum(img.ravel()[order])]))
    total = growth[-1]
    if not total > 0:
        return np.nan
    r20, r80 = np.interp([0.2 * total, 0.8 * total], growth, r_sorted)
    if not r20 > 0:
        return np.nan
    return float(5.0 * np.log10(r80 / r20))


def _hsm_centroid_pixel(img: NDArray[np.float64]) -> tuple[int, int] | None:
    """(row, column) of the pixel holding the HSM adaptive-moment centroid, or None."""
    try:
        res = galsim.hsm.FindAdaptiveMom(galsim.Image(np.ascontiguousarray(img), scale=1.0))
    except galsim.GalSimHSMError:
        return None
    # GalSim images start at pixel (1, 1); arrays at index 0.
    row = int(np.clip(round(res.moments_centroid.y - 1.0), 0, img.shape[0] - 1))
    col = int(np.clip(round(res.moments_centroid.x - 1.0), 0, img.shape[1] - 1))
    return row, col


def galaxy_peak_pixels(
    images: ArrayLike,
    nsigma: float = DETECTION_NSIGMA,
    npixels: int = DETECTION_NPIXELS,
    subtract_background: bool = True,
) -> dict[str, NDArray]:
    """The pixel of each galaxy's peak, one pixel shared by every band.

    The galaxy is found on a detection image, the sum of the bands: its pixels more than
    ``nsigma`` robust standard deviations (1.4826 × MAD of the stamp) above the stamp's
    median are split into 8-connected segments of at least ``npixels`` pixels
    (:func:`photutils.segmentation.detect_sources`), and the galaxy's segment is the one
    holding the pixel nearest to the stamp centre. Its peak is the brightest pixel of
    the detection image within that segment. Where no segment is found (a blank or
    very faint stamp) the peak falls back to the pixel of the HSM adaptive-moment
    centroid of the detection image, and to the stamp centre where HSM fails too.

    Why not each band's brightest pixel: in a band where the galaxy is faint, the
    brightest pixel of the stamp is a noise maximum anywhere in the stamp, biased upward
    by several σ, so two image sets would be compared on their noise. The summed bands
    find the galaxy at a signal-to-noise no single band has, and reading every band at
    the same pixel gives cross-band peak-flux ratios (colours at one place) that a
    noise maximum cannot move.

    Parameters
    ----------
    images : array_like, shape (N, B, H, W)
    nsigma : float
        Detection threshold in robust standard deviations of the detection image.
    npixels : int
        Fewest connected pixels of a segment.
    subtract_background : bool
        Subtract each image's median of source-free pixels (:func:`source_mask`) first.

    Returns
    -------
    dict
        ``"row"``, ``"col"`` (int arrays (N,)): the peak pixel; ``"in_segment"`` (bool
        (N,)): True where a segment was found, False where the HSM centroid (or the
        centre) was used; ``"segment"`` (bool (N, H, W)): the galaxy's segment, all False
        where none was found.

    Examples
    --------
    >>> yy, xx = np.mgrid[:21, :21]
    >>> img = np.exp(-((xx - 10) ** 2 + (yy - 9) ** 2) / 8.0)[None, None]
    >>> img = img + 0.01 * np.random.default_rng(0).normal(size=(1, 1, 21, 21))
    >>> img[0, 0, 1, 1] = 5.0  # a brighter spike far from the galaxy
    >>> found = galaxy_peak_pixels(img)
    >>> int(found["row"][0]), int(found["col"][0]), bool(found["in_segment"][0])
    (9, 10, True)
    """
    arr = _check_stack(images)
    if not (np.isfinite(nsigma) and nsigma >= 0):
        raise ValidationError(f"nsigma must be finite and >= 0, got {nsigma}")
    npixels = check_int(npixels, "npixels")
    if subtract_background:
        arr = arr - _background(arr, source_mask(arr))
    n_gal, _, height, width = arr.shape
    detection = arr.sum(axis=1)  # (N, H, W)
    med, sigma = _median_and_mad_sigma(detection)
    thresholds = (med + nsigma * sigma)[:, 0, 0]  # (N,)
    yy, xx = np.indices((height, width))
    dist2 = (yy - (height - 1) / 2) ** 2 + (xx - (width - 1) / 2) ** 2
    rows = np.empty(n_gal, dtype=np.int64)
    cols = np.empty(n_gal, dtype=np.int64)
    in_segment = np.zeros(n_gal, dtype=bool)
    segments = np.zeros((n_gal, height, width), dtype=bool)
    for n in range(n_gal):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NoDetectionsWarning)
            seg = detect_sources(detection[n], thresholds[n], npixels, connectivity=8)
        if seg is not None:
            labels = seg.data
            labelled = labels > 0
            nearest = np.argmin(np.where(labelled, dist2, np.inf))
            segment = labels == labels.flat[nearest]
            peak = np.argmax(np.where(segment, detection[n], -np.inf))
            rows[n], cols[n] = np.unravel_index(peak, (height, width))
            in_segment[n] = True
            segments[n] = segment
            continue
        pixel = _hsm_centroid_pixel(detection[n])
        rows[n], cols[n] = pixel if pixel is not None else (height // 2, width // 2)
    return {"row": rows, "col": cols, "in_segment": in_segment, "segment": segments}


def morphology(
    images: ArrayLike,
    pixel_scale: float = 1.0,
    bands: Sequence[str] | None = None,
    subtract_background: bool = True,
) -> Table:
    """Flux, peak, adaptive moments and concentration per galaxy and band.

    Parameters
    ----------
    images : array_like, shape (N, B, H, W)
    pixel_scale : float
        Size of a pixel (e.g. arcsec); ``sigma`` is reported in these units.
    bands : sequence of str, optional
        Band names used in the column names; default ``"b0", "b1", ...``.
    subtract_background : bool
        Subtract the median of the source-free pixels (:func:`source_mask`) first. Turn it
        off for noiseless images, whose extended wings would be taken for background.

    Returns
    -------
    astropy.table.Table
        One row per galaxy; per band ``<b>`` the columns
        ``flux_<b>`` (sum of pixels), ``peak_<b>`` (the band's value at the galaxy's
        peak pixel, :func:`galaxy_peak_pixels`),
        ``sigma_<b>`` (HSM adaptive-moment size, × ``pixel_scale``),
        ``e1_<b>``, ``e2_<b>`` (HSM observed distortion, (a² − b²)/(a² + b²) along x),
        ``x_<b>``, ``y_<b>`` (HSM centroid in 0-based array pixels: column, row),
        ``concentration_<b>`` (5 log10(r80 / r20) of the curve of growth around the
        centroid) and ``hsm_ok_<b>``. Where HSM fails its columns are NaN, ``hsm_ok`` is
        False, and the concentration is taken around the brightest pixel. Then, shared
        by the bands: ``peak_x``, ``peak_y`` (the peak pixel: column, row) and
        ``peak_in_segment`` (True where the galaxy's photutils segment gave it, False
        where the HSM centroid of the summed bands did).

    Notes
    -----
    The peak is read at one pixel per galaxy, the brightest pixel of the summed bands
    within the galaxy's segment, not at each band's brightest pixel of the stamp: in a
    faint band that maximum is a noise peak anywhere in the stamp, so translated and
    real images would be compared on their noise; at the galaxy's pixel the peak is the
    galaxy's flux plus unbiased noise, and ``peak_<b> / peak_<b'>`` is a colour at one
    place (:func:`peak_flux_ratios`).

    Examples
    --------
    >>> img = galsim.Gaussian(sigma=2.0).drawImage(nx=24, ny=24, scale=1.0).array
    >>> t = morphology(img[None, None], bands=["r"], subtract_background=False)
    >>> # The pixel adds 1/12 to sigma²: sqrt(4 + 1/12) = 2.02.
    >>> round(float(t["sigma_r"][0]), 2), bool(t["hsm_ok_r"][0])
    (2.02, True)
    """
    arr = _check_stack(images)
    if not (np.isfinite(pixel_scale) and pixel_scale > 0):
        raise ValidationError(f"pixel_scale must be finite and > 0, got {pixel_scale}")
    n_gal, n_bands, _, _ = arr.shape
    names = _band_names(bands, n_bands)
    if subtract_background:
        arr = arr - _background(arr, source_mask(arr))
    peaks = galaxy_peak_pixels(arr, subtract_background=False)
    at_peak = arr[np.arange(n_gal), :, peaks["row"], peaks["col"]]  # (N, B)
    table = Table()
    for b, name in enumerate(names):
        cols = {
            key: np.full(n_gal, np.nan)
            for key in ("flux", "peak", "sigma", "e1", "e2", "x", "y", "concentration")
        }
        ok = np.zeros(n_gal, dtype=bool)
        for n in range(n_gal):
            img = np.ascontiguousarray(arr[n, b])
            cols["flux"][n] = img.sum()
            cols["peak"][n] = at_peak[n, b]
            try:
                res = galsim.hsm.FindAdaptiveMom(galsim.Image(img, scale=pixel_scale))
            except galsim.GalSimHSMError:
                # A blank or pathological stamp: record the failure, keep the other columns.
                y0, x0 = np.unravel_index(np.argmax(img), img.shape)
            else:
                ok[n] = True
                cols["sigma"][n] = res.moments_sigma * pixel_scale
                cols["e1"][n] = res.observed_shape.e1
                cols["e2"][n] = res.observed_shape.e2
                # GalSim images start at pixel (1, 1); arrays at index 0.
                x0 = res.moments_centroid.x - 1.0
                y0 = res.moments_centroid.y - 1.0
                cols["x"][n], cols["y"][n] = x0, y0
            cols["concentration"][n] = _concentration(img, float(x0), float(y0))
        for key, values in cols.items():
            table[f"{key}_{name}"] = values
        table[f"hsm_ok_{name}"] = ok
    table["peak_x"] = peaks["col"]
    table["peak_y"] = peaks["row"]
    table["peak_in_segment"] = peaks["in_segment"]
    return table


def peak_fluxes(images: ArrayLike, subtract_background: bool = True) -> NDArray[np.float64]:
    """Every band's flux at the galaxy's peak pixel (:func:`galaxy_peak_pixels`), (N, B).

    The values of :func:`morphology`'s ``peak_<b>`` columns without the rest of the
    table (no HSM fit), for large training sets; each galaxy is measured on its own
    stamp, so any split of the galaxies into batches gives the same values.

    Parameters
    ----------
    images : array_like, shape (N, B, H, W)
    subtract_background : bool
        Subtract the median of the source-free pixels first, as :func:`morphology` does.

    Returns
    -------
    numpy.ndarray, shape (N, B)

    Examples
    --------
    >>> yy, xx = np.mgrid[:16, :16]
    >>> blob = np.exp(-((xx - 7.5) ** 2 + (yy - 7.5) ** 2) / 8.0)
    >>> img = np.stack([2.0 * blob, blob])[None]  # (1, 2, 16, 16)
    >>> peak_fluxes(img, subtract_background=False).round(3)
    array([[1.879, 0.939]])
    """
    arr = _check_stack(images)
    if subtract_background:
        arr = arr - _background(arr, source_mask(arr))
    found = galaxy_peak_pixels(arr, subtract_background=False)
    return arr[np.arange(arr.shape[0]), :, found["row"], found["col"]]


def peak_flux_ratios(
    images: ArrayLike, bands: Sequence[str], subtract_background: bool = True
) -> dict[str, NDArray[np.float64]]:
    """Ratios of the peak fluxes of consecutive bands, per galaxy, at one pixel.

    Every band is read at the same pixel, the galaxy's peak on the summed bands within
    its segment (:func:`galaxy_peak_pixels`), so a ratio is the colour of the galaxy at
    its peak; each band's own maximum would put a noise peak of a faint band over the
    galaxy's peak of a bright one.

    Parameters
    ----------
    images : array_like, shape (N, B, H, W)
    bands : sequence of str
        The B band names, in the order of the band axis.
    subtract_background : bool
        Subtract the median of the source-free pixels first, as :func:`morphology` does.

    Returns
    -------
    dict
        ``"peak_<b_i>/peak_<b_i+1>"`` → array (N,) for i = 0 … B − 2. A zero denominator
        gives ``inf`` or NaN.

    Examples
    --------
    >>> yy, xx = np.mgrid[:16, :16]
    >>> blob = np.exp(-((xx - 7.5) ** 2 + (yy - 7.5) ** 2) / 8.0)
    >>> img = np.stack([2.0 * blob, blob])[None]  # (1, 2, 16, 16)
    >>> peak_flux_ratios(img, ["g", "r"], subtract_background=False)
    {'peak_g/peak_r': array([2.])}
    """
    arr = _check_stack(images)
    names = _band_names(bands, arr.shape[1])
    peaks = peak_fluxes(arr, subtract_background)
    out = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(len(names) - 1):
            out[f"peak_{names[i]}/peak_{names[i + 1]}"] = peaks[:, i] / peaks[:, i + 1]
    return out


def relative_errors(
    translated_table: Table, real_table: Table, columns: Sequence[str]
) -> dict[str, float]:
    """Median relative error |x_t − x_r| / |x_r| per column, ignoring NaN.

    Parameters
    ----------
    translated_table, real_table : astropy.table.Table
        Tables of the same galaxies in the same order, e.g. from :func:`morphology`.
    columns : sequence of str
        Numeric columns present in both.

    Returns
    -------
    dict
        Column name → median relative error; NaN when no row has finite values and a
        non-zero real value.

    Examples
    --------
    >>> t = Table({"flux": [1.1, 2.0, np.nan]})
    >>> r = Table({"flux": [1.0, 2.0, 3.0]})
    >>> round(relative_errors(t, r, ["flux"])["flux"], 3)
    0.05
    """
    if len(translated_table) != len(real_table):
        raise ValidationError(
            f"translated table has {len(translated_table)} rows, real has {len(real_table)}"
        )
    out = {}
    for col in columns:
        for label, table in (("translated", translated_table), ("real", real_table)):
            if col not in table.colnames:
                raise ValidationError(f"column {col!r} missing from the {label} table")
        xt = np.asarray(translated_table[col], dtype=np.float64)
        xr = np.asarray(real_table[col], dtype=np.float64)
        usable = np.isfinite(xt) & np.isfinite(xr) & (xr != 0)
        if not np.any(usable):
            out[col] = float("nan")
            continue
        out[col] = float(np.median(np.abs(xt[usable] - xr[usable]) / np.abs(xr[usable])))
    return out
