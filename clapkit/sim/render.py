"""Render bulge + disk galaxies into multi-band stamps with GalSim: PSF, pixel, sky, noise.

Images are in calibrated flux units, **nanomaggies per pixel** (AB zero point 22.5 in
every band, so ``m = 22.5 - 2.5 log10(sum of pixels)``). A galaxy is a de Vaucouleurs
bulge plus an exponential disk (:class:`Components`); every band sees the same shapes
with its own fluxes and its own PSF, which is what gives the mock images their colour
gradients.

How the fast renderer works, and why
------------------------------------
A galaxy's image in band b is, in Fourier space,

    K_b = (bulge_flux_b · K_bulge + disk_flux_b · K_disk) · K_psf_b · K_pixel

GalSim draws the k-images of the unit-flux, sheared, shifted bulge and disk once per
galaxy and instrument (``_drawKImage``, the expensive part: a de Vaucouleurs transform
is a table look-up per frequency); the PSF × pixel k-images depend only on the band and
are drawn once per instrument and cached. What is left per band is a multiply-add (one
compiled pass, with the aliasing fold below) and an inverse FFT, batched over galaxies
and bands. Drawing each (galaxy, band, component) with ``drawImage`` instead repeats the
profile work ten times per galaxy and lets GalSim pick FFT grids of up to ~1500² pixels
for large bulges; :func:`render_naive` does exactly that, as the reference for the
tests and the benchmark (the fast path is ~60× faster).

Three details make the result match GalSim's own rendering (to ~3e-5 of the peak pixel
against GalSim run with tight accuracy settings; GalSim's defaults are ~1e-4 away):

- *Padding.* The FFT grid is twice the stamp, as in GalSim's ``drawImage``. An FFT
  image is periodic: copies of the galaxy one grid period away add their outer light
  to the stamp; a 4″ de Vaucouleurs bulge wraps ~1% of its flux that way. That light is
  far (≥ 1.5 stamp widths) from any copy's centre, where the profile is smooth and the
  PSF does not matter, so it is computed from the bare profile on a coarse grid and
  subtracted (:meth:`_FourierGrid.wrapped_light`).
- *Aliasing.* Pixels sample the image, so frequencies past the Nyquist limit fold back.
  The PSF × pixel transform at the Nyquist frequency is still ~1e-3 for the SDSS z band,
  so k-images are drawn out to where every band's transform is below
  ``ALIAS_THRESHOLD`` and folded back (:func:`_combine_and_fold`).
- *Centring.* Stamps have even sizes; the galaxy centre is the corner between the four
  central pixels, as in GalSim (``use_true_center``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields

import galsim
import numba
import numpy as np
import scipy.fft
import scipy.special

from clapkit.checks import check_int
from clapkit.errors import ValidationError
from clapkit.sim.instruments import (
    Band,
    Instrument,
    electrons_per_nanomaggy,
    sky_nanomaggies_per_pixel,
    sky_per_pixel,
)

__all__ = ["Components", "add_noise", "render", "render_naive", "render_noiseless"]

PADDING = 2  # FFT grid size / stamp size
ALIAS_THRESHOLD = 1e-4  # PSF × pixel transform below which frequencies are dropped
BATCH_SIZE = 32  # galaxies per FFT batch: ~60 MB of complex64 work arrays for CFHTLS
NOISE_CHUNK = 2**19  # pixels per chunk of noise draws

# The wrapped light is smooth over a stamp: a 5×5 grid of nodes suffices. Copies up to
# 2 grid periods away are sampled on that grid, the rest up to 8 periods away (whose sum
# is nearly flat over a stamp) at the stamp centre only.
_WRAP_NODES = 5
_WRAP_NEAR = 2
_WRAP_FAR = 8


@dataclass(eq=False)
class Components:
    """Bulge + disk parameters of N galaxies, in the bands of one instrument.

    Every field is converted to a ``float64`` array and checked on construction.

    Parameters
    ----------
    bulge_flux, disk_flux : array_like, shape (N, B)
        Total flux of each component per band, nanomaggies, ≥ 0.
    bulge_hlr, disk_hlr : array_like, shape (N,)
        Half-light radius (circularised, since the shear preserves area), arcsec, > 0.
    bulge_q, disk_q : array_like, shape (N,)
        Axis ratio b/a, in (0, 1].
    position_angle : array_like, shape (N,)
        Major-axis angle of both components, radians, counter-clockwise from +x.
    offset_x, offset_y : array_like, shape (N,)
        Centroid offset from the stamp centre, arcsec; +x is along columns (the last
        array axis), +y along rows.

    Examples
    --------
    >>> c = Components(
    ...     bulge_flux=[[1.0, 2.0]], disk_flux=[[3.0, 4.0]], bulge_hlr=[0.5], disk_hlr=[1.5],
    ...     bulge_q=[0.8], disk_q=[0.4], position_angle=[0.3], offset_x=[0.0], offset_y=[0.0])
    >>> len(c), c.n_bands
    (1, 2)
    >>> Components(**{**c.__dict__, "disk_q": [1.5]})
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: disk_q must be in (0, 1]; galaxy 0 has 1.5
    """

    bulge_flux: np.ndarray
    disk_flux: np.ndarray
    bulge_hlr: np.ndarray
    disk_hlr: np.ndarray
    bulge_q: np.ndarray
    disk_q: np.ndarray
    position_angle: np.ndarray
    offset_x: np.ndarray
    offset_y: np.ndarray

    def __post_init__(self) -> None:
        for field in fields(self):
            try:
                value = np.array(getattr(self, field.name), dtype=np.float64)
            except (TypeError, ValueError) as error:
                raise ValidationError(
                    f"{field.name} must be an array of numbers: {error}"
                ) from None
            setattr(self, field.name, value)
        if self.bulge_flux.ndim != 2 or self.bulge_flux.shape[1] == 0:
            raise ValidationError(
                f"bulge_flux must have shape (N, bands) with bands ≥ 1, got shape "
                f"{self.bulge_flux.shape}"
            )
        if self.disk_flux.shape != self.bulge_flux.shape:
            raise ValidationError(
                f"disk_flux must have the shape of bulge_flux {self.bulge_flux.shape}, "
                f"got {self.disk_flux.shape}"
            )
        n = self.bulge_flux.shape[0]
        for field in fields(self)[2:]:
            shape = getattr(self, field.name).shape
            if shape != (n,):
                raise ValidationError(
                    f"{field.name} must have shape ({n},), one value per galaxy, got {shape}"
                )
        for field in fields(self):
            _check_rows(field.name, getattr(self, field.name), np.isfinite, "be finite")
        for name in ("bulge_flux", "disk_flux"):
            _check_rows(name, getattr(self, name), lambda v: v >= 0, "be ≥ 0")
        for name in ("bulge_hlr", "disk_hlr"):
            _check_rows(name, getattr(self, name), lambda v: v > 0, "be > 0")
        for name in ("bulge_q", "disk_q"):
            _check_rows(name, getattr(self, name), lambda v: (v > 0) & (v <= 1), "be in (0, 1]")

    def __len__(self) -> int:
        return int(self.bulge_flux.shape[0])

    @property
    def n_bands(self) -> int:
        """Number of bands of the fluxes (the second axis of ``bulge_flux``)."""
        return int(self.bulge_flux.shape[1])

    def take(self, index: int | slice | np.ndarray) -> Components:
        """Return the galaxies at ``index`` (a slice, or an array of row numbers or a mask).

        Examples
        --------
        >>> c = Components([[1.0], [2.0]], [[0.0], [0.0]], [1, 1], [1, 1], [1, 1], [1, 1],
        ...                [0, 0], [0, 0], [0, 0])
        >>> c.take(np.array([1])).bulge_flux
        array([[2.]])
        """
        if isinstance(index, (int, np.integer)):
            index = np.array([index])
        return Components(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def _check_rows(name: str, values: np.ndarray, ok, expected: str) -> None:
    """Raise naming ``name`` and the first galaxy whose values fail ``ok``."""
    with np.errstate(invalid="ignore"):
        good = ok(values)
    if good.all():
        return
    bad = np.argwhere(~good)[0]
    galaxy = int(bad[0])
    where = f"galaxy {galaxy}" + (f", band {int(bad[1])}," if values.ndim == 2 else "")
    raise ValidationError(f"{name} must {expected}; {where} has {float(values[tuple(bad)])}")


def _check_bands(components: Components, instrument: Instrument) -> None:
    if components.n_bands != len(instrument.bands):
        raise ValidationError(
            f"the fluxes have {components.n_bands} bands but instrument {instrument.name!r} "
            f"has {len(instrument.bands)} {instrument.band_names}"
        )


def _psf(band: Band, instrument: Instrument, fwhm: float | None = None) -> galsim.GSObject:
    """The PSF of ``band``, with its nominal FWHM or ``fwhm`` (arcsec)."""
    fwhm = band.psf_fwhm if fwhm is None else float(fwhm)
    if instrument.psf_model == "moffat":
        return galsim.Moffat(beta=instrument.moffat_beta, fwhm=fwhm)
    if instrument.psf_model == "kolmogorov":
        return galsim.Kolmogorov(fwhm=fwhm)
    raise ValidationError(
        f"psf_model must be 'moffat' or 'kolmogorov', got {instrument.psf_model!r}"
    )


def _components(components: Components, i: int) -> tuple[galsim.GSObject, galsim.GSObject]:
    """Unit-flux, sheared and shifted bulge and disk of galaxy ``i``."""
    beta = components.position_angle[i] * galsim.radians
    shift = (components.offset_x[i], components.offset_y[i])
    bulge = galsim.DeVaucouleurs(half_light_radius=components.bulge_hlr[i])
    disk = galsim.Exponential(half_light_radius=components.disk_hlr[i])
    bulge = bulge.shear(q=components.bulge_q[i], beta=beta).shift(shift)
    disk = disk.shear(q=components.disk_q[i], beta=beta).shift(shift)
    return bulge, disk


# ----------------------------------------------------------------------------- fast path


@dataclass(frozen=True)
class _FourierGrid:
    """One instrument's FFT grid, PSF × pixel k-images and wrap-correction weights.

    The FFT grid is M × M pixels. k-images are drawn for kx in [0, E] and ky in [-E, E]
    in steps of ``dk``, with E ≥ M/2 (the Nyquist frequency) chosen so that every band's
    PSF × pixel transform is below ``ALIAS_THRESHOLD`` beyond it.
    """

    size: int  # M
    extent: int  # E
    dk: float  # radians per arcsec
    pixel_scale: float
    stamp: int  # W: the stamp is the central W × W of the M × M grid
    psf_pixel: np.ndarray  # (B, 2E+1, E+1) complex64, row r is ky = r - E
    interp: np.ndarray  # (W, nodes) interpolation weights from wrap nodes to pixels

    @property
    def kshape(self) -> tuple[int, int]:
        """Shape of a drawn k-image, (2E + 1, E + 1)."""
        return (2 * self.extent + 1, self.extent + 1)

    @property
    def period(self) -> float:
        """Period of the FFT image on the sky, arcsec."""
        return self.size * self.pixel_scale

    def draw(self, profile: galsim.GSObject, out: np.ndarray) -> None:
        """Draw ``profile``'s k-image into ``out``, of shape :attr:`kshape`.

        Only kx ≥ 0 is drawn: the images are real, so the other half is redundant.
        """
        image = galsim.Image(out, xmin=0, ymin=-self.extent, scale=self.dk, copy=False)
        profile._drawKImage(image)

    def to_stamps(self, kimages: np.ndarray) -> np.ndarray:
        """Inverse FFT of folded k-images (..., M, M/2+1), cropped to (..., W, W)."""
        start = (self.size - self.stamp) // 2
        rows = slice(start, start + self.stamp)
        # Inverse along ky first and keep only the stamp's rows, so that the second
        # (real-output) transform runs on W rows instead of M.
        partial = scipy.fft.ifft(kimages, axis=-2, overwrite_x=True)[..., rows, :]
        return scipy.fft.irfft(partial, n=self.size, axis=-1)[..., rows]

    def wrapped_light(self, components: Components, index: slice, sersic_n: int) -> np.ndarray:
        """Light of a unit-flux component that the periodic FFT wraps into each stamp.

        The FFT image is the true image plus copies shifted by multiples of the grid
        period. Their light in the stamp comes from ≥ 1.5 stamp widths from their
        centres, where the profile is smooth and the PSF no longer matters, so it is the
        bare profile's surface brightness. The near copies are summed on a coarse grid
        of nodes and interpolated to the pixels in log space (the light falls off nearly
        exponentially across a stamp, so its log is close to a low-order polynomial);
        the far copies, whose sum is nearly flat over a stamp, at the stamp centre only.

        Parameters
        ----------
        components : Components
            The galaxies.
        index : slice
            The galaxies of this batch.
        sersic_n : int
            4 for the bulge, 1 for the disk.

        Returns
        -------
        numpy.ndarray
            Nanomaggies per pixel per unit flux, shape (n, W, W).
        """
        prefix = "bulge" if sersic_n == 4 else "disk"
        hlr = getattr(components, f"{prefix}_hlr")[index]
        q = getattr(components, f"{prefix}_q")[index]
        galaxy = (slice(None), None, None, None)  # galaxies first, then (copy, y, x)

        def log_light(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            return _sersic_log_sb(
                sersic_n,
                hlr[galaxy],
                q[galaxy],
                components.position_angle[index][galaxy],
                x - components.offset_x[index][galaxy],
                y - components.offset_y[index][galaxy],
            )

        near, far = _copy_offsets(self.period)  # (copies, 2): x, y in arcsec
        nodes = np.linspace(-0.5, 0.5, _WRAP_NODES) * self.stamp * self.pixel_scale
        near_x = near[:, 0, None, None] + nodes[None, None, :]  # (copies, 1, nodes)
        near_y = near[:, 1, None, None] + nodes[None, :, None]  # (copies, nodes, 1)
        # log of the summed light, without underflow however faint it is
        log_field = scipy.special.logsumexp(log_light(near_x, near_y), axis=1)
        level = np.exp(log_light(far[:, 0, None, None], far[:, 1, None, None])).sum(axis=(1, 2, 3))
        field = np.exp(self.interp @ log_field @ self.interp.T) + level[:, None, None]
        return field * self.pixel_scale**2  # (n, W, W)


@numba.njit(cache=True, nogil=True)
def _combine_and_fold(unit, fluxes, psf_pixel, out):  # pragma: no cover (compiled)
    """out[g, b] = fold((fluxes[g, b, 0] unit[g, 0] + fluxes[g, b, 1] unit[g, 1]) psf_pixel[g, b]).

    ``unit`` (n, 2, 2E+1, E+1) holds the unit-flux bulge and disk k-images, row r being
    ky = r - E; ``psf_pixel`` (n, B, 2E+1, E+1) the PSF × pixel k-image of each galaxy
    and band (a broadcast view of one per band when all galaxies share the PSF);
    ``out`` (n, B, M, M/2+1) receives them in the layout of ``irfft2``.

    The fold is what sampling with pixels does: frequency ky adds onto ky mod M. With
    only kx ≥ 0 stored, a column u past the Nyquist column h = M/2 adds, conjugated and
    with ky negated, onto column M - u. The Nyquist column is doubled, because
    ``irfft`` keeps only the real part of that column, which stands for both +h and -h.
    One compiled pass instead of NumPy's several: the (n, B, 2E+1, E+1) product is
    never stored.
    """
    n, n_bands = fluxes.shape[0], fluxes.shape[1]
    n_rows, n_cols = unit.shape[2], unit.shape[3]
    m = out.shape[2]
    h = m // 2
    e = n_cols - 1
    out[:] = 0
    for g in range(n):
        for b in range(n_bands):
            bulge = fluxes[g, b, 0]
            disk = fluxes[g, b, 1]
            for r in range(n_rows):
                row = (r - e) % m
                mirror = (e - r) % m
                for u in range(min(h, n_cols)):
                    value = bulge * unit[g, 0, r, u] + disk * unit[g, 1, r, u]
                    out[g, b, row, u] += value * psf_pixel[g, b, r, u]
                if e >= h:
                    value = bulge * unit[g, 0, r, h] + disk * unit[g, 1, r, h]
                    out[g, b, row, h] += 2 * value * psf_pixel[g, b, r, h]
                for u in range(h + 1, n_cols):
                    value = bulge * unit[g, 0, r, u] + disk * unit[g, 1, r, u]
                    out[g, b, mirror, m - u] += np.conj(value * psf_pixel[g, b, r, u])


def _sersic_log_sb(
    sersic_n: int, hlr: np.ndarray, q: np.ndarray, beta: np.ndarray, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Log surface brightness of a unit-flux sheared Sérsic profile, as GalSim defines it.

    ``x``, ``y`` are arcsec from the profile's centre; ``q`` and ``beta`` shear it the
    way ``galsim.Shear(q=q, beta=beta)`` does (area-preserving).
    """
    b = scipy.special.gammaincinv(2 * sersic_n, 0.5)
    cos, sin = np.cos(beta), np.sin(beta)
    major, minor = cos * x + sin * y, cos * y - sin * x
    radius = np.sqrt(q * major**2 + minor**2 / q)
    log_central = (
        2 * sersic_n * np.log(b)
        - np.log(2 * np.pi * sersic_n * scipy.special.gamma(2 * sersic_n))
        - 2 * np.log(hlr)
    )
    return log_central - b * (radius / hlr) ** (1 / sersic_n)


@functools.lru_cache(maxsize=8)
def _copy_offsets(period: float) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (x, y) of the near and far periodic copies of an FFT image, arcsec."""
    steps = np.arange(-_WRAP_FAR, _WRAP_FAR + 1)
    a, b = np.meshgrid(steps, steps, indexing="ij")
    ring = np.maximum(np.abs(a), np.abs(b)).ravel()
    offsets = period * np.stack([a.ravel(), b.ravel()], axis=1).astype(float)
    return offsets[(ring > 0) & (ring <= _WRAP_NEAR)], offsets[ring > _WRAP_NEAR]


def _lagrange_weights(nodes: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(points, nodes) matrix of the polynomial interpolation from ``nodes`` to ``points``."""
    weights = np.ones((points.size, nodes.size))
    for k, node in enumerate(nodes):
        for other in np.delete(nodes, k):
            weights[:, k] *= (points - other) / (node - other)
    return weights


@functools.lru_cache(maxsize=8)
def _fourier_grid(
    instrument: Instrument, padding: float = PADDING, fwhm_scale: float = 1.0
) -> _FourierGrid:
    """Build, once per instrument, the FFT grid, PSF × pixel k-images and wrap weights.

    ``fwhm_scale`` < 1 draws the k-images out to where PSFs that much narrower than the
    nominal ones have died out (per-galaxy seeing); the stored k-images stay nominal.
    """
    size = int(scipy.fft.next_fast_len(int(np.ceil(padding * instrument.stamp_size)), True))
    size += size % 2
    scale, stamp = instrument.pixel_scale, instrument.stamp_size
    dk = 2 * np.pi / (size * scale)
    # The FFT puts the profile's origin on pixel 0. Shifting it by M/2 - 1/2 pixels
    # puts it on the corner between the four central pixels of the cropped stamp.
    shift = (size / 2 - 0.5) * scale
    psfs = [
        galsim.Convolve(_psf(band, instrument), galsim.Pixel(scale)).shift(shift, shift)
        for band in instrument.bands
    ]
    # The narrowest PSFs to be drawn on this grid set how far out their transforms reach.
    reaching = psfs
    if fwhm_scale != 1.0:
        reaching = [
            galsim.Convolve(
                _psf(band, instrument, fwhm_scale * band.psf_fwhm), galsim.Pixel(scale)
            ).shift(shift, shift)
            for band in instrument.bands
        ]
    # Draw far past Nyquist once, to find where every band's transform has died out (a
    # PSF so undersampled that it reaches past M - 1 is out of scope: it stops there).
    wide = _FourierGrid(size, size - 1, dk, scale, stamp, np.empty(0), np.empty(0))
    amplitude = np.zeros(wide.kshape)
    for psf in reaching:
        kimage = np.empty(wide.kshape, np.complex128)
        wide.draw(psf, kimage)
        amplitude = np.maximum(amplitude, np.abs(kimage))
    ky = np.abs(np.arange(-wide.extent, wide.extent + 1))[:, None]
    kx = np.arange(wide.extent + 1)[None, :]
    reach = np.maximum(ky, kx)[amplitude >= ALIAS_THRESHOLD]
    extent = int(max(size // 2, reach.max(initial=0)))

    pixels = (np.arange(stamp) - stamp / 2 + 0.5) * scale  # pixel centres, arcsec
    nodes = np.linspace(-0.5, 0.5, _WRAP_NODES) * stamp * scale
    interp = _lagrange_weights(nodes, pixels)
    grid = _FourierGrid(size, extent, dk, scale, stamp, np.empty(0), interp)
    psf_pixel = np.empty((len(psfs), *grid.kshape), np.complex64)
    for b, psf in enumerate(psfs):
        grid.draw(psf, psf_pixel[b])
    psf_pixel.flags.writeable = False
    return _FourierGrid(size, extent, dk, scale, stamp, psf_pixel, interp)


#: The radial transform of a unit-FWHM PSF is tabulated out to this k (radians per
#: arcsec × arcsec of FWHM), where it is ~1e-80 for both models, in this many steps
#: (linear interpolation then errs by ~1e-6 of the peak).
_RADIAL_KMAX = 200.0
_RADIAL_STEPS = 2**16


@functools.lru_cache(maxsize=4)
def _radial_psf(psf_model: str, moffat_beta: float) -> tuple[np.ndarray, np.ndarray]:
    """(q, K(q)): the k-space profile of the unit-FWHM PSF along a radius.

    A PSF of FWHM f has transform K(|k| f), so one table serves every seeing: drawing
    each galaxy's PSF with GalSim instead costs ~4 ms per band and galaxy, ~6× the
    whole fixed-seeing rendering.
    """
    probe = Instrument("probe", (), 1.0, 2, 1.0, psf_model, moffat_beta)
    unit = Band("unit", 1.0, 0.0, 0.0, 1.0, 1.0, "")
    dq = _RADIAL_KMAX / (_RADIAL_STEPS - 1)
    row = np.empty((1, _RADIAL_STEPS), np.complex128)
    image = galsim.Image(row, xmin=0, ymin=0, scale=dq, copy=False)
    _psf(unit, probe)._drawKImage(image)
    return np.arange(_RADIAL_STEPS) * dq, row[0].real.copy()


@functools.lru_cache(maxsize=8)
def _pixel_kimage(instrument: Instrument, fwhm_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """|k| (radians/arcsec) and the shifted pixel's k-image on that grid, per instrument."""
    grid = _fourier_grid(instrument, PADDING, fwhm_scale)
    scale = instrument.pixel_scale
    shift = (grid.size / 2 - 0.5) * scale  # as in _fourier_grid
    pixel = np.empty(grid.kshape, np.complex128)
    grid.draw(galsim.Pixel(scale).shift(shift, shift), pixel)
    ky = (np.arange(2 * grid.extent + 1) - grid.extent)[:, None] * grid.dk
    kx = np.arange(grid.extent + 1)[None, :] * grid.dk
    return np.hypot(kx, ky), pixel


def _draw_psf_pixel(
    grid: _FourierGrid, instrument: Instrument, fwhm: np.ndarray, out: np.ndarray, fwhm_scale: float
) -> None:
    """PSF × pixel k-images of one galaxy with its own FWHM per band into ``out`` (B, ...).

    The PSF's transform is real and radial: interpolated from :func:`_radial_psf` at
    |k| × FWHM, times the pixel's (shifted) transform.
    """
    q, table = _radial_psf(instrument.psf_model, instrument.moffat_beta)
    radius, pixel = _pixel_kimage(instrument, fwhm_scale)
    for b in range(len(instrument.bands)):
        out[b] = np.interp(radius * fwhm[b], q, table, right=0.0) * pixel


def _check_per_galaxy(name: str, values, n: int, n_bands: int, positive: bool) -> np.ndarray:
    """``values`` as a finite (n, n_bands) float64 array (> 0 if ``positive``), else raise."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (n, n_bands):
        raise ValidationError(
            f"{name} must have shape ({n}, {n_bands}), one value per galaxy and band, "
            f"got {values.shape}"
        )
    _check_rows(name, values, np.isfinite, "be finite")
    if positive:
        _check_rows(name, values, lambda v: v > 0, "be > 0")
    return values


def render_noiseless(
    components: Components,
    instrument: Instrument,
    *,
    batch_size: int = BATCH_SIZE,
    progress: bool = False,
    psf_fwhm: np.ndarray | None = None,
) -> np.ndarray:
    """Noiseless PSF- and pixel-convolved stamps of every galaxy in every band.

    Parameters
    ----------
    components : Components
        N galaxies with fluxes in the instrument's bands.
    instrument : Instrument
        Pixel grid, bands and PSFs, e.g. ``instrument("sdss")``.
    batch_size : int
        Galaxies transformed together; bounds the memory of the work arrays.
    progress : bool
        Show a tqdm progress bar over galaxies.
    psf_fwhm : array_like, shape (N, B), optional
        Each galaxy's PSF FWHM per band, arcsec (varying seeing); None uses the
        instrument's nominal FWHMs. The PSF × pixel k-images are then drawn per galaxy.

    Returns
    -------
    numpy.ndarray
        ``float32``, shape ``(N, B, W, W)``, nanomaggies per pixel.

    Examples
    --------
    >>> from clapkit.sim.instruments import instrument
    >>> sdss = instrument("sdss")
    >>> c = Components(np.full((1, 5), 10.0), np.full((1, 5), 20.0), [0.5], [1.5],
    ...                [0.8], [0.4], [0.3], [0.0], [0.0])
    >>> wide = render_noiseless(c, sdss, psf_fwhm=np.full((1, 5), 2.5))
    >>> bool(wide.max() < render_noiseless(c, sdss).max())  # worse seeing, lower peak
    True
    >>> images = render_noiseless(c, sdss)
    >>> images.shape, images.dtype
    ((1, 5, 64, 64), dtype('float32'))
    >>> bool(np.allclose(images.sum(axis=(2, 3)), 30.0, rtol=0.01))
    True
    """
    _check_bands(components, instrument)
    batch_size = check_int(batch_size, "batch_size")
    n, n_bands = len(components), components.n_bands
    if psf_fwhm is None:
        grid = _fourier_grid(instrument)
    else:
        psf_fwhm = _check_per_galaxy("psf_fwhm", psf_fwhm, n, n_bands, positive=True)
        nominal = np.array([band.psf_fwhm for band in instrument.bands])
        # Rounded down to 0.05 so that surveys share a few cached grids.
        narrowest = float(np.min(psf_fwhm / nominal, initial=1.0))
        fwhm_scale = min(1.0, np.floor(narrowest * 20) / 20)
        grid = _fourier_grid(instrument, PADDING, fwhm_scale)
    m = grid.size
    out = np.empty((n, n_bands, grid.stamp, grid.stamp), np.float32)  # (N, B, W, W)
    size = min(batch_size, max(n, 1))
    unit = np.empty((size, 2, *grid.kshape), np.complex64)  # unit-flux bulge, disk
    folded = np.empty((size, n_bands, m, m // 2 + 1), np.complex64)  # (n, B, M, M/2+1)
    fluxes = np.stack([components.bulge_flux, components.disk_flux], axis=-1)  # (N, B, 2)
    if psf_fwhm is not None:
        own_psf = np.empty((size, n_bands, *grid.kshape), np.complex64)
    bar = _progress(n, progress, f"render {instrument.name}")
    for start in range(0, n, batch_size):
        batch = slice(start, min(start + batch_size, n))
        count = batch.stop - start
        for j, i in enumerate(range(start, batch.stop)):
            for slot, profile in enumerate(_components(components, i)):
                if fluxes[i, :, slot].any():
                    grid.draw(profile, unit[j, slot])
                else:  # a bulgeless disk, say: skip the profile work
                    unit[j, slot] = 0
            if psf_fwhm is not None:
                _draw_psf_pixel(grid, instrument, psf_fwhm[i], own_psf[j], fwhm_scale)
        if psf_fwhm is None:
            psf_pixel = np.broadcast_to(grid.psf_pixel, (count, *grid.psf_pixel.shape))
        else:
            psf_pixel = own_psf[:count]
        _combine_and_fold(unit[:count], fluxes[batch].astype(np.float32), psf_pixel, folded[:count])
        stamps = grid.to_stamps(folded[:count])  # (n, B, W, W)
        wrapped = np.stack(
            [grid.wrapped_light(components, batch, 4), grid.wrapped_light(components, batch, 1)],
            axis=1,
        )  # (n, 2, W, W)
        stamps -= np.einsum("gbc,gcyx->gbyx", fluxes[batch], wrapped)
        out[batch] = stamps
        bar.update(count)
    bar.close()
    return out


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="galaxy")


# ----------------------------------------------------------------------------- noise


def add_noise(
    images: np.ndarray,
    instrument: Instrument,
    rng: np.random.Generator,
    sky_brightness: np.ndarray | None = None,
) -> np.ndarray:
    """Add sky and Poisson noise, then subtract the expected sky.

    In each band, expected electrons = (image + sky) × electrons per nanomaggy; the
    counts are Poisson draws; the sky's expected electrons are subtracted and the result
    converted back to nanomaggies. The background is thus sky-subtracted and noisy, as
    in calibrated survey cutouts.

    Parameters
    ----------
    images : numpy.ndarray
        Noiseless stamps, shape ``(N, B, H, W)``, nanomaggies per pixel.
    instrument : Instrument
        Gives per band the sky brightness, zero point and exposure.
    rng : numpy.random.Generator
        Source of the Poisson draws.
    sky_brightness : array_like, shape (N, B), optional
        Each galaxy's sky per band, AB mag per arcsec² (varying conditions); None uses
        the instrument's nominal sky. The draws are the same calls either way.

    Returns
    -------
    numpy.ndarray
        ``float32``, same shape as ``images``.

    Examples
    --------
    >>> from clapkit.sim.instruments import instrument
    >>> sdss = instrument("sdss")
    >>> noisy = add_noise(np.zeros((2, 5, 64, 64), np.float32), sdss, np.random.default_rng(0))
    >>> noisy.shape, noisy.dtype, bool(abs(noisy.mean()) < 0.01)
    ((2, 5, 64, 64), dtype('float32'), True)
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != len(instrument.bands):
        raise ValidationError(
            f"images must have shape (N, {len(instrument.bands)}, H, W) for instrument "
            f"{instrument.name!r}, got {images.shape}"
        )
    per_nmgy = np.array([electrons_per_nanomaggy(b) for b in instrument.bands])[:, None, None]
    if sky_brightness is None:
        sky = np.array(
            [sky_nanomaggies_per_pixel(b, instrument.pixel_scale) for b in instrument.bands]
        )
        sky = sky[:, None, None]  # (B, 1, 1) nanomaggies per pixel
    else:
        sky_brightness = _check_per_galaxy(
            "sky_brightness", sky_brightness, len(images), len(instrument.bands), positive=False
        )
        sky = sky_per_pixel(sky_brightness, instrument.pixel_scale)[:, :, None, None]
    finite = np.isfinite(images).all(axis=(1, 2, 3))
    if not finite.all():
        galaxy = int(np.argmin(finite))
        raise ValidationError(f"images must be finite; galaxy {galaxy} has NaN or inf pixels")
    below = (images < -sky).any(axis=(1, 2, 3))
    if below.any():
        galaxy = int(np.argmax(below))
        level = sky[galaxy] if sky.ndim == 4 else sky
        raise ValidationError(
            f"images must be ≥ -sky, the expected sky in nanomaggies per pixel "
            f"{tuple(np.round(level.ravel(), 4))}; galaxy {galaxy} is below it"
        )
    out = np.empty(images.shape, np.float32)
    # A few MB at a time: the float64 and int64 temporaries stay in cache, and memory
    # stays bounded. The draws are sequential, so the chunking does not change them.
    chunk = max(1, NOISE_CHUNK // max(1, int(np.prod(images.shape[1:]))))
    for start in range(0, len(images), chunk):
        level = sky if sky.ndim == 3 else sky[start : start + chunk]
        electrons = images[start : start + chunk].astype(np.float64)
        electrons += level
        electrons *= per_nmgy  # expected electrons (n, B, H, W)
        counts = rng.poisson(electrons)
        np.subtract(counts, level * per_nmgy, out=electrons)
        electrons /= per_nmgy
        out[start : start + chunk] = electrons
    return out


def render(
    components: Components,
    instrument: Instrument,
    seed: int | None,
    *,
    noise: bool = True,
    progress: bool = False,
    psf_fwhm: np.ndarray | None = None,
    sky_brightness: np.ndarray | None = None,
) -> np.ndarray:
    """Render stamps: :func:`render_noiseless`, then :func:`add_noise` seeded with ``seed``.

    The same components, instrument and seed give bit-identical images.

    Parameters
    ----------
    components : Components
        N galaxies with fluxes in the instrument's bands.
    instrument : Instrument
        Pixel grid, bands, PSFs and depth.
    seed : int or None
        Seed of ``np.random.default_rng`` for the noise.
    noise : bool
        False returns the noiseless stamps.
    progress : bool
        Show a progress bar over galaxies.
    psf_fwhm, sky_brightness : array_like, shape (N, B), optional
        Per-galaxy observing conditions (see :func:`render_noiseless`, :func:`add_noise`).

    Returns
    -------
    numpy.ndarray
        ``float32``, shape ``(N, B, W, W)``, nanomaggies per pixel.

    Examples
    --------
    >>> from clapkit.sim.instruments import instrument
    >>> c = Components(np.full((1, 5), 10.0), np.full((1, 5), 20.0), [0.5], [1.5],
    ...                [0.8], [0.4], [0.3], [0.0], [0.0])
    >>> a = render(c, instrument("cfhtls"), seed=1)
    >>> a.shape, bool(np.array_equal(a, render(c, instrument("cfhtls"), seed=1)))
    ((1, 5, 136, 136), True)
    """
    images = render_noiseless(components, instrument, progress=progress, psf_fwhm=psf_fwhm)
    if noise:
        images = add_noise(images, instrument, np.random.default_rng(seed), sky_brightness)
    return images


# ----------------------------------------------------------------------------- reference


def render_naive(
    components: Components,
    instrument: Instrument,
    seed: int | None = None,
    *,
    noise: bool = False,
    progress: bool = False,
    gsparams: galsim.GSParams | None = None,
    psf_fwhm: np.ndarray | None = None,
) -> np.ndarray:
    """Reference renderer: one GalSim ``drawImage`` per galaxy, band and component.

    Every (galaxy, band, component) builds the convolved profile with that band's flux
    and PSF and draws it with GalSim's own choices (FFT size, folding, aliasing). Slow,
    and kept for exactly that: the tests check :func:`render_noiseless` against it and
    ``benchmarks/sim_speed.py`` times both.

    Parameters
    ----------
    components, instrument, seed, noise, progress
        As in :func:`render`, except that ``noise`` defaults to False.
    gsparams : galsim.GSParams or None
        GalSim's accuracy settings for every profile; None keeps GalSim's defaults
        (which are ~1e-4 of the peak pixel from the exact image). Tighter settings
        give a reference accurate enough to test :func:`render_noiseless` at ~1e-5.
    psf_fwhm : array_like, shape (N, B), optional
        Per-galaxy PSF FWHMs, arcsec, as in :func:`render_noiseless`.

    Returns
    -------
    numpy.ndarray
        ``float32``, shape ``(N, B, W, W)``, nanomaggies per pixel.

    Examples
    --------
    >>> from clapkit.sim.instruments import instrument
    >>> sdss = instrument("sdss")
    >>> c = Components(np.full((1, 5), 10.0), np.full((1, 5), 20.0), [0.5], [1.5],
    ...                [0.8], [0.4], [0.3], [0.0], [0.0])
    >>> fast, naive = render_noiseless(c, sdss), render_naive(c, sdss)
    >>> bool(np.abs(fast - naive).max() < 1e-4 * naive.max())
    True
    """
    _check_bands(components, instrument)
    size, scale = instrument.stamp_size, instrument.pixel_scale
    out = np.zeros((len(components), len(instrument.bands), size, size), np.float32)
    psfs = [_psf(band, instrument).withGSParams(gsparams) for band in instrument.bands]
    if psf_fwhm is not None:
        psf_fwhm = _check_per_galaxy(
            "psf_fwhm", psf_fwhm, len(components), len(instrument.bands), positive=True
        )
    bar = _progress(len(components), progress, f"render {instrument.name} (naive)")
    for i in range(len(components)):
        if psf_fwhm is not None:
            psfs = [
                _psf(band, instrument, psf_fwhm[i, b]).withGSParams(gsparams)
                for b, band in enumerate(instrument.bands)
            ]
        bulge, disk = (profile.withGSParams(gsparams) for profile in _components(components, i))
        for b, psf in enumerate(psfs):
            image = galsim.ImageD(size, size, scale=scale)
            for profile, flux in (
                (bulge, components.bulge_flux[i, b]),
                (disk, components.disk_flux[i, b]),
            ):
                galsim.Convolve(profile.withFlux(flux), psf).drawImage(image, add_to_image=True)
            out[i, b] = image.array
        bar.update(1)
    bar.close()
    if noise:
        out = add_noise(out, instrument, np.random.default_rng(seed))
    return out
