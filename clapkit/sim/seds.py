"""Galaxy SEDs as kcorrect template mixtures, and their fluxes in any band.

kcorrect (Blanton & Roweis 2007) describes a galaxy's spectrum as a non-negative mixture
of five NMF templates built from stellar-population models. Its ``Kcorrect`` object
projects the redshifted templates through filter responses on a redshift grid (the
"A-matrix"); building it takes seconds per band set, so each band set is built once per
process and kept (:func:`kcorrect_model`). Worker processes started by ``fork`` inherit
the models the parent built.

Coefficients in kcorrect's convention give observed maggies at the galaxy's redshift and
scale with the inverse square of the luminosity distance. clapkit also uses *intrinsic*
coefficients, ``coeffs × d_L²`` (d_L in Mpc), which do not depend on where the galaxy is
put: moving a galaxy to a new redshift divides them by the new d_L².
"""

from __future__ import annotations

import functools
import gc
import warnings
from typing import Any

import numpy as np
from astropy.cosmology import Planck18
from numpy.typing import ArrayLike, NDArray

from clapkit.errors import ValidationError
from clapkit.sim.disk_cache import disk_cached

#: kcorrect response files of each band set, in wavelength order.
BAND_SETS: dict[str, tuple[str, ...]] = {
    "sdss": ("sdss_u0", "sdss_g0", "sdss_r0", "sdss_i0", "sdss_z0"),
    "cfhtls": (
        "cfht_megacam_u",
        "cfht_megacam_g",
        "cfht_megacam_r",
        "cfht_megacam_i",
        "cfht_megacam_z",
    ),
    "wise": ("wise_w1", "wise_w2", "wise_w3"),
}
#: Band names of each band set, as used in catalog columns.
BAND_NAMES: dict[str, tuple[str, ...]] = {
    "sdss": ("u", "g", "r", "i", "z"),
    "cfhtls": ("u", "g", "r", "i", "z"),
    "wise": ("w1", "w2", "w3"),
}
#: Redshift grid of the A-matrix: the SDSS main sample ends near z = 0.6.
REDSHIFT_RANGE = (0.0, 0.8)
N_REDSHIFT = 400
#: The cosmology of kcorrect's derived masses, used for every distance in the simulator.
COSMOLOGY = Planck18
NANOMAGGIES_PER_MAGGY = 1e9


@functools.lru_cache(maxsize=8)
def kcorrect_model(band_set: str):
    """The kcorrect model for a band set, built once per process (and kept on disk
    between processes, :mod:`clapkit.sim.disk_cache`).

    Examples
    --------
    >>> kcorrect_model("sdss") is kcorrect_model("sdss")
    True
    """
    import kcorrect.response

    if band_set not in BAND_SETS:
        raise ValidationError(f"unknown band set {band_set!r}; known: {sorted(BAND_SETS)}")
    model, responses = _kcorrect_model_and_responses(band_set)
    # kcorrect's methods look the filter responses up in its process-wide ResponseDict,
    # which building a model fills; a model read from the disk cache brings them along.
    registry = kcorrect.response.ResponseDict()
    for name, response in responses.items():
        registry.setdefault(name, response)
    return model


@disk_cached
def _kcorrect_model_and_responses(band_set: str) -> tuple[Any, dict[str, Any]]:
    """A new kcorrect model for ``band_set`` and the filter responses it reads."""
    import kcorrect.kcorrect
    import kcorrect.response

    model = without_kcorrect_file_warnings(
        kcorrect.kcorrect.Kcorrect,
        responses=list(BAND_SETS[band_set]),
        redshift_range=list(REDSHIFT_RANGE),
        nredshift=N_REDSHIFT,
    )
    registry = kcorrect.response.ResponseDict()
    names = dict.fromkeys([*model.responses, *model.responses_out])
    return model, {name: registry[name] for name in names}


def without_kcorrect_file_warnings(function, *args, **kwargs):
    """Call a kcorrect function, collecting the files it leaves open without a warning.

    kcorrect 5.1 opens its template, filter and Vega files without closing them; Python
    warns (ResourceWarning) whenever the garbage collector later finds them, wherever
    that happens. Collecting right after the call, inside a filter for that warning
    alone, keeps the leak where it is made and every other ResourceWarning visible.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        result = function(*args, **kwargs)
        gc.collect()
    return result


def luminosity_distance_mpc(z: ArrayLike) -> NDArray[np.float64]:
    """Luminosity distance in Mpc in the simulator's cosmology (Planck18)."""
    return COSMOLOGY.luminosity_distance(np.asarray(z, dtype=np.float64)).to_value("Mpc")


def observed_coeffs(intrinsic: ArrayLike, z: ArrayLike) -> NDArray[np.float64]:
    """kcorrect coefficients of galaxies with ``intrinsic`` coefficients put at ``z``."""
    return np.asarray(intrinsic, dtype=np.float64) / luminosity_distance_mpc(z)[:, None] ** 2


def band_fluxes(band_set: str, z: ArrayLike, coeffs: ArrayLike) -> NDArray[np.float64]:
    """Observed fluxes in nanomaggies, shape (N, bands), of SEDs given by kcorrect coefficients.

    Parameters
    ----------
    band_set : {"sdss", "cfhtls", "wise"}
    z : array_like, shape (N,)
        Redshifts, inside :data:`REDSHIFT_RANGE`.
    coeffs : array_like, shape (N, 5)
        Observed-frame kcorrect coefficients (see :func:`observed_coeffs`).

    Examples
    --------
    >>> f = band_fluxes("sdss", [0.1], [[1e-13, 0, 0, 0, 0]])
    >>> f.shape, bool(f[0, 2] > f[0, 0])  # the old template is red: r brighter than u
    ((1, 5), True)
    """
    z = np.atleast_1d(np.asarray(z, dtype=np.float64))
    coeffs = np.atleast_2d(np.asarray(coeffs, dtype=np.float64))
    if coeffs.shape[0] != z.size:
        raise ValidationError(f"coeffs has {coeffs.shape[0]} rows for {z.size} redshifts")
    outside = ~((z >= REDSHIFT_RANGE[0]) & (z <= REDSHIFT_RANGE[1]))  # NaN is outside too
    if np.any(outside):
        raise ValidationError(
            f"redshift {z[outside][0]} (index {int(np.flatnonzero(outside)[0])}) is outside the "
            f"simulator's range {REDSHIFT_RANGE}"
        )
    model = kcorrect_model(band_set)
    maggies = model.reconstruct(redshift=z.astype(np.float32), coeffs=coeffs.astype(np.float32))
    return np.asarray(maggies, dtype=np.float64).reshape(z.size, -1) * NANOMAGGIES_PER_MAGGY


@functools.lru_cache(maxsize=1)
def old_templates() -> NDArray[np.bool_]:
    """Which kcorrect templates hold only old stars (no star formation in the last 300 Myr).

    The bulge of a simulated galaxy gets its light from these templates only, which is
    what makes bulges redder than disks.

    Examples
    --------
    >>> old_templates().sum() >= 1
    np.True_
    """
    model = kcorrect_model("sdss")
    n_templates = model.templates.nsed
    derived = model.derived(
        redshift=np.full(n_templates, 0.05, dtype=np.float32),
        coeffs=np.eye(n_templates, dtype=np.float32),
    )
    return np.asarray(derived["b300"]) < 1e-6
