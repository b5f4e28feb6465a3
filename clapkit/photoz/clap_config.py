"""CLAP's settings: the published method by default, this project's variants by name.

Every option that departs from the published code (CLAP-I, Lin et al.) has a name, so a
run records which CLAP it is and the benchmark (``benchmarks/calibration.py``) can set
the variants side by side:

================== ========================== ==========================================
option             published (default)        this project's alternatives
================== ========================== ==========================================
``scl_loss``       ``published``              ``project`` (:mod:`clapkit.nets.losses`)
``k_spacing``      ``published`` (5…2000,     ``log`` (``n_k`` log-spaced values)
                   steps 5/10/20/50)
``pit_includes_    True (the galaxy is among  False (its k nearest *other* galaxies)
self``             its own k neighbours)
``recalibration``  ``train_valid`` (option 2) ``train`` (option 1), ``none``
``recalibration_   ``edge`` (CDF at the bin's ``centre`` (the bin's mid-CDF)
cdf``              upper edge)
``refit_labels``   ``recalibrated``           ``raw`` (the KNN PDFs before recalibration)
``refit_on``       ``target``                 ``valid``, ``train_loo``
``smoothing``      ``adaptive`` (σ = 0.05 ×   ``fixed`` (``smoothing_bins`` bins)
                   the PDF's own std)
``neighbour_       ``exact``                  ``pynndescent`` (approximate; settings in
search``                                      ``neighbour_options``)
================== ========================== ==========================================

``refit_on`` says whose KNN PDFs the refitted estimator learns from; none of the three
reads a spectroscopic redshift of its own training galaxies:

- ``target`` (published): the galaxies being predicted. ``clapkit predict`` computes
  their KNN PDFs, trains the refit head on them and applies it to the same galaxies; it
  adapts to the target sample but needs enough targets (at least
  :data:`MIN_TARGET_REFIT`) and trains at every prediction;
- ``valid``: the validation galaxies, once at ``clapkit train``; the head is then
  applied to any galaxies without the KNN. With ``recalibration="train_valid"`` their
  own redshifts enter the recalibration of their neighbours' PDFs;
- ``train_loo``: the training galaxies, each from its nearest *other* training
  galaxies (leave one out): the largest sample, at the cost of the KNN neighbour search
  over the training set.

The published code trains for a fixed number of iterations (150,000 batches of 64 with
Adam at 1e-4 on a GPU); here ``train`` and ``refit`` (:class:`TrainConfig`) keep the
epoch with the best validation loss, sized for the data at hand.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from clapkit.checks import check_int
from clapkit.errors import ValidationError
from clapkit.nets import SCL_LOSSES, SCLLossWeights
from clapkit.photoz.adaptive_knn import K_GRIDS, PUBLISHED_K_GRID, k_grid
from clapkit.photoz.ensemble import SMOOTHINGS
from clapkit.photoz.neighbours import check_neighbour_search
from clapkit.photoz.recalibrate import CDF_POINTS
from clapkit.photoz.training import TrainConfig

RECALIBRATIONS = ("train_valid", "train", "none")
REFIT_LABELS = ("recalibrated", "raw")
REFIT_ON = ("target", "valid", "train_loo")
#: ``refit_on="target"`` refuses to train a refit head on fewer target galaxies.
MIN_TARGET_REFIT = 50

#: This project's CLAP before it followed the publication (clapkit 0.x): every option at its
#: project variant. The stellar-mass models keep it (their published numbers were measured
#: with it), and the benchmark's ablation sets it beside the published defaults.
PROJECT_VARIANT: dict[str, Any] = {
    "scl_loss": "project",
    "k_spacing": "log",
    "pit_includes_self": False,
    "recalibration": "train",
    "recalibration_cdf": "centre",
    "refit_labels": "raw",
    "refit_on": "valid",
    "smoothing": "fixed",
}

_CHOICES = {
    "scl_loss": SCL_LOSSES,
    "k_spacing": K_GRIDS,
    "recalibration": RECALIBRATIONS,
    "recalibration_cdf": CDF_POINTS,
    "refit_labels": REFIT_LABELS,
    "refit_on": REFIT_ON,
    "smoothing": SMOOTHINGS,
}


@dataclass
class CLAPConfig:
    """CLAP's settings beyond the network sizes (which come from the data).

    Attributes
    ----------
    net : dict
        :class:`clapkit.nets.NetConfig` fields other than the sizes (``kind``, ``width``,
        ``rest_dim``, ...).
    train, refit : dict
        :class:`~clapkit.photoz.training.TrainConfig` of the SCL stage and of the refit.
    loss : dict
        :class:`clapkit.nets.SCLLossWeights`.
    scl_loss : {"published", "project"}
        :func:`clapkit.nets.scl_loss_published` or :func:`clapkit.nets.scl_loss`.
    n_realisations : int
    k_spacing : {"published", "log"}
        The k grid: the published one between ``k_min`` and ``k_max``, or ``n_k``
        log-spaced values.
    k_min, k_max, n_k : int
    max_k_fraction : float
        ``k_max`` is also capped at this fraction of the training galaxies. The W1
        criterion degenerates when k approaches the training-set size: every neighbour's
        PIT is then its rank in the whole sample and the histogram is uniform by
        construction, so the largest k always wins and every PDF becomes the prior
        (measured on 2,100 mock training galaxies: k = 2000 chosen for all, σ_MAD 0.049
        against 0.025 at any fixed k ≤ 100). The paper's 2000 neighbours among ~10⁵–10⁶
        galaxies are a fraction of a per cent to two per cent.
    pit_includes_self : bool
        See :class:`~clapkit.photoz.AdaptiveKNN`.
    n_pit_bins : int
    recalibration : {"train_valid", "train", "none"}
        The PIT histogram the recalibration fits: the training PITs averaged with the
        validation ones (published option 2, the SDSS/CFHTLS default), the training PITs
        alone (option 1) or no recalibration.
    recalibration_cdf : {"edge", "centre"}
        See :func:`~clapkit.photoz.recalibrate`.
    refit_labels : {"recalibrated", "raw"}
        The soft labels of the refit.
    refit_on : {"target", "valid", "train_loo"}
        Whose KNN PDFs the refit learns (see the module docstring).
    smoothing : {"adaptive", "fixed"}
    smoothing_alpha, smoothing_bins : float
        The width of the smoothing before the harmonic mean: ``alpha`` × each PDF's own
        standard deviation, or a fixed number of bins.
    neighbour_search : {"exact", "pynndescent"}
        The adaptive KNN's neighbour search (the published code's is exact).
    neighbour_options : dict
        pynndescent's settings
        (:class:`~clapkit.photoz.approximate_neighbours.PynndescentOptions`); empty for
        the exact search.
    """

    net: dict[str, Any] = field(default_factory=lambda: {"kind": "compact"})
    train: dict[str, Any] = field(default_factory=dict)
    refit: dict[str, Any] = field(default_factory=lambda: {"epochs": 30, "batch_size": 64})
    loss: dict[str, Any] = field(default_factory=dict)
    scl_loss: str = "published"
    n_realisations: int = 3
    k_spacing: str = "published"
    k_min: int = 5
    k_max: int = 2000
    n_k: int = 120
    max_k_fraction: float = 0.02
    pit_includes_self: bool = True
    n_pit_bins: int = 100
    recalibration: str = "train_valid"
    recalibration_cdf: str = "edge"
    refit_labels: str = "recalibrated"
    refit_on: str = "target"
    smoothing: str = "adaptive"
    smoothing_alpha: float = 0.05
    smoothing_bins: float = 1.0
    neighbour_search: str = "exact"
    neighbour_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Completed with pynndescent's defaults, so the run records the settings it used.
        self.neighbour_options = check_neighbour_search(
            self.neighbour_search, self.neighbour_options
        )
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValidationError(
                    f"CLAP option {name} must be one of {list(choices)}, got {getattr(self, name)!r}"
                )
        for name in ("n_realisations", "k_min", "k_max", "n_k", "n_pit_bins"):
            check_int(getattr(self, name), f"CLAP option {name}")
        if self.k_max < self.k_min:
            raise ValidationError(f"k_max={self.k_max} is below k_min={self.k_min}")
        if not 0 < self.max_k_fraction <= 1:
            raise ValidationError(f"max_k_fraction must be in (0, 1], got {self.max_k_fraction}")
        if not isinstance(self.pit_includes_self, bool):
            raise ValidationError(
                f"pit_includes_self must be true or false, got {self.pit_includes_self!r}"
            )
        for name in ("smoothing_alpha", "smoothing_bins"):
            if not getattr(self, name) > 0:
                raise ValidationError(f"{name} must be > 0, got {getattr(self, name)!r}")
        train = TrainConfig.from_dict(self.train)
        TrainConfig.from_dict(self.refit)
        if train.batch_size < 2:
            raise ValidationError(
                f"CLAP's contrastive loss needs batches of at least 2 galaxies, got {train.batch_size}"
            )
        SCLLossWeights(**self.loss)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    def k_grid(self, n_train: int) -> np.ndarray:
        """The k grid for ``n_train`` training galaxies (k_max below ``n_train`` and at most
        ``max_k_fraction`` of it)."""
        cap = max(self.k_min, int(self.max_k_fraction * n_train))
        k_max = min(self.k_max, cap, n_train - 1)
        if k_max < self.k_min:
            raise ValidationError(f"{n_train} training galaxies are too few for k_min={self.k_min}")
        if self.k_spacing == "published" and k_max < PUBLISHED_K_GRID[0]:
            raise ValidationError(
                f"the published k grid starts at k = {PUBLISHED_K_GRID[0]}, but {n_train} "
                f"training galaxies cap k at {k_max} (max_k_fraction={self.max_k_fraction}): "
                "use more galaxies, a larger max_k_fraction or k_spacing 'log'"
            )
        return k_grid(self.k_spacing, self.k_min, k_max, self.n_k)

    def check_sizes(self, n_train: int, n_valid: int) -> None:
        """Refuse split sizes this configuration cannot train on, before any work."""
        if n_train < 2:
            raise ValidationError(f"CLAP needs at least 2 training galaxies, got {n_train}")
        if n_valid == 0:
            raise ValidationError(
                "CLAP needs a non-empty validation split (best epoch, recalibration, refit)"
            )
        grid = self.k_grid(n_train)
        if self.refit_on == "train_loo" and grid[-1] > n_train - 1:
            raise ValidationError(
                f"refit_on='train_loo' needs more than {grid[-1]} training galaxies"
            )
