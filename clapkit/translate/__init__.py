"""Image translation between surveys: the models and their evaluation.

This first slice holds the image-level fidelity metrics of :mod:`clapkit.translate.image_metrics`
(pure-array functions on ``(N, B, H, W)`` stacks); the translation models and the
``evaluate`` workflow that compares every model against the real target images come on top.
"""

from clapkit.translate.image_metrics import (
    background_std,
    morphology,
    noise_power_spectrum,
    peak_flux_ratios,
    pixel_metrics,
    relative_errors,
    source_mask,
)

__all__ = [
    "background_std",
    "morphology",
    "noise_power_spectrum",
    "peak_flux_ratios",
    "pixel_metrics",
    "relative_errors",
    "source_mask",
]
