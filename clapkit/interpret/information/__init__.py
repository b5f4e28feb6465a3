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
- :mod:`.estimator`: a small tabular classifier (:func:`fit_classifier`,
  :func:`estimate_information`), the only module here that imports torch;
- :mod:`.gaussian`: the jointly Gaussian check (:class:`GaussianModel`,
  :func:`gaussian_check`), where every term is known in closed form.

Every public name is importable from this package. The first two modules load without
torch, and so does this package until a name from the last two is asked for. All
information is in nats.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from clapkit.interpret.information.decomposition import TERMS, Decomposition, mmi_decomposition
from clapkit.interpret.information.pointwise import (
    PROBABILITY_FLOOR,
    ROW_SUM_TOLERANCE,
    bin_prior,
    pointwise_information,
)

if TYPE_CHECKING:
    from clapkit.interpret.information.estimator import (
        BinClassifier,
        ClassifierConfig,
        estimate_information,
        fit_classifier,
    )
    from clapkit.interpret.information.gaussian import (
        GAUSSIAN_TOLERANCE_NATS,
        GaussianModel,
        equal_width_bins,
        gaussian_check,
    )

#: Names whose modules import torch, loaded on first use so that reading a decomposition
#: does not pay for (or require) torch.
_LAZY = {
    "BinClassifier": "estimator",
    "ClassifierConfig": "estimator",
    "estimate_information": "estimator",
    "fit_classifier": "estimator",
    "GAUSSIAN_TOLERANCE_NATS": "gaussian",
    "GaussianModel": "gaussian",
    "equal_width_bins": "gaussian",
    "gaussian_check": "gaussian",
}

__all__ = [
    "GAUSSIAN_TOLERANCE_NATS",
    "PROBABILITY_FLOOR",
    "ROW_SUM_TOLERANCE",
    "TERMS",
    "BinClassifier",
    "ClassifierConfig",
    "Decomposition",
    "GaussianModel",
    "bin_prior",
    "equal_width_bins",
    "estimate_information",
    "fit_classifier",
    "gaussian_check",
    "mmi_decomposition",
    "pointwise_information",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
