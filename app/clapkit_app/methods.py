"""One identity per method: the name, colour, line dash and place every page gives it.

Every page, plot, legend and table of the dashboards takes a method's name, colour and
order from here, so that "CLAP raw KNN" is the same word and the same colour on the
landing page, in the calibration explorer (as method A or B), in the galaxy view's PDFs
and wherever else it appears. The colours are Okabe & Ito's colour-blind-safe set
(without black, which vanishes in the dark theme); the methods beyond its seven
colours take colours of Paul Tol's muted set and a dash of their own, so that no two
methods share both. Translation models get their identity here too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

__all__ = [
    "IDEAL_COLOUR",
    "LANDING_METHODS",
    "LANDING_WHY",
    "METHODS",
    "MODELS",
    "Identity",
    "identity",
    "method_colour",
    "method_label",
    "model_identity",
    "ordered",
]


class Identity(NamedTuple):
    """How the dashboards show one method (or translation model)."""

    label: str
    colour: str
    dash: str = "solid"


#: Every known method, in the order pages list them: CLAP's stages, then the baselines.
METHODS: dict[str, Identity] = {
    "clap": Identity("CLAP (harmonic ensemble)", "#0072B2"),
    "clap_refit": Identity("CLAP refitted", "#56B4E9"),
    "clap_recal": Identity("CLAP recalibrated", "#009E73"),
    "clap_raw": Identity("CLAP raw KNN", "#CC79A7"),
    "clap_scl": Identity("CLAP SCL network", "#332288", "dashed"),
    "softmax": Identity("softmax CNN", "#D55E00"),
    "mcdropout": Identity("MC dropout", "#E69F00"),
    "gmm": Identity("Gaussian mixture (CRPS)", "#999933", "dashed"),
    "ensemble": Identity("deep ensemble", "#882255", "dashed"),
    "temperature": Identity("temperature scaling", "#44AA99", "dashed"),
    "knn_photometry": Identity("KNN on photometry", "#777777", "dashdot"),
    "flexzboost": Identity("FlexZBoost (RAIL)", "#AA4499", "dashdot"),
}
#: A method this table does not know: its own name, and grey dots.
_UNKNOWN_COLOUR = "#888888"

#: The methods the landing page's plots draw (those the run has), and why these.
LANDING_METHODS = ("clap", "clap_raw", "softmax", "temperature", "ensemble")
LANDING_WHY = (
    "CLAP's final PDFs and its raw KNN stage, against the three baselines that bracket "
    "calibration: a plain softmax CNN, the same network temperature-scaled, and a deep "
    "ensemble. More curves would hide each other; every method is in the table above and "
    "in the calibration explorer."
)

#: The colour of every "ideal" line (uniform PIT density, the coverage diagonal) and of
#: the true redshift: a mid grey that both the light and the dark theme show.
IDEAL_COLOUR = "#888888"

#: Translation models (``clapkit translate``) and the real images they are compared with.
#: The translation page names models by their keys (its select and table show those), so
#: the labels are the keys; the colours are fixed per model.
MODELS: dict[str, Identity] = {
    "real": Identity("real", "#777777"),
    "nrgan": Identity("nrgan", "#D55E00"),
    "nrgan_smooth": Identity("nrgan_smooth", "#56B4E9", "dashed"),
    "swin": Identity("swin", "#009E73"),
    "srgan": Identity("srgan", "#CC79A7"),
    "capsule": Identity("capsule", "#E69F00"),
    "diffusion": Identity("diffusion", "#0072B2"),
}


def identity(method: str) -> Identity:
    """The name, colour and dash of ``method`` (its own name and grey for one not known).

    Examples
    --------
    >>> identity("clap_raw").label
    'CLAP raw KNN'
    >>> identity("my_method")
    Identity(label='my_method', colour='#888888', dash='dotted')
    """
    return METHODS.get(method, Identity(method, _UNKNOWN_COLOUR, "dotted"))


def method_label(method: str) -> str:
    """The name a dashboard shows for ``method``.

    Examples
    --------
    >>> method_label("softmax")
    'softmax CNN'
    """
    return identity(method).label


def method_colour(method: str) -> str:
    """The colour of ``method`` in every plot.

    Examples
    --------
    >>> method_colour("clap")
    '#0072B2'
    """
    return identity(method).colour


def model_identity(model: str) -> Identity:
    """The name, colour and dash of a translation model (or ``"real"``).

    Examples
    --------
    >>> model_identity("nrgan_smooth")
    Identity(label='nrgan_smooth', colour='#56B4E9', dash='dashed')
    """
    return MODELS.get(model, Identity(model, _UNKNOWN_COLOUR, "dotted"))


def ordered(methods: Iterable[str]) -> list[str]:
    """``methods`` in the dashboards' order: known methods as in :data:`METHODS`, then
    the others as given.

    Examples
    --------
    >>> ordered(["softmax", "my_method", "clap_raw", "clap"])
    ['clap', 'clap_raw', 'softmax', 'my_method']
    """
    methods = list(methods)
    return [m for m in METHODS if m in methods] + [m for m in methods if m not in METHODS]
