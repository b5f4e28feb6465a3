"""Image translation between surveys: the models and what their translations preserve.

- :mod:`~clapkit.translate.tasks`: the tasks (``s2s``, ``s2c``);
- :mod:`~clapkit.translate.pixels`: the flux-conserving move to the target grid, the
  per-band pixel scaling;
- :mod:`~clapkit.translate.models`: NR-GAN and the SwinIR-like, SRGAN, capsule and
  diffusion models, built by name with :func:`clapkit.translate.registry.build_model`;
- :mod:`~clapkit.translate.training` and :mod:`~clapkit.translate.apply`: train, resume,
  load and apply a model;
- :mod:`~clapkit.translate.image_metrics` (pure arrays), :mod:`~clapkit.translate.probe`
  (the photo-z probe) and :mod:`~clapkit.translate.evaluate` (the evaluation table);
- :mod:`~clapkit.translate.results`: reading the evaluation back, without torch (what the
  dashboards call).

The image metrics are re-exported here; they are imported on first use, so that the
command line (which reads only the model names) starts without GalSim and PyTorch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "background_std",
    "galaxy_peak_pixels",
    "morphology",
    "noise_power_spectrum",
    "peak_flux_ratios",
    "pixel_metrics",
    "relative_errors",
    "source_mask",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("clapkit.translate.image_metrics"), name)
    raise AttributeError(f"module 'clapkit.translate' has no attribute {name!r}")
