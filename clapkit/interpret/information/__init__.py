"""Per-galaxy mutual information from classifiers, split into redundancy, unique parts, synergy.

How much does an input tell about a galaxy's stellar mass, and what does a second input
add? As published, the target is binned and a classifier is trained per input; for galaxy
i with true bin b_i its pointwise mutual information (MI) is

    MI_i = −log p_prior(b_i) − CE_i,    CE_i = −log q_i(b_i),

the drop from the prior's surprise to the classifier's, with p_prior the bin frequencies of
the training sample. Averaged over galaxies it estimates I(bin; input), on average from
below, short by how far the classifier is from the true p(bin | input). With MI₁, MI₂ and MI₁₂ (both inputs)
each galaxy's information is split by the minimum-MI rule: redundancy R = min(MI₁, MI₂),
unique U_k = MI_k − R, synergy S = MI₁₂ − R − U₁ − U₂.

Modules, bottom up:

- :mod:`.pointwise`: pure-array functions (:func:`bin_prior`, :func:`pointwise_information`);
- :mod:`.decomposition`: the per-galaxy :class:`Decomposition` and the sample-level
  :func:`mmi_decomposition`;
- :mod:`.inputs`: what a classifier reads (:class:`ClassifierInputs`: catalog features,
  images or both, and the union of two inputs);
- :mod:`.estimator`: the classifiers — an MLP, with a CNN in front for images
  (:func:`fit_classifier`, :func:`estimate_information`), the only module here that
  imports torch;
- :mod:`.gaussian`: the jointly Gaussian check (:class:`GaussianModel`,
  :class:`GaussianCheckSettings`, :func:`gaussian_check`), where every term is known in closed form.

Every public name is importable from this package. The first three modules load without
torch, and so does this package until a name from the last two is asked for
(:func:`clapkit.lazy.lazy_exports`). All
information is in nats.
"""

from __future__ import annotations

from clapkit.lazy import lazy_exports

#: Every public name and its module. The estimator and the Gaussian check import torch;
#: importing only on first use lets a reader of decompositions run without it.
_EXPORTS = {
    "PROBABILITY_FLOOR": "pointwise",
    "ROW_SUM_TOLERANCE": "pointwise",
    "bin_prior": "pointwise",
    "pointwise_information": "pointwise",
    "TERMS": "decomposition",
    "Decomposition": "decomposition",
    "mmi_decomposition": "decomposition",
    "ClassifierInputs": "inputs",
    "as_classifier_inputs": "inputs",
    "BinClassifier": "estimator",
    "ClassifierConfig": "estimator",
    "estimate_information": "estimator",
    "fit_classifier": "estimator",
    "GAUSSIAN_TOLERANCE_NATS": "gaussian",
    "GaussianModel": "gaussian",
    "GaussianCheckSettings": "gaussian",
    "equal_width_bins": "gaussian",
    "gaussian_check": "gaussian",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
