"""The names of the stellar-mass metrics in ``mass/metrics.json``, and their old ones.

With Δ = log M*_est − log M*_true in dex (the estimate is the PDF mean), the metrics of
:func:`clapkit.interpret.mass.mass_metrics` are the ones below. "bias" is kept for the
photo-z convention only, the mean of δz = (z_phot − z_true)/(1 + z_true)
(:func:`clapkit.metrics.bias`): the stellar-mass offset is a median and in dex, so it
has its own name. Files written before the rename store it as ``bias``;
:func:`upgrade_mass_metrics` reads them. This module imports no PyTorch, so the
dashboards and the figures can use it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MASS_METRICS", "RENAMED_MASS_METRICS", "upgrade_mass_metrics"]

#: Every stored metric with what it is.
MASS_METRICS: dict[str, str] = {
    "sigma": "1.4826 × median |Δ − median Δ| (σ_MAD in dex, without the 1 + z)",
    "median_offset": "median Δ (dex): the systematic offset of the estimates",
    "rms": "root mean square of Δ (dex)",
    "outlier_fraction": "fraction of galaxies with |Δ| above the outlier threshold",
    "crps": "mean CRPS of the PDFs (dex)",
    "pit_w1": "1-Wasserstein distance of the PIT values to uniform",
}
#: Old stored names and their current ones.
RENAMED_MASS_METRICS: dict[str, str] = {"bias": "median_offset"}


def upgrade_mass_metrics(row: dict[str, Any]) -> dict[str, Any]:
    """One input set's stored metrics under the current names (old files say ``bias``).

    Examples
    --------
    >>> upgrade_mass_metrics({"sigma": 0.2, "bias": -0.01})
    {'sigma': 0.2, 'median_offset': -0.01}
    """
    return {RENAMED_MASS_METRICS.get(key, key): value for key, value in row.items()}
