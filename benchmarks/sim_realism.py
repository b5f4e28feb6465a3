"""Realism of the mock survey: a simulated SDSS-like sample against the real SDSS catalog.

Simulates ``n`` galaxies in the ``sdss`` instrument (:func:`clapkit.sim.simulate_to_file`
into a temporary directory) and compares them with the 10,000 real SDSS main-sample
galaxies of :func:`clapkit.data.sdss_catalog`. Like is compared with like: both
catalogs' ``mag_<b>`` are SDSS asinh model magnitudes corrected for Galactic extinction.
Prints JSON with

- ``redshift`` and ``r_magnitude``: two-sample Kolmogorov–Smirnov statistics
  (``scipy.stats.ks_2samp``) and the medians of both samples;
- ``colours``: g−r, u−g and r−i per redshift bin — real and simulated medians, their
  difference and its standard error, the spreads (1.4826 × MAD) and the counts;
- ``photometry_on_images``: on a random subsample, the sum of the r-band stamp (the whole
  64×64 stamp as aperture: 25″ across, the largest aperture there is, with no
  aperture-correction model to get wrong) against the catalog's observed ``flux_r``
  (nanomaggies, not extinction corrected, like the images). The expected scatter of the
  difference is the image noise summed over the stamp — Poisson noise of source and sky,
  from the instrument's ``electrons_per_nanomaggy`` and ``sky_nanomaggies_per_pixel`` —
  plus the catalog's own flux error (recovered from ``magerr_r``), since the two are
  independent noise draws. The catalog flux is the total flux, while a stamp misses the
  light beyond its edges (the wings of large de Vaucouleurs bulges), so the raw ratio is
  below one and grows worse with size (``by_size``). The same comparison is repeated
  after multiplying the catalog flux by each galaxy's noiseless stamp fraction, from its
  catalog shapes rendered with unit flux (``*_after_stamp_correction``): what is left
  should be noise alone;
- ``goals``: every median colour within 0.05 mag of the real one in every redshift bin
  with ≥ 50 real galaxies; KS(z) < 0.05; KS(r) < 0.05. A missed goal shows as ``false``,
  with what missed it in ``goals_detail``.

Real galaxies enter the comparison when their five model fluxes and inverse variances
are positive (``flux_ok``, 9,988 of 10,000), the same galaxies the population prior is
fitted to.

Usage: ``python benchmarks/sim_realism.py [--n 5000] [--seed 0] [--workers W]
[--n-images 1000] [--quick] [--out FILE]``. ``--quick`` simulates 1,000 galaxies.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from _report import emit
from scipy import stats

import clapkit
from clapkit.data import GalaxySet, sdss_catalog
from clapkit.data.sdss import ASINH_SOFTENING
from clapkit.metrics.point import MAD_TO_SIGMA
from clapkit.sim import instrument, simulate_to_file
from clapkit.sim.dust import disk_attenuation
from clapkit.sim.instruments import electrons_per_nanomaggy, sky_nanomaggies_per_pixel
from clapkit.sim.morphology import mean_log_inverse_axis_ratio
from clapkit.sim.render import Components, render_noiseless
from clapkit.sim.survey import PETROSIAN_R_LIMIT

Z_EDGES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.6)
HLR_EDGES = (0.0, 1.5, 2.5, 4.0, 100.0)  # arcsec, of the catalog column hlr
COLOURS = (("g", "r"), ("u", "g"), ("r", "i"))
COLOUR_TOLERANCE = 0.05  # mag
MIN_REAL_PER_BIN = 50
KS_TOLERANCE = 0.05
_POGSON = 2.5 / np.log(10.0)
#: Fraction of a Gaussian within ±3σ, the reference for ``fraction_within_3sigma``.
GAUSSIAN_3SIGMA = 0.9973


def robust_spread(x: np.ndarray) -> float:
    """1.4826 × median absolute deviation: σ for a Gaussian, robust to outliers."""
    return float(MAD_TO_SIGMA * np.median(np.abs(x - np.median(x)))) if x.size else float("nan")


def median(x: np.ndarray) -> float:
    return float(np.median(x)) if x.size else float("nan")


def ks(real: np.ndarray, sim: np.ndarray) -> dict:
    result = stats.ks_2samp(real, sim)
    return {
        "ks_statistic": float(result.statistic),
        "ks_pvalue": float(result.pvalue),
        "median_real": median(real),
        "median_sim": median(sim),
    }


def colour_table(real, sim, edges) -> dict:
    """Median colours of both samples per redshift bin."""
    out = {}
    for blue, red in COLOURS:
        rows = []
        for lo, hi in itertools.pairwise(edges):
            values = {}
            for name, cat in (("real", real), ("sim", sim)):
                z = np.asarray(cat["z"])
                inside = (z >= lo) & (z < hi)
                values[name] = (
                    np.asarray(cat[f"mag_{blue}"])[inside] - np.asarray(cat[f"mag_{red}"])[inside]
                )
            n_real, n_sim = values["real"].size, values["sim"].size
            spread_real, spread_sim = robust_spread(values["real"]), robust_spread(values["sim"])
            # Standard error of a median ≈ 1.2533 σ / √n; of the difference, in quadrature.
            error = 1.2533 * np.hypot(
                spread_real / np.sqrt(max(n_real, 1)), spread_sim / np.sqrt(max(n_sim, 1))
            )
            difference = median(values["sim"]) - median(values["real"])
            rows.append(
                {
                    "z_min": lo,
                    "z_max": hi,
                    "n_real": n_real,
                    "n_sim": n_sim,
                    "median_real": median(values["real"]),
                    "median_sim": median(values["sim"]),
                    "difference": difference,
                    "difference_error": float(error) if n_real and n_sim else float("nan"),
                    "spread_real": spread_real,
                    "spread_sim": spread_sim,
                    "within_tolerance": bool(abs(difference) <= COLOUR_TOLERANCE),
                    "counts_for_goal": n_real >= MIN_REAL_PER_BIN,
                }
            )
        out[f"{blue}-{red}"] = rows
    return out


def flux_from_asinh(mag: np.ndarray, band: str) -> np.ndarray:
    """Invert the SDSS asinh magnitude: flux in nanomaggies."""
    b = ASINH_SOFTENING[band]
    return 2.0 * b * np.sinh(-np.asarray(mag) / _POGSON - np.log(b)) * 1e9


def catalog_flux_error(flux: np.ndarray, magerr: np.ndarray, band: str) -> np.ndarray:
    """σ of the catalog flux (nanomaggies) from its asinh magnitude error."""
    two_b = 2.0 * ASINH_SOFTENING[band] * 1e9
    return magerr * two_b * np.sqrt(1.0 + (flux / two_b) ** 2) / _POGSON


def stamp_fractions(catalog, camera) -> np.ndarray:
    """Fraction of each galaxy's r-band light that falls inside its stamp (noiseless).

    Renders the galaxy's own bulge + disk shapes with unit total r flux, split between
    bulge and disk as in its observed light: ``bulge_fraction`` is the r-band B/T before
    the disk's inclination dust, which dims the disk by ``disk_attenuation``.
    """
    r_plane = camera.band_names.index("r")
    z = np.asarray(catalog["z"], dtype=np.float64)
    disk_dust = disk_attenuation(
        np.asarray(catalog["disk_q"]),
        np.asarray(catalog["disk_gamma_v"]),
        z,
        "sdss",
        mean_log_inverse_axis_ratio(),
    )[:, r_plane]
    bt = np.asarray(catalog["bulge_fraction"], dtype=np.float64)
    disk = (1.0 - bt) * 10 ** (-0.4 * disk_dust)
    bulge_share = bt / (bt + disk)
    bulge_flux = np.zeros((z.size, len(camera.bands)))
    disk_flux = np.zeros_like(bulge_flux)
    bulge_flux[:, r_plane] = bulge_share
    disk_flux[:, r_plane] = 1.0 - bulge_share
    components = Components(
        bulge_flux=bulge_flux,
        disk_flux=disk_flux,
        bulge_hlr=np.asarray(catalog["bulge_hlr"]),
        disk_hlr=np.asarray(catalog["disk_hlr"]),
        bulge_q=np.asarray(catalog["bulge_q"]),
        disk_q=np.asarray(catalog["disk_q"]),
        position_angle=np.radians(np.asarray(catalog["position_angle"])),
        offset_x=np.asarray(catalog["offset_x"]),
        offset_y=np.asarray(catalog["offset_y"]),
    )
    images = render_noiseless(components, camera)[:, r_plane]
    return images.sum(axis=(1, 2), dtype=np.float64)


def image_photometry(path: Path, n_images: int, seed: int) -> dict:
    """Stamp sums in r against the catalog's observed r flux, raw and stamp-corrected."""
    camera = instrument("sdss")
    band = camera.band("r")
    r_plane = camera.band_names.index("r")
    per_nmgy = electrons_per_nanomaggy(band)
    sky = sky_nanomaggies_per_pixel(band, camera.pixel_scale)
    with GalaxySet.load(path) as galaxies:
        n = len(galaxies)
        rows = np.sort(np.random.default_rng(seed).choice(n, min(n_images, n), replace=False))
        catalog = galaxies.catalog[rows]
        stamps = galaxies.stacks["sdss"].take(rows).images[:, r_plane]  # (n, H, W)
    n_pixels = stamps.shape[-2] * stamps.shape[-1]
    image_sum = stamps.sum(axis=(1, 2), dtype=np.float64)
    flux = np.asarray(catalog["flux_r"], dtype=np.float64)
    sigma_catalog = catalog_flux_error(flux, np.asarray(catalog["magerr_r"], np.float64), "r")
    # Noiseless flux as observed (Milky Way dust included), from the true magnitude.
    true_flux = flux_from_asinh(
        np.asarray(catalog["true_mag_r"]) + np.asarray(catalog["extinction_r"]), "r"
    )
    fraction = stamp_fractions(catalog, camera)
    # Image noise of the stamp sum: Poisson electrons of source and sky over every pixel.
    sigma_image = np.sqrt((np.maximum(fraction * true_flux, 0.0) + sky * n_pixels) / per_nmgy)
    pull = (image_sum - flux) / np.hypot(sigma_image, sigma_catalog)
    corrected = (image_sum - fraction * flux) / np.hypot(sigma_image, fraction * sigma_catalog)
    hlr = np.asarray(catalog["hlr"])
    by_size = []
    for lo, hi in itertools.pairwise(HLR_EDGES):
        inside = (hlr >= lo) & (hlr < hi)
        by_size.append(
            {
                "hlr_min": lo,
                "hlr_max": hi,
                "n": int(inside.sum()),
                "median_ratio": median((image_sum / flux)[inside]),
                "median_stamp_fraction": median(fraction[inside]),
            }
        )
    return {
        "n": int(rows.size),
        "aperture": f"whole {stamps.shape[-1]}x{stamps.shape[-2]} stamp",
        "electrons_per_nanomaggy": per_nmgy,
        "sky_nanomaggies_per_pixel": sky,
        "median_flux_r": median(flux),
        "median_sigma_image": median(sigma_image),
        "median_sigma_catalog": median(sigma_catalog),
        "median_ratio": median(image_sum / flux),
        "fraction_within_3sigma": float(np.mean(np.abs(pull) < 3)),
        "gaussian_fraction_within_3sigma": GAUSSIAN_3SIGMA,
        "pull_median": median(pull),
        "pull_spread": robust_spread(pull),
        "median_ratio_to_true_flux": median(image_sum / true_flux),
        "median_stamp_fraction": median(fraction),
        "median_ratio_after_stamp_correction": median(image_sum / (fraction * flux)),
        "fraction_within_3sigma_after_stamp_correction": float(np.mean(np.abs(corrected) < 3)),
        "pull_median_after_stamp_correction": median(corrected),
        "pull_spread_after_stamp_correction": robust_spread(corrected),
        "by_size": by_size,
    }


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="simulated galaxies")
    parser.add_argument("--quick", action="store_true", help="simulate 1,000 galaxies")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--n-images", type=int, default=1000, help="stamps for photometry")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    n = 1000 if args.quick else args.n

    real_set = sdss_catalog()
    real = real_set.catalog[np.asarray(real_set.catalog["flux_ok"], dtype=bool)]
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "mock.h5"
        start = time.perf_counter()
        simulate_to_file(path, n, args.seed, instruments=("sdss",), workers=args.workers)
        seconds = time.perf_counter() - start
        with GalaxySet.load(path) as galaxies:
            sim = galaxies.catalog.copy()
            selection_efficiency = galaxies.meta["selection_efficiency"]
        photometry = image_photometry(path, args.n_images, args.seed)

    colours = colour_table(real, sim, Z_EDGES)
    redshift = ks(np.asarray(real["z"]), np.asarray(sim["z"]))
    r_magnitude = {"column": "mag_r", **ks(np.asarray(real["mag_r"]), np.asarray(sim["mag_r"]))}
    # Where a mismatch in r comes from: the selection is made on Petrosian r.
    real_petro = np.asarray(real["petromag_r"])
    r_magnitude["petromag_r"] = ks(real_petro, np.asarray(sim["petromag_r"]))
    r_magnitude["real_fraction_petromag_r_above_limit"] = float(
        np.mean(real_petro >= PETROSIAN_R_LIMIT)
    )
    r_magnitude["sim_selection_efficiency"] = selection_efficiency
    missed = [
        {
            "colour": name,
            "z_min": row["z_min"],
            "z_max": row["z_max"],
            "difference": row["difference"],
        }
        for name, rows in colours.items()
        for row in rows
        if row["counts_for_goal"] and not row["within_tolerance"]
    ]
    worst = max(
        (
            abs(row["difference"])
            for rows in colours.values()
            for row in rows
            if row["counts_for_goal"]
        ),
        default=float("nan"),
    )
    report = {
        "clapkit_version": clapkit.__version__,
        "machine": f"{platform.node()} {platform.machine()} {platform.processor()}".strip(),
        "n_sim": n,
        "n_real": len(real_set),
        "n_real_used": len(real),
        "seed": args.seed,
        "workers": args.workers,
        "simulation_seconds": seconds,
        "galaxies_per_second": n / seconds,
        "redshift": redshift,
        "r_magnitude": r_magnitude,
        "colours": colours,
        "photometry_on_images": photometry,
        "goals": {
            "colour_medians_within_0.05": not missed,
            "ks_redshift_below_0.05": redshift["ks_statistic"] < KS_TOLERANCE,
            "ks_r_magnitude_below_0.05": r_magnitude["ks_statistic"] < KS_TOLERANCE,
        },
        "goals_detail": {
            "colour_bins_missed": missed,
            "worst_colour_offset": worst,
            "colour_rule": (
                f"|median_sim - median_real| <= {COLOUR_TOLERANCE} mag in every bin with "
                f">= {MIN_REAL_PER_BIN} real galaxies"
            ),
        },
    }
    return emit(report, args.out)


if __name__ == "__main__":
    main()
