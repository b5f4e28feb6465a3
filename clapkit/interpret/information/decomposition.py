"""The minimum-MI decomposition into redundancy, unique parts and synergy.

With MI₁, MI₂ and MI₁₂ (both inputs), information is split by the minimum-MI rule:
redundancy R = min(MI₁, MI₂), unique U_k = MI_k − R, synergy S = MI₁₂ − R − U₁ − U₂, either
per galaxy (:class:`Decomposition`, as published) or on sample means
(:func:`mmi_decomposition`). Pure numpy; all information is in nats.
:meth:`Decomposition.intervals` adds bootstrap intervals over the galaxies to every term.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clapkit.errors import ValidationError
from clapkit.metrics.bootstrap import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    bootstrap_draws,
    check_confidence,
    percentile_interval,
)

#: The decomposition's terms, in the order every summary lists them.
TERMS = ("mi_1", "mi_2", "mi_12", "redundancy", "unique_1", "unique_2", "synergy")


def mmi_decomposition(mi_1: float, mi_2: float, mi_12: float) -> dict[str, float]:
    """Minimum-MI decomposition of sample-level MIs: redundancy = min(MI₁, MI₂).

    This is the decomposition with closed forms (Barrett 2015 showed it is the unique
    one for jointly Gaussian variables with a one-dimensional target), used by
    :func:`gaussian_check`. It differs from the per-galaxy one of :class:`Decomposition`:
    the mean of per-galaxy minima is at most the minimum of the means, with equality only
    when the same input is the less informative one for every galaxy. The per-galaxy
    redundancy is therefore smaller, both unique parts larger by the same amount, and the
    synergy (MI₁₂ − MI₁ − MI₂ + R) smaller by it too.

    Returns
    -------
    dict
        ``mi_1, mi_2, mi_12, redundancy, unique_1, unique_2, synergy`` as floats.

    Examples
    --------
    >>> mmi_decomposition(0.5, 0.25, 1.0)["synergy"]
    0.5
    """
    values = {"mi_1": mi_1, "mi_2": mi_2, "mi_12": mi_12}
    for key, value in values.items():
        if not math.isfinite(value):
            raise ValidationError(f"{key} must be finite, got {value}")
    redundancy = min(mi_1, mi_2)
    unique_1, unique_2 = mi_1 - redundancy, mi_2 - redundancy
    synergy = mi_12 - redundancy - unique_1 - unique_2
    values.update(redundancy=redundancy, unique_1=unique_1, unique_2=unique_2, synergy=synergy)
    return {key: float(value) for key, value in values.items()}


@dataclass(frozen=True, eq=False)
class Decomposition:
    """Per-galaxy MI of input 1, input 2 and both, and its minimum-MI decomposition.

    The decomposition is done galaxy by galaxy, as published: R_i = min(MI₁ᵢ, MI₂ᵢ),
    U_kᵢ = MI_kᵢ − R_i, S_i = MI₁₂ᵢ − R_i − U₁ᵢ − U₂ᵢ. Pointwise MI can be negative, and
    so can any term of a galaxy; means over many galaxies are what to read. See
    :func:`mmi_decomposition` for how the means differ from the decomposition of mean MIs
    (:meth:`mmi`).

    Attributes
    ----------
    mi_1, mi_2, mi_12 : numpy.ndarray, shape (N,)
        Pointwise MI (nats) from input 1, input 2 and both.

    Examples
    --------
    >>> d = Decomposition([1.0, 0.25], [0.5, 0.75], [1.5, 1.0])
    >>> d.redundancy.tolist(), d.synergy.tolist()
    ([0.5, 0.25], [0.5, 0.25])
    >>> d.mean()["redundancy"], d.mmi()["redundancy"]
    (0.375, 0.625)
    >>> d.by_group(["early", "late"])["late"]["unique_2"]
    0.5
    >>> lo, hi = d.intervals(n_resamples=200)["mean"]["redundancy"]
    >>> bool(lo <= 0.375 <= hi)
    True
    """

    mi_1: NDArray[np.float64]
    mi_2: NDArray[np.float64]
    mi_12: NDArray[np.float64]

    def __post_init__(self) -> None:
        arrays = {}
        for name in ("mi_1", "mi_2", "mi_12"):
            values = np.asarray(getattr(self, name), dtype=float)
            if values.ndim != 1:
                raise ValidationError(f"{name} must be 1-d (one value per galaxy)")
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                raise ValidationError(f"{name} is not finite at galaxies {bad[:5].tolist()}")
            arrays[name] = values
        sizes = {name: values.size for name, values in arrays.items()}
        if len(set(sizes.values())) != 1:
            raise ValidationError(f"mi_1, mi_2 and mi_12 differ in length: {sizes}")
        for name, values in arrays.items():
            object.__setattr__(self, name, values)

    def __len__(self) -> int:
        return self.mi_1.size

    @property
    def redundancy(self) -> NDArray[np.float64]:
        return np.minimum(self.mi_1, self.mi_2)

    @property
    def unique_1(self) -> NDArray[np.float64]:
        return self.mi_1 - self.redundancy

    @property
    def unique_2(self) -> NDArray[np.float64]:
        return self.mi_2 - self.redundancy

    @property
    def synergy(self) -> NDArray[np.float64]:
        return self.mi_12 - self.redundancy - self.unique_1 - self.unique_2

    def _mean(self, rows: NDArray[np.bool_] | slice) -> dict[str, float]:
        return {term: float(np.mean(getattr(self, term)[rows])) for term in TERMS}

    def mean(self) -> dict[str, float]:
        """Mean of every per-galaxy term (nats): ``mi_1, mi_2, mi_12, redundancy, ...``."""
        if len(self) == 0:
            raise ValidationError("the decomposition holds no galaxies")
        return self._mean(slice(None))

    def by_group(self, labels: ArrayLike) -> dict[str, dict[str, float]]:
        """:meth:`mean` within each group, keyed by the label as ``str``.

        ``labels`` has one entry per galaxy, e.g. from
        :func:`clapkit.interpret.galaxy_types.galaxy_types`.
        """
        labels = np.asarray(labels)
        if labels.shape != (len(self),):
            raise ValidationError(
                f"labels must have one entry per galaxy ({len(self)}), got shape {labels.shape}"
            )
        return {str(label): self._mean(labels == label) for label in np.unique(labels)}

    def mmi(self) -> dict[str, float]:
        """The sample-level decomposition of the mean MIs (:func:`mmi_decomposition`)."""
        means = self.mean()
        return mmi_decomposition(means["mi_1"], means["mi_2"], means["mi_12"])

    def intervals(
        self,
        n_resamples: int = DEFAULT_RESAMPLES,
        confidence: float = DEFAULT_CONFIDENCE,
        seed: int = 0,
    ) -> dict[str, dict[str, tuple[float, float]]]:
        """Bootstrap intervals over galaxies of every term of :meth:`mean` and :meth:`mmi`.

        The galaxies are resampled with replacement (:func:`~clapkit.metrics.bootstrap.
        bootstrap_draws`) and every term recomputed on each draw; an interval is the
        central ``confidence`` range of those values
        (:func:`~clapkit.metrics.bootstrap.percentile_interval`). Every term, of both
        decompositions, uses the same draws, so the intervals are consistent with each
        other (e.g. a draw's redundancy and unique parts add up to its MIs).

        This is the sampling uncertainty of the measured galaxies only: the pointwise MIs
        are held fixed, the classifiers that gave them are not retrained per draw, so the
        uncertainty of the classifiers (training sample, initialisation) is not included.

        Parameters
        ----------
        n_resamples : int
            Number of draws.
        confidence : float
            Probability covered, between 0 and 1.
        seed : int
            Seed of the draws: the same seed gives the same intervals.

        Returns
        -------
        dict
            ``{"mean": {term: (lo, hi)}, "mmi": {term: (lo, hi)}}`` over :data:`TERMS`,
            in nats.

        Examples
        --------
        >>> mi = np.random.default_rng(0).normal(0.5, 1.0, size=400)
        >>> lo, hi = Decomposition(mi, mi, 2 * mi).intervals()["mean"]["mi_1"]
        >>> round(hi - lo, 1)  # ≈ 2 × 1.96 / √400 = 0.2
        0.2
        """
        if len(self) == 0:
            raise ValidationError("the decomposition holds no galaxies")
        confidence = check_confidence(confidence)
        draws = bootstrap_draws(len(self), n_resamples, seed)
        terms = np.stack([getattr(self, term) for term in TERMS])  # (T, N)
        means = np.empty((len(draws), len(TERMS)))  # (R, T)
        for r, index in enumerate(draws):
            means[r] = terms[:, index].mean(axis=1)
        columns = [TERMS.index(term) for term in ("mi_1", "mi_2", "mi_12")]
        mmi = [mmi_decomposition(*map(float, row)) for row in means[:, columns]]  # R dicts
        return {
            "mean": {
                term: percentile_interval(means[:, t], confidence) for t, term in enumerate(TERMS)
            },
            "mmi": {
                term: percentile_interval([row[term] for row in mmi], confidence) for term in TERMS
            },
        }
