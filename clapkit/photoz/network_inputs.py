"""What a photo-z network reads from a GalaxySet, frozen at training time.

A network trained on one band set, image size or feature list cannot be applied to data
with another: :class:`InputSpec` records all of it (plus the feature standardisation and
the redshift grid) in JSON next to the weights, and :func:`network_inputs` refuses, with a
message naming the difference, data that does not match.

Two kinds of input:

- ``images``: one instrument's stack, the central ``crop`` × ``crop`` pixels, scaled by
  ``sign(x) log(1 + |x|)`` as in the CLAP paper, plus scalar columns (``ebv``).
  Optionally each band is first divided by the galaxy's catalog flux in that band
  (``flux_columns``), which leaves its shape and removes its brightness and colours.
- ``features``: catalog columns, standardised with the training split's mean and
  standard deviation. A feature named ``a-b`` is the difference of columns ``a`` and
  ``b`` (a colour). By default (``colours``) the colours of adjacent bands, one reference
  magnitude and every magnitude error, the inputs of RAIL's estimators and of
  :func:`~clapkit.photoz.photometry_features`; ``magnitudes`` gives every ``mag_*`` with
  its ``magerr_*`` instead. Non-detections
  (sentinel magnitudes such as 99, masked entries) are replaced by the band's limiting
  magnitude when the spec has a :class:`~clapkit.photoz.nondetections.Nondetections`
  policy, and refused otherwise.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm.auto import tqdm

from clapkit.data import GalaxySet
from clapkit.errors import ValidationError
from clapkit.metrics import check_edges
from clapkit.photoz.inputs import check_training_redshifts
from clapkit.photoz.nondetections import Nondetections, check_no_sentinels

KINDS = ("images", "features")
#: Rows read from an image stack at once while preparing inputs.
_READ_ROWS = 1024


@dataclass
class InputSpec:
    """Everything a trained network assumes about its input data.

    Attributes
    ----------
    kind : {"images", "features"}
    edges : list of float
        Output redshift bin edges.
    instrument : str
        Image stack used (``images`` only).
    bands : list of str
        Band names of that stack, in order (``images`` only).
    image_size : int
        Side of the stored images (``images`` only).
    crop : int
        Side of the central cut the network sees (``images`` only).
    columns : list of str
        Catalog columns: the features (``features``) or the extra scalars (``images``).
    mean, std : list of float
        Standardisation of ``columns`` from the training split.
    flux_columns : list of str
        ``images`` only, optional: one catalog magnitude column per band; each band is
        divided by the flux ``10**((zero_point - mag) / 2.5)`` (in the stack's pixel
        units) before scaling. Empty: the pixels as stored.
    nondetect : dict or None
        ``features`` only: a :class:`~clapkit.photoz.nondetections.Nondetections` policy
        (``to_dict`` form) replacing non-detected magnitudes; None refuses them.
    """

    kind: str
    edges: list[float]
    instrument: str = ""
    bands: list[str] = field(default_factory=list)
    image_size: int = 0
    crop: int = 0
    columns: list[str] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    flux_columns: list[str] = field(default_factory=list)
    nondetect: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.nondetect is not None:
            if self.kind != "features":
                raise ValidationError("non-detection handling applies to catalog features only")
            Nondetections.from_dict(self.nondetect)  # refuse a bad policy now
        if self.kind not in KINDS:
            raise ValidationError(f"input kind must be one of {KINDS}, got {self.kind!r}")
        if self.flux_columns and (
            self.kind != "images" or len(self.flux_columns) != len(self.bands)
        ):
            raise ValidationError(
                f"flux_columns need an images input with one magnitude column per band "
                f"{self.bands}, got {self.flux_columns}"
            )
        check_edges(np.asarray(self.edges, dtype=np.float64))
        if self.kind == "images" and not (0 < self.crop <= self.image_size):
            raise ValidationError(
                f"crop must be in 1..image_size={self.image_size}, got {self.crop}"
            )
        if self.kind == "features" and not self.columns:
            raise ValidationError("a features input needs at least one column")

    @property
    def n_bins(self) -> int:
        """Number of output redshift bins."""
        return len(self.edges) - 1

    @property
    def n_extra(self) -> int:
        """Scalars fed next to the images (0 for features)."""
        return len(self.columns) if self.kind == "images" else 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSpec:
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValidationError(f"unknown input-spec keys {sorted(unknown)}")
        return cls(**data)

    def net_sizes(self) -> dict[str, int]:
        """The size fields of :class:`clapkit.nets.NetConfig` this input implies."""
        if self.kind == "images":
            return {
                "n_bands": len(self.bands),
                "image_size": self.crop,
                "n_extra": self.n_extra,
                "n_bins": self.n_bins,
            }
        return {"n_features": len(self.columns), "n_extra": 0, "n_bins": self.n_bins}


@dataclass
class NetworkInputs:
    """Arrays ready for a network, one row per galaxy.

    ``x`` is ``(N, bands, crop, crop)`` scaled images or ``(N, features)`` standardised
    features; ``extra`` is ``(N, n_extra)``; ``z`` holds NaN where the catalog has no
    redshift column.
    """

    x: NDArray[np.float32]
    extra: NDArray[np.float32]
    z: NDArray[np.float64]
    ids: NDArray

    def __len__(self) -> int:
        return self.x.shape[0]

    def take(self, rows: NDArray[np.intp]) -> NetworkInputs:
        """The given rows."""
        return NetworkInputs(self.x[rows], self.extra[rows], self.z[rows], self.ids[rows])


#: Named feature sets for ``--features``.
FEATURE_SETS = ("colours", "magnitudes")


def magnitude_features(galaxies: GalaxySet) -> list[str]:
    """Every ``mag_*`` column with its ``magerr_*`` partner, in catalog order.

    Examples
    --------
    >>> from astropy.table import Table
    >>> t = Table({"id": [1], "z": [0.1], "mag_g": [18.0], "magerr_g": [0.02], "mag_r": [17.0]})
    >>> magnitude_features(GalaxySet(t))
    ['mag_g', 'magerr_g', 'mag_r']
    """
    names = galaxies.catalog.colnames
    columns: list[str] = []
    for name in names:
        if name.startswith("mag_"):
            columns.append(name)
            partner = "magerr_" + name[len("mag_") :]
            if partner in names:
                columns.append(partner)
    if not columns:
        raise ValidationError(
            "the catalog has no mag_* columns to use as features; pass --features COLS"
        )
    return columns


def colour_features(galaxies: GalaxySet, reference: str = "r") -> list[str]:
    """Adjacent colours of the catalog's bands, one reference magnitude, every error.

    The bands are the ``mag_<band>`` columns whose band name has no underscore, in catalog
    order (the main survey's, e.g. ugriz then WISE W1–W3; a second survey's qualified
    columns such as ``mag_cfhtls_r`` are left out). Colours carry the redshift; the
    reference magnitude (``mag_r``, else the first band) breaks the degeneracy between
    faint and bright galaxies; the errors say how far to trust each.

    Examples
    --------
    >>> from astropy.table import Table
    >>> t = Table({"id": [1], "z": [0.1], "mag_g": [18.0], "magerr_g": [0.02], "mag_r": [17.0],
    ...            "mag_i": [16.5], "mag_cfhtls_r": [17.1]})
    >>> colour_features(GalaxySet(t))
    ['mag_g-mag_r', 'mag_r-mag_i', 'mag_r', 'magerr_g']
    """
    names = galaxies.catalog.colnames
    bands = [n for n in names if n.startswith("mag_") and "_" not in n[len("mag_") :]]
    if len(bands) < 2:
        raise ValidationError(
            f"colour features need mag_* columns of at least two bands, found {bands}; "
            "pass --features magnitudes or name the columns"
        )
    colours = [f"{a}-{b}" for a, b in itertools.pairwise(bands)]
    ref = f"mag_{reference}" if f"mag_{reference}" in bands else bands[0]
    errors = ["magerr_" + b[len("mag_") :] for b in bands if "magerr_" + b[len("mag_") :] in names]
    return [*colours, ref, *errors]


def resolve_features(galaxies: GalaxySet, features: Sequence[str] | None) -> list[str]:
    """The feature list of ``--features``: a named set (default ``colours``) or columns.

    Examples
    --------
    >>> from astropy.table import Table
    >>> gs = GalaxySet(Table({"id": [1], "z": [0.1], "mag_g": [18.0], "mag_r": [17.0]}))
    >>> resolve_features(gs, None), resolve_features(gs, ["magnitudes"])
    (['mag_g-mag_r', 'mag_r'], ['mag_g', 'mag_r'])
    """
    if features is None or list(features) == ["colours"]:
        return colour_features(galaxies)
    if list(features) == ["magnitudes"]:
        return magnitude_features(galaxies)
    named = [f for f in features if f in FEATURE_SETS]
    if named:
        raise ValidationError(
            f"the feature set {named[0]!r} cannot be mixed with columns; give it alone"
        )
    return list(features)


def _source_columns(name: str, available: Sequence[str]) -> list[str]:
    """The catalog columns a feature reads: itself, or the two sides of ``a-b``."""
    if name in available or "-" not in name:
        return [name]
    return name.split("-", 1)


def _feature_values(catalog, name: str) -> NDArray[np.float64]:
    sources = _source_columns(name, catalog.colnames)
    values = [np.asarray(catalog[c], dtype=np.float64) for c in sources]
    return values[0] if len(values) == 1 else values[0] - values[1]


def _column_matrix(
    galaxies: GalaxySet,
    columns: Sequence[str],
    what: str,
    nondetect: dict[str, Any] | None = None,
) -> NDArray:
    catalog = galaxies.catalog
    sources = [c for name in columns for c in _source_columns(name, catalog.colnames)]
    missing = [c for c in sources if c not in catalog.colnames]
    if missing:
        raise ValidationError(f"the catalog lacks {what} columns {missing}")
    if not columns:
        return np.zeros((len(galaxies), 0))
    policy = Nondetections.from_dict(nondetect)
    ids = np.asarray(galaxies.ids)
    if policy is not None:
        catalog = policy.apply(catalog, sources, ids)
    check_no_sentinels(catalog, sources, ids)
    values = np.column_stack([_feature_values(catalog, name) for name in columns])
    bad = ~np.isfinite(values)
    if np.any(bad):
        row, col = np.argwhere(bad)[0]
        raise ValidationError(
            f"{what} column {columns[col]!r} is not finite for galaxy id "
            f"{galaxies.ids[row]} (row {row}; {int(bad[:, col].sum())} such rows); "
            "select galaxies with valid values first"
        )
    return values


def make_input_spec(
    train: GalaxySet,
    edges: NDArray[np.float64],
    *,
    features: Sequence[str] | None = None,
    instrument: str | None = None,
    crop: int | None = None,
    extra_columns: Sequence[str] = ("ebv",),
    flux_columns: Sequence[str] = (),
    nondetect: Nondetections | None = None,
    bands: Sequence[str] | None = None,
) -> InputSpec:
    """Choose the inputs from the training galaxies and freeze their standardisation.

    Catalog features (:func:`resolve_features`: ``colours`` by default) are used when
    ``features`` are asked for or the set has no image stack. Images are used otherwise: the
    stack ``instrument`` (the only one, or ``sdss`` when there are several), cut to its
    central ``crop`` pixels (the whole image when smaller). ``flux_columns`` (one
    magnitude column per band) divides every band by the galaxy's flux in it.
    ``nondetect`` replaces non-detected magnitudes of catalog features (see
    :mod:`~clapkit.photoz.nondetections`).

    Parameters
    ----------
    train : GalaxySet
        The training galaxies.
    edges : numpy.ndarray, shape (B + 1,)
        The redshift grid.
    features : sequence of str, optional
        Catalog features to use instead of images.
    instrument : str, optional
        The image stack.
    crop : int, optional
        Side of the central cut-out, in pixels.
    extra_columns : sequence of str
        Catalog columns given to the network beside its input.
    flux_columns : sequence of str
        Magnitude columns (one per band) that normalise the images.
    nondetect : Nondetections, optional
        How non-detected magnitudes are replaced.
    bands : sequence of str, optional
        Images only: the bands of the stack the network reads, in the stack's order
        (a band ablation); all of them by default.

    Returns
    -------
    InputSpec
    """
    edges = [float(e) for e in check_edges(np.asarray(edges, dtype=np.float64))]
    if len(train) == 0:
        raise ValidationError("the training split is empty")
    if features is not None or not train.stacks:
        columns = resolve_features(train, features)
        policy = nondetect.to_dict() if nondetect is not None else None
        values = _column_matrix(train, columns, "feature", policy)
        standardisation = _standardisation(values, columns)
        # flux_columns go along so that the spec refuses them: features have no bands.
        return InputSpec(
            "features",
            edges,
            columns=columns,
            **standardisation,
            flux_columns=list(flux_columns),
            nondetect=policy,
        )
    if nondetect is not None:
        raise ValidationError(
            "--nondetect applies to catalog features; these inputs are images (use --features)"
        )
    if instrument is None:
        names = sorted(train.stacks)
        instrument = names[0] if len(names) == 1 else "sdss" if "sdss" in names else None
        if instrument is None:
            raise ValidationError(f"several image stacks {names}: choose one with --instrument")
    if instrument not in train.stacks:
        raise ValidationError(f"no image stack {instrument!r}; the data has {sorted(train.stacks)}")
    stack = train.stacks[instrument]
    if bands is None:
        chosen = list(stack.bands)
    else:
        unknown = [b for b in bands if b not in stack.bands]
        if unknown or not bands or len(set(bands)) != len(bands):
            raise ValidationError(
                f"bands must be distinct bands of the {instrument!r} stack "
                f"{list(stack.bands)}, got {list(bands)}"
            )
        chosen = [b for b in stack.bands if b in bands]
    size = int(stack.shape[-1])
    columns = [c for c in extra_columns if c in train.catalog.colnames]
    values = _column_matrix(train, columns, "extra")
    spec = InputSpec(
        "images",
        edges,
        instrument=instrument,
        bands=chosen,
        image_size=size,
        crop=size if crop is None else min(int(crop), size),
        columns=columns,
        **_standardisation(values, columns),
        flux_columns=list(flux_columns),
    )
    if spec.flux_columns:
        band_fluxes(spec, train)  # refuse missing or non-finite magnitudes now
    return spec


def _standardisation(values: NDArray, columns: Sequence[str]) -> dict[str, list[float]]:
    mean = values.mean(axis=0) if values.shape[0] else np.zeros(values.shape[1])
    std = values.std(axis=0) if values.shape[0] else np.ones(values.shape[1])
    std = np.where(std > 0, std, 1.0)
    return {"mean": mean.tolist(), "std": std.tolist()}


def check_compatible(spec: InputSpec, galaxies: GalaxySet) -> None:
    """Refuse data the network was not trained for, naming the difference."""
    if spec.kind == "features":
        names = galaxies.catalog.colnames
        sources = [c for name in spec.columns for c in _source_columns(name, names)]
        missing = [c for c in sources if c not in names]
        if missing:
            raise ValidationError(
                f"the model was trained on catalog features {spec.columns}; "
                f"this data lacks {missing}"
            )
        return
    stack = galaxies.stacks.get(spec.instrument)
    if stack is None:
        raise ValidationError(
            f"the model was trained on {spec.instrument!r} images; "
            f"this data has stacks {sorted(galaxies.stacks)}"
        )
    if not set(spec.bands) <= set(stack.bands):
        raise ValidationError(
            f"the model was trained on bands {spec.bands} of {spec.instrument!r}; "
            f"this data has {list(stack.bands)}"
        )
    if tuple(stack.shape[-2:]) != (spec.image_size, spec.image_size):
        raise ValidationError(
            f"the model was trained on {spec.image_size}x{spec.image_size} images; "
            f"this data has {stack.shape[-2]}x{stack.shape[-1]}"
        )
    missing = [c for c in (*spec.columns, *spec.flux_columns) if c not in galaxies.catalog.colnames]
    if missing:
        raise ValidationError(f"the model also reads catalog columns {missing}; they are missing")


def band_fluxes(spec: InputSpec, galaxies: GalaxySet) -> NDArray[np.float64]:
    """Each galaxy's flux in each band of ``spec.flux_columns``, in the stack's pixel units.

    The magnitudes become fluxes through the stack's AB zero points,
    ``10**((zero_point - mag) / 2.5)``, so that a band divided by its flux sums to about 1.

    Returns
    -------
    numpy.ndarray, shape (N, bands)
    """
    stack = galaxies.stacks[spec.instrument]
    mags = _column_matrix(galaxies, spec.flux_columns, "flux")
    zero_points = np.asarray(stack.zero_points, dtype=np.float64)[_band_index(spec, stack.bands)]
    return 10.0 ** ((zero_points - mags) / 2.5)


def _band_index(spec: InputSpec, stack_bands: Sequence[str]) -> list[int]:
    """Where each band the network reads sits in the stack."""
    bands = list(stack_bands)
    return [bands.index(b) for b in spec.bands]


def scale_images(images: NDArray) -> NDArray[np.float32]:
    """The CLAP paper's pixel scaling, ``sign(x) log(1 + |x|)``.

    Examples
    --------
    >>> scale_images(np.array([-np.e + 1, 0.0, np.e - 1])).round(6).tolist()
    [-1.0, 0.0, 1.0]
    """
    return (np.sign(images) * np.log1p(np.abs(images))).astype(np.float32)


def network_inputs(
    spec: InputSpec, galaxies: GalaxySet, *, require_z: bool = False, progress: bool = False
) -> NetworkInputs:
    """Read, check and transform the inputs of ``galaxies`` as ``spec`` prescribes.

    ``require_z`` (training) asks for a finite redshift on the grid for every galaxy.

    Parameters
    ----------
    spec : InputSpec
        The inputs as chosen at training.
    galaxies : GalaxySet
        The galaxies to read.
    require_z : bool
        Require a redshift on the grid for every galaxy.
    progress : bool
        Show a progress bar.

    Returns
    -------
    NetworkInputs
    """
    check_compatible(spec, galaxies)
    catalog = galaxies.catalog
    n = len(galaxies)
    if "z" in catalog.colnames:
        z = np.asarray(catalog["z"], dtype=np.float64)
        if require_z:
            z = check_training_redshifts(z, n, np.asarray(spec.edges), "column z")
    elif require_z:
        raise ValidationError("the catalog has no redshift column 'z' to train on")
    else:
        z = np.full(n, np.nan)
    mean, std = np.asarray(spec.mean), np.asarray(spec.std)
    if spec.kind == "features":
        x = (_column_matrix(galaxies, spec.columns, "feature", spec.nondetect) - mean) / std
        return NetworkInputs(x.astype(np.float32), np.zeros((n, 0), np.float32), z, galaxies.ids)
    extra = (_column_matrix(galaxies, spec.columns, "extra") - mean) / std
    stack = galaxies.stacks[spec.instrument]
    fluxes = band_fluxes(spec, galaxies) if spec.flux_columns else None
    lo = (spec.image_size - spec.crop) // 2
    cut = slice(lo, lo + spec.crop)
    x = np.empty((n, len(spec.bands), spec.crop, spec.crop), dtype=np.float32)
    index = _band_index(spec, stack.bands)
    every_band = index == list(range(len(stack.bands)))
    starts = range(0, n, _READ_ROWS)
    for start in tqdm(starts, desc="reading images", unit="block", disable=not progress):
        rows = slice(start, min(start + _READ_ROWS, n))
        block = np.asarray(stack.take(rows).images[..., cut, cut])
        if not every_band:
            block = block[:, index]
        bad = ~np.isfinite(block)
        if np.any(bad):
            row = int(np.argwhere(bad)[0][0]) + start
            raise ValidationError(
                f"{spec.instrument} images of galaxy id {galaxies.ids[row]} (row {row}) "
                "hold NaN or infinite pixels"
            )
        if fluxes is not None:
            block = block / fluxes[rows, :, None, None]
        x[rows] = scale_images(block)
    return NetworkInputs(x, extra.astype(np.float32), z, galaxies.ids)
