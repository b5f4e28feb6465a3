"""What an MI classifier reads about N galaxies: catalog features, images, or both.

As published (``InterpretSM_scl_mi.py`` of github.com/QiufanLin/InterpretSM, commit
4d3b8f9: ``input_keys`` and ``inputadd_keys``), a classifier reads a main input (images
through a CNN, or catalog columns) and auxiliary catalog columns fed beside it (E(B−V) for
every input; the photometry as well in the union of images and photometry). Here an input
is :class:`ClassifierInputs`: ``features`` (N, F) catalog columns, ``images`` (N, C, H, W)
scaled stamps, either or both; :meth:`ClassifierInputs.union` joins two inputs the way the
published union network does (the images through the CNN, every column beside them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clapkit.errors import ValidationError
from clapkit.interpret.information.pointwise import _as_features

__all__ = ["ClassifierInputs", "as_classifier_inputs"]


@dataclass(frozen=True)
class ClassifierInputs:
    """One input of the MI estimator, one row per galaxy.

    Attributes
    ----------
    features : ndarray of float64, shape (N, F), or None
        Catalog columns, finite.
    images : ndarray of float32, shape (N, C, H, W), or None
        Image stamps, scaled as the networks read them, finite.

    Examples
    --------
    Photometry and E(B−V) joined with images and E(B−V): E(B−V) enters the union once.

    >>> ebv = np.array([[0.01], [0.03], [0.02], [0.05]])
    >>> photometry = ClassifierInputs(features=np.hstack([np.arange(8.0).reshape(4, 2), ebv]))
    >>> images = ClassifierInputs(images=np.zeros((4, 3, 8, 8), np.float32), features=ebv)
    >>> joined = ClassifierInputs.union(photometry, images)
    >>> joined.features.shape, joined.images.shape, len(joined)
    ((4, 3), (4, 3, 8, 8), 4)
    """

    features: NDArray[np.float64] | None = None
    images: NDArray[np.float32] | None = None

    def __post_init__(self) -> None:
        if self.features is None and self.images is None:
            raise ValidationError("an MI input needs catalog features, images or both")
        if self.features is not None:
            object.__setattr__(self, "features", _as_features(self.features, "features"))
        if self.images is not None:
            images = np.asarray(self.images, dtype=np.float32)
            if images.ndim != 4:
                raise ValidationError(
                    f"images must have shape (N, channels, height, width), got {images.shape}"
                )
            bad = np.flatnonzero(~np.isfinite(images.reshape(len(images), -1)).all(axis=1))
            if bad.size:
                raise ValidationError(f"images are not finite in rows {bad[:5].tolist()}")
            object.__setattr__(self, "images", images)
        both = self.features is not None and self.images is not None
        if both and len(self.features) != len(self.images):
            raise ValidationError(
                f"features have {len(self.features)} rows but images {len(self.images)}"
            )

    def __len__(self) -> int:
        return len(self.features) if self.features is not None else len(self.images)

    @property
    def n_features(self) -> int:
        """Catalog columns per galaxy (0 without features)."""
        return 0 if self.features is None else self.features.shape[1]

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        """(channels, height, width) of the images, or None."""
        return None if self.images is None else tuple(self.images.shape[1:])

    def take(self, rows: ArrayLike) -> ClassifierInputs:
        """The galaxies at ``rows``."""
        rows = np.asarray(rows)
        return ClassifierInputs(
            features=None if self.features is None else self.features[rows],
            images=None if self.images is None else self.images[rows],
        )

    @staticmethod
    def union(first: ClassifierInputs, second: ClassifierInputs) -> ClassifierInputs:
        """Both inputs together: their columns side by side and their image channels
        stacked (two image inputs must share their stamp size). A catalog column that
        both inputs read (E(B−V), given to every input as published) enters once.
        """
        if len(first) != len(second):
            raise ValidationError(
                f"the two inputs have {len(first)} and {len(second)} galaxies; expected the same"
            )
        features = [f for f in (first.features, second.features) if f is not None]
        images = [i for i in (first.images, second.images) if i is not None]
        if len(images) == 2 and images[0].shape[2:] != images[1].shape[2:]:
            raise ValidationError(
                f"the two inputs' images differ in size ({images[0].shape[2:]} and "
                f"{images[1].shape[2:]}); the union stacks their channels"
            )
        return ClassifierInputs(
            features=_unique_columns(np.hstack(features)) if features else None,
            images=np.concatenate(images, axis=1) if images else None,
        )


def _unique_columns(values: NDArray) -> NDArray:
    """``values`` (N, F) without repeated columns: the shared auxiliary data once."""
    keep: list[int] = []
    for index in range(values.shape[1]):
        if not any(np.array_equal(values[:, index], values[:, kept]) for kept in keep):
            keep.append(index)
    return values[:, keep]


def as_classifier_inputs(values: ArrayLike | ClassifierInputs, name: str) -> ClassifierInputs:
    """``values`` as :class:`ClassifierInputs`: an array is catalog features.

    Examples
    --------
    >>> as_classifier_inputs([1.0, 2.0, 3.0], "x1").features.shape
    (3, 1)
    """
    if isinstance(values, ClassifierInputs):
        return values
    return ClassifierInputs(features=_as_features(values, name))
