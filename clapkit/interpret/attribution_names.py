"""The attribution methods of ``clapkit interpret attribute``, and SmoothGrad's defaults.

:mod:`clapkit.interpret.attributions` computes the maps (and imports PyTorch); the
settings, the command line, the readers and the dashboards only need the names, so they
live here, in a module that imports no PyTorch.
"""

from __future__ import annotations

__all__ = ["LABELS", "METHODS", "SMOOTHGRAD_NOISE", "SMOOTHGRAD_SAMPLES"]

#: Attribution methods, in the order the stage computes and stores them.
METHODS = ("integrated_gradients", "saliency", "smoothgrad")
#: How each method is named in figures and tables.
LABELS = {
    "integrated_gradients": "integrated gradients",
    "saliency": "saliency",
    "smoothgrad": "SmoothGrad",
}
#: Noisy copies SmoothGrad averages per image. Smilkov et al. (2017, "SmoothGrad: removing
#: noise by adding noise", Fig. 4) saw little change beyond about 50; 25 costs half as
#: much, a little less than integrated gradients' 32 steps (one gradient each), which
#: matters on a CPU, and leaves the noise of the average only √2 above that at 50. On the
#: test suite's tiny image model (32 galaxies, 5 × 16 × 16 pixels) maps from 25 copies
#: rank-correlate with maps from 400 at a median ρ of 0.89 (0.94 from 50, 0.80 from 10).
SMOOTHGRAD_SAMPLES = 25
#: Noise σ as a fraction of each image's max − min; Smilkov et al. (Fig. 3) found 10–20 %
#: best.
SMOOTHGRAD_NOISE = 0.15
