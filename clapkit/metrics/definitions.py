"""What each reported metric is and what value is good: one source for every page.

The dashboards show these as column-header tooltips and beside summary numbers; the
glossary ``docs/metrics.md`` defines the same names at length
(``tests/metrics/test_definitions.py`` checks that every :attr:`MetricDefinition.doc`
term appears there). The definitions follow the code that computes each number:
:mod:`clapkit.metrics` (photo-z), :mod:`clapkit.translate.evaluate` and
:mod:`clapkit.translate.sampling` (translation), :func:`clapkit.interpret.mass.mass_metrics`
(stellar mass, where Δ = log M*_est − log M*_true in dex).

Three namespaces, because a name means different things in different pillars
(``sigma_mad`` of redshifts has a 1 + z, the stellar-mass ``sigma`` is in dex):
:data:`PHOTOZ`, :data:`TRANSLATION`, :data:`MASS` and :data:`MI` (the MI decomposition).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MASS", "MI", "PHOTOZ", "TRANSLATION", "MetricDefinition", "tooltip", "tooltips"]


@dataclass(frozen=True)
class MetricDefinition:
    """One reported number.

    Attributes
    ----------
    label : str
        How tables title it.
    definition : str
        What it is, in one or two sentences.
    good : str
        The value a good method reaches.
    unit : str
        Its unit (``""``: dimensionless), as astropy writes it.
    doc : str
        The term under which ``docs/metrics.md`` defines it.
    """

    label: str
    definition: str
    good: str
    unit: str = ""
    doc: str = ""

    def tooltip(self) -> str:
        """The definition, the good value and the unit as one tooltip text."""
        unit = f" Unit: {self.unit}." if self.unit else ""
        return f"{self.label}: {self.definition} Good: {self.good}.{unit}"


_DZ = "δz = (z_phot − z_true)/(1 + z_true), z_phot the PDF mean"

#: Photo-z metrics of ``clapkit evaluate`` (``metrics.json``, ``galaxies.h5``).
PHOTOZ: dict[str, MetricDefinition] = {
    "sigma_mad": MetricDefinition(
        "σ_MAD",
        f"1.4826 × median |δz − median δz|, {_DZ}: the scatter of the point estimates, "
        "blind to outliers.",
        "small (SDSS photometry ≈ 0.01–0.02)",
        doc="sigma_mad",
    ),
    "bias": MetricDefinition("bias", f"mean δz, {_DZ}.", "0", doc="bias"),
    "outlier_fraction": MetricDefinition(
        "outlier fraction",
        "fraction of galaxies with |δz| > 0.05 (the evaluation's threshold; 0.15 is usual "
        "for deeper surveys).",
        "0",
        doc="outlier_fraction",
    ),
    "crps": MetricDefinition(
        "CRPS",
        "mean over galaxies of ∫ (F(z) − H(z − z_true))² dz, F the PDF's CDF: rewards "
        "PDFs both sharp and right; equals |z_phot − z_true| for a spike.",
        "0",
        doc="crps",
    ),
    "pit_w1": MetricDefinition(
        "PIT W1",
        "1-Wasserstein distance between the PIT values F(z_true) and the uniform "
        "distribution on [0, 1].",
        "0 (calibrated PDFs)",
        doc="w1",
    ),
    "pit_ks": MetricDefinition(
        "PIT KS",
        "Kolmogorov–Smirnov statistic of the PIT values against U(0, 1).",
        "0",
        doc="ks",
    ),
    "coverage_68": MetricDefinition(
        "cov68",
        "fraction of true redshifts inside the central 68% credible interval.",
        "0.68 (below: over-confident; above: under-confident)",
        doc="coverage_68",
    ),
    "coverage_95": MetricDefinition(
        "cov95",
        "fraction of true redshifts inside the central 95% credible interval.",
        "0.95",
        doc="coverage_95",
    ),
    "pit": MetricDefinition(
        "PIT",
        "F(z_true): the PDF's CDF at the true redshift.",
        "uniform on [0, 1] over many galaxies; 0 or 1 is a miss",
        doc="pit",
    ),
    "z_phot": MetricDefinition(
        "z_phot", "the PDF's mean redshift (CLAP's point estimate).", "z_true", doc="point_estimate"
    ),
    "novelty": MetricDefinition(
        "novelty",
        "percentile of the galaxy's mean latent distance to its ten nearest training "
        "galaxies among the same distance of the training galaxies.",
        "below 99 (above: unlike the training set, distrust its PDF)",
        unit="%",
        doc="novelty_percentile",
    ),
    "n": MetricDefinition(
        "n", "number of galaxies in the bin.", "enough for the metrics to mean something"
    ),
}

_PROBE = "of the photo-z probe applied to the images"
_PEAK = "of the peak-flux estimator (k-NN on the colours at the galaxy's peak pixel)"

#: Translation metrics of ``clapkit translate evaluate`` (``evaluation.json``).
TRANSLATION: dict[str, MetricDefinition] = {
    **{
        f"photoz_{key}": MetricDefinition(
            item.label, f"{item.definition[:-1]}, {_PROBE}.", item.good, item.unit, item.doc
        )
        for key, item in PHOTOZ.items()
        if key in ("sigma_mad", "bias", "outlier_fraction", "crps", "pit_w1")
    },
    **{
        f"peakz_{key}": MetricDefinition(
            f"peak {item.label}", f"{item.definition[:-1]}, {_PEAK}.", item.good, item.unit, "peakz"
        )
        for key, item in PHOTOZ.items()
        if key in ("sigma_mad", "bias", "outlier_fraction", "crps", "pit_w1")
    },
    "psnr": MetricDefinition(
        "PSNR",
        "peak signal-to-noise ratio of the translated against the real image, "
        "10 log10(range² / MSE), averaged over bands.",
        "high (the real images against themselves: infinite)",
        unit="dB",
        doc="psnr",
    ),
    "ssim": MetricDefinition(
        "SSIM",
        "structural similarity of the translated and real images, averaged over bands.",
        "1",
        doc="ssim",
    ),
    "size_rel_error": MetricDefinition(
        "size err",
        "median over galaxies of |σ_t − σ_r| / σ_r, σ the HSM size, averaged over bands.",
        "0",
        doc="size_rel_error",
    ),
    "flux_rel_error": MetricDefinition(
        "flux err",
        "median over galaxies of |F_t − F_r| / |F_r|, F the total flux, averaged over bands.",
        "0",
        doc="flux_rel_error",
    ),
    "peak_flux_rel_error": MetricDefinition(
        "peak err",
        "median over galaxies of the relative error of the peak-pixel flux, averaged over bands.",
        "0",
        doc="peak_flux_rel_error",
    ),
    "noise_power_max_rel_error": MetricDefinition(
        "noise P err",
        "worst radial bin, over bands, of |P_t / P_r − 1|, P the power spectrum of the "
        "source-free background noise.",
        "0 (1: twice or none of the real noise power)",
        doc="noise_power_max_rel_error",
    ),
    "n_samples": MetricDefinition(
        "samples",
        "translations drawn per galaxy (1: a deterministic model).",
        "—",
        doc="n_samples",
    ),
    "sample_pixel_spread": MetricDefinition(
        "pixel spread",
        "median over galaxies of the RMS over pixels of the standard deviation across "
        "samples, over the real image's background σ, averaged over bands.",
        "about 1 for a model of the noise (the draws differ by the sky noise)",
        unit="σ sky",
        doc="sample_pixel_spread",
    ),
    "sample_flux_spread": MetricDefinition(
        "flux spread",
        "standard deviation across samples of the flux over |real flux|; median over "
        "galaxies, mean over bands.",
        "small next to flux err",
        doc="sample_flux_spread",
    ),
    "sample_size_spread": MetricDefinition(
        "size spread",
        "standard deviation across samples of the HSM size over the real size; median "
        "over galaxies, mean over bands.",
        "small next to size err",
        doc="sample_size_spread",
    ),
    "sample_flux_spread_ratio": MetricDefinition(
        "flux spread / err",
        "flux spread over the flux error of the first sample.",
        "well below 1 (the error is not the draw's)",
        doc="sample_flux_spread_ratio",
    ),
    "sample_size_spread_ratio": MetricDefinition(
        "size spread / err",
        "size spread over the size error of the first sample.",
        "well below 1",
        doc="sample_size_spread_ratio",
    ),
}
for _column, _what in (
    ("flux", "total flux"),
    ("size", "HSM size"),
    ("ellipticity", "ellipticity"),
    ("concentration", "concentration"),
    ("peak", "peak-pixel flux"),
):
    TRANSLATION[f"ks_{_column}"] = MetricDefinition(
        f"KS {_column}",
        f"two-sample Kolmogorov–Smirnov statistic of the translated against the real "
        f"{_what} distribution (reference band): the largest gap between their CDFs.",
        "0",
        doc="ks_<column>",
    )
    TRANSLATION[f"ks_{_column}_p"] = MetricDefinition(
        f"KS {_column} p",
        f"p-value of that test for the {_what}.",
        "not small (small: the distributions differ)",
        doc="ks_<column>",
    )

#: Stellar-mass metrics of ``clapkit interpret train`` (Δ in dex).
MASS: dict[str, MetricDefinition] = {
    "sigma": MetricDefinition(
        "σ",
        "1.4826 × median |Δ − median Δ|, Δ = log M*_est − log M*_true (σ_MAD without 1 + z).",
        "small (≈ 0.1–0.2 dex from photometry)",
        unit="dex",
        doc="sigma",
    ),
    "median_offset": MetricDefinition(
        "median offset",
        "median Δ: the systematic offset of the estimates.",
        "0",
        unit="dex",
        doc="median_offset",
    ),
    "rms": MetricDefinition("rms", "root mean square of Δ.", "small", unit="dex", doc="rms"),
    "outlier_fraction": MetricDefinition(
        "outliers",
        "fraction of galaxies with |Δ| > 0.3 dex.",
        "0",
        doc="outlier_fraction",
    ),
    "crps": MetricDefinition("CRPS", "mean CRPS of the log M* PDFs.", "0", unit="dex", doc="crps"),
    "pit_w1": MetricDefinition(
        "PIT W1",
        "1-Wasserstein distance of the PIT values to U(0, 1).",
        "0",
        doc="w1",
    ),
}

_MI = "mutual information between log M* and"
#: The MI decomposition of ``clapkit interpret pid`` (means over galaxies, in nats).
MI: dict[str, MetricDefinition] = {
    "mi_1": MetricDefinition("MI₁", f"{_MI} the first input.", "high", "nat", "mi_1"),
    "mi_2": MetricDefinition("MI₂", f"{_MI} the second input.", "high", "nat", "mi_2"),
    "mi_12": MetricDefinition("MI₁₂", f"{_MI} both inputs together.", "high", "nat", "mi_12"),
    "redundancy": MetricDefinition(
        "redundancy",
        "min(MI₁, MI₂): what either input alone tells of the mass.",
        "—",
        "nat",
        "redundancy",
    ),
    "unique_1": MetricDefinition(
        "unique₁", "MI₁ − redundancy: what only the first input tells.", "—", "nat", "unique_1"
    ),
    "unique_2": MetricDefinition(
        "unique₂", "MI₂ − redundancy: what only the second input tells.", "—", "nat", "unique_2"
    ),
    "synergy": MetricDefinition(
        "synergy",
        "MI₁₂ − redundancy − unique₁ − unique₂: what only both inputs together tell.",
        "—",
        "nat",
        "synergy",
    ),
}

_NAMESPACES = {"photoz": PHOTOZ, "translation": TRANSLATION, "mass": MASS, "mi": MI}


def tooltip(key: str, namespace: str = "photoz") -> str | None:
    """The tooltip of metric ``key`` of ``namespace``, None for a key it lacks.

    Examples
    --------
    >>> tooltip("bias").startswith("bias: mean δz")
    True
    >>> tooltip("sigma", "mass").endswith("Unit: dex.")
    True
    >>> tooltip("no_such_metric") is None
    True
    """
    found = _NAMESPACES[namespace].get(key)
    return None if found is None else found.tooltip()


def tooltips(keys: list[str], namespace: str = "photoz", suffix: str = "") -> dict[str, str]:
    """Tooltips of the keys of ``namespace`` among ``keys`` (others are left out).

    ``suffix`` is stripped from a key before its lookup (``sigma_mad_a`` with ``"_a"``).

    Examples
    --------
    >>> sorted(tooltips(["sigma_mad_a", "bin"], suffix="_a"))
    ['sigma_mad_a']
    """
    out = {}
    for key in keys:
        base = key[: -len(suffix)] if suffix and key.endswith(suffix) else key
        text = tooltip(base, namespace)
        if text is not None:
            out[key] = text
    return out
