"""Checks run at every entry point of a GalaxySet: catalog, image stacks, names, meta.

Each check raises :class:`~clapkit.errors.ValidationError` with a message that names the
column or instrument, the row (galaxy index) and band, and what was expected, so a user
can find the bad entry without a debugger. Nothing is dropped or fixed silently; the only
repairs are the documented ones (dtype conversion to ``float32``, and ``nonfinite="mask"``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from numbers import Real
from typing import Any

import h5py
import numpy as np
from astropy.table import Table

from clapkit.data.stack import ImageStack
from clapkit.errors import ValidationError

__all__ = [
    "NONFINITE_MODES",
    "to_float32",
    "validate_catalog",
    "validate_instrument_name",
    "validate_meta",
    "validate_stack",
]

NONFINITE_MODES = ("raise", "mask")

# Pixels scanned per step: 4 Mi float32 values (16 MiB) keeps memory flat for any stack.
_SCAN_ELEMENTS = 1 << 22
# Integers above 2**24 are not all representable in float32.
_FLOAT32_EXACT_INT = 1 << 24
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# How many offending rows a message lists before summarising.
_SHOW = 5


def _list_rows(rows: np.ndarray, values: np.ndarray | None = None) -> str:
    """Describe offending rows (and their values) for an error message."""
    shown = []
    for k, row in enumerate(rows[:_SHOW]):
        shown.append(f"{row} ({values[k]!r})" if values is not None else str(row))
    text = ", ".join(shown)
    if rows.size > _SHOW:
        text += f", ... ({rows.size} rows in all)"
    return text


def _masked_rows(column: Any) -> np.ndarray:
    """Row numbers of masked (missing) entries of an astropy column."""
    mask = getattr(column, "mask", None)
    if mask is None:
        return np.empty(0, dtype=np.intp)
    return np.flatnonzero(np.asarray(mask))


def validate_catalog(catalog: Table) -> None:
    """Check that ``catalog`` has unique ``id`` values and finite, non-negative ``z``.

    Parameters
    ----------
    catalog : astropy.table.Table
        Needs a column ``id`` (unique integers or strings) and a column ``z`` (real,
        finite, >= 0). Other columns are free.

    Raises
    ------
    ValidationError
        Naming the column, the row indices and the offending values.

    Examples
    --------
    >>> from astropy.table import Table
    >>> validate_catalog(Table({"id": [1, 2], "z": [0.1, 0.2]}))
    >>> validate_catalog(Table({"id": [1, 2], "z": [0.1, -0.2]}))
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: catalog column 'z' must be >= 0; negative at row 1 (-0.2)
    """
    if not isinstance(catalog, Table):
        raise ValidationError(f"catalog must be an astropy Table, got {type(catalog).__name__}")
    for name in ("id", "z"):
        if name not in catalog.colnames:
            raise ValidationError(
                f"catalog has no column {name!r} "
                f"(columns: {', '.join(catalog.colnames) or 'none'}); "
                "a GalaxySet needs 'id' (unique integer or string) and 'z' (redshift >= 0)"
            )
    _check_ids(catalog["id"])
    _check_redshifts(catalog["z"])


def _check_ids(column: Any) -> None:
    ids = np.asarray(column)
    if ids.ndim != 1:
        raise ValidationError(f"catalog column 'id' must be 1-D, got shape {ids.shape}")
    if ids.dtype.kind not in "iuUS":
        raise ValidationError(
            f"catalog column 'id' must hold integers or strings, got dtype {ids.dtype}"
        )
    masked = _masked_rows(column)
    if masked.size:
        raise ValidationError(
            f"catalog column 'id' has missing (masked) values at rows {_list_rows(masked)}"
        )
    if ids.size == 0:
        return
    unique, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    duplicated = np.flatnonzero(counts > 1)
    if duplicated.size:
        inverse = inverse.reshape(-1)
        parts = []
        for k in duplicated[:_SHOW]:
            rows = np.flatnonzero(inverse == k)
            parts.append(f"id {unique[k].item()!r} at rows {', '.join(map(str, rows))}")
        more = f"; ... ({duplicated.size} duplicated ids in all)" if duplicated.size > _SHOW else ""
        raise ValidationError(f"catalog column 'id' must be unique: {'; '.join(parts)}{more}")


def _check_redshifts(column: Any) -> None:
    z = np.asarray(column)
    if z.ndim != 1:
        raise ValidationError(f"catalog column 'z' must be 1-D, got shape {z.shape}")
    if z.dtype.kind not in "fiu":
        raise ValidationError(f"catalog column 'z' must hold real numbers, got dtype {z.dtype}")
    masked = _masked_rows(column)
    if masked.size:
        raise ValidationError(
            f"catalog column 'z' has missing (masked) values at rows {_list_rows(masked)}"
        )
    bad = np.flatnonzero(~np.isfinite(z))
    if bad.size:
        raise ValidationError(
            "catalog column 'z' must be finite; non-finite at rows "
            f"{_list_rows(bad, z[bad].tolist())}"
        )
    negative = np.flatnonzero(z < 0)
    if negative.size:
        word = "row" if negative.size == 1 else "rows"
        raise ValidationError(
            f"catalog column 'z' must be >= 0; negative at {word} "
            f"{_list_rows(negative, z[negative].tolist())}"
        )


def validate_instrument_name(name: str) -> str:
    """Check that an instrument name is a simple identifier usable as an HDF5 key.

    Names ending in ``_mask`` are refused because the mask of instrument ``x`` is
    stored as ``/images/x_mask``.

    Examples
    --------
    >>> validate_instrument_name("sdss")
    'sdss'
    >>> validate_instrument_name("cfht ls")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: instrument name 'cfht ls' must be a simple identifier ...
    """
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValidationError(
            f"instrument name {name!r} must be a simple identifier "
            "(letters, digits and '_', not starting with a digit)"
        )
    if name.endswith("_mask"):
        raise ValidationError(
            f"instrument name {name!r} must not end in '_mask' (reserved for pixel masks)"
        )
    return name


def validate_meta(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return a JSON-clean copy of ``meta`` (numpy scalars and arrays become Python types).

    The copy is what a save and load returns, so ``gs.meta`` compares equal before and
    after a round trip (tuples become lists, as in JSON).

    Examples
    --------
    >>> import numpy as np
    >>> validate_meta({"seed": np.int64(3), "bands": ("g", "r")})
    {'seed': 3, 'bands': ['g', 'r']}
    """
    if meta is None:
        return {}
    if not isinstance(meta, Mapping):
        raise ValidationError(f"meta must be a dict, got {type(meta).__name__}")
    try:
        text = json.dumps(dict(meta), default=_json_default, allow_nan=True)
    except (TypeError, ValueError) as err:
        raise ValidationError(f"meta must be JSON-serialisable: {err}") from err
    return json.loads(text)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic | np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot store {type(obj).__name__} in meta")


def validate_stack(
    stack: ImageStack,
    instrument: str,
    *,
    n_galaxies: int | None = None,
    nonfinite: str = "raise",
    ids: Sequence | np.ndarray | None = None,
    scan_pixels: bool = True,
) -> ImageStack:
    """Check an image stack and return it in canonical form.

    Dtype rule: ``float32`` is kept; other real floating types (``float64``, ``float16``)
    are converted to ``float32``, and a finite value beyond the ``float32`` range is an
    error rather than an ``inf``; integer images are converted when every value is exactly
    representable (``|x| <= 2**24``), otherwise refused; booleans, complex numbers and
    anything else are refused.

    Parameters
    ----------
    stack : ImageStack
        The stack to check.
    instrument : str
        Its name, used in every message.
    n_galaxies : int, optional
        Required number of galaxies (the catalog length).
    nonfinite : {"raise", "mask"}
        What to do with NaN or inf pixels: raise (naming the galaxy index, band and
        count), or replace them by 0 and record them in ``mask`` and ``n_masked``. The
        caller's array is never modified: a copy is made before replacing.
    ids : array-like, optional
        Catalog ids, so that the message can name the galaxy's id as well as its row.
    scan_pixels : bool
        Scan every pixel for finiteness (chunked over galaxies, so memory stays flat).
        Only loading a file that clapkit validated before writing skips it.

    Returns
    -------
    ImageStack
        A stack with ``float32`` images, tuple bands and zero points, float pixel scale.

    Examples
    --------
    >>> import numpy as np
    >>> images = np.ones((2, 2, 4, 4))  # float64: converted
    >>> images[1, 1, 0, 3] = np.nan
    >>> stack = ImageStack(images, ("g", "r"), 0.396, (22.5, 22.5), "nanomaggy")
    >>> validate_stack(stack, "sdss")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: instrument 'sdss': 1 non-finite ...galaxy index 1, band 'r', ...
    >>> fixed = validate_stack(stack, "sdss", nonfinite="mask")
    >>> fixed.images.dtype, fixed.n_masked, float(fixed.images[1, 1, 0, 3])
    (dtype('float32'), 1, 0.0)
    """
    if nonfinite not in NONFINITE_MODES:
        raise ValidationError(f"nonfinite must be one of {NONFINITE_MODES}, got {nonfinite!r}")
    if not isinstance(stack, ImageStack):
        raise ValidationError(
            f"instrument {instrument!r}: expected an ImageStack, got {type(stack).__name__}"
        )
    validate_instrument_name(instrument)
    where = f"instrument {instrument!r}"
    images = stack.images
    if not isinstance(images, np.ndarray | h5py.Dataset):
        images = np.asarray(images)
    if images.ndim != 4:
        raise ValidationError(
            f"{where}: images must have shape (N, bands, H, W); got {images.ndim}-D shape "
            f"{tuple(images.shape)}"
        )
    bands = _check_bands(stack.bands, images.shape, where)
    zero_points = _check_zero_points(stack.zero_points, bands, where)
    pixel_scale = _check_pixel_scale(stack.pixel_scale, where)
    if not isinstance(stack.units, str):
        raise ValidationError(f"{where}: units must be a string, got {stack.units!r}")
    if n_galaxies is not None and images.shape[0] != n_galaxies:
        raise ValidationError(
            f"{where} has {images.shape[0]} galaxies (images.shape[0]) but the catalog has "
            f"{n_galaxies} rows; they must match"
        )
    mask = stack.mask
    if mask is not None and (tuple(mask.shape) != tuple(images.shape) or mask.dtype != np.bool_):
        raise ValidationError(
            f"{where}: mask must be boolean with the images' shape {tuple(images.shape)}, "
            f"got {mask.dtype} {tuple(mask.shape)}"
        )
    images, converted = _to_float32(images, where, bands)
    n_masked = stack.n_masked
    if isinstance(mask, np.ndarray):
        n_masked = int(np.count_nonzero(mask))
    if scan_pixels:
        images, mask, n_masked = _scan_nonfinite(
            images, bands, where, nonfinite, ids, mask, n_masked, owned=converted
        )
    return replace(
        stack,
        images=images,
        bands=bands,
        pixel_scale=pixel_scale,
        zero_points=zero_points,
        mask=mask,
        n_masked=int(n_masked),
    )


def _check_bands(bands: Any, shape: tuple[int, ...], where: str) -> tuple[str, ...]:
    if isinstance(bands, str):
        raise ValidationError(
            f"{where}: bands must be a sequence of band names such as ('g', 'r'), "
            f"not the string {bands!r}"
        )
    bands = tuple(bands)
    for band in bands:
        if not isinstance(band, str) or not band:
            raise ValidationError(f"{where}: band names must be non-empty strings, got {band!r}")
    bands = tuple(str(b) for b in bands)
    if len(bands) != shape[1]:
        raise ValidationError(
            f"{where}: {len(bands)} band names {bands} for images with {shape[1]} bands "
            f"(shape {tuple(shape)}, axis 1 is the band)"
        )
    seen = set()
    for band in bands:
        if band in seen:
            raise ValidationError(f"{where}: band name {band!r} appears twice in {bands}")
        seen.add(band)
    return bands


def _is_real(value: Any) -> bool:
    return isinstance(value, Real | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _check_zero_points(zero_points: Any, bands: tuple[str, ...], where: str) -> tuple[float, ...]:
    if isinstance(zero_points, str):
        raise ValidationError(f"{where}: zero_points must be numbers, got {zero_points!r}")
    zero_points = tuple(zero_points)
    if len(zero_points) != len(bands):
        raise ValidationError(
            f"{where}: {len(zero_points)} zero points for {len(bands)} bands {bands}"
        )
    for band, zp in zip(bands, zero_points, strict=True):
        if not _is_real(zp) or not np.isfinite(zp):
            raise ValidationError(
                f"{where}: zero point of band {band!r} must be finite, got {zp!r}"
            )
    return tuple(float(zp) for zp in zero_points)


def _check_pixel_scale(pixel_scale: Any, where: str) -> float:
    if not _is_real(pixel_scale) or not np.isfinite(pixel_scale) or pixel_scale <= 0:
        raise ValidationError(
            f"{where}: pixel_scale must be a finite number > 0 (arcsec/pixel), got {pixel_scale!r}"
        )
    return float(pixel_scale)


def _scan_step(shape: tuple[int, ...]) -> int:
    """Galaxies per scan step so that one step holds about ``_SCAN_ELEMENTS`` pixels."""
    per_galaxy = max(1, int(np.prod(shape[1:], dtype=np.int64)))
    return max(1, _SCAN_ELEMENTS // per_galaxy)


def to_float32(
    images: np.ndarray | h5py.Dataset, where: str, bands: Sequence[str]
) -> np.ndarray | h5py.Dataset:
    """Apply clapkit's dtype rule to a ``(N, bands, H, W)`` image array.

    ``float32`` is returned as is (no copy); other floats are converted unless a finite
    value lies beyond the ``float32`` range; integers are converted when every value is
    exactly representable (``|x| <= 2**24``); anything else is refused.

    Parameters
    ----------
    images : numpy.ndarray or h5py.Dataset
        4-D pixels.
    where : str
        What the images are (an instrument, a file), for messages.
    bands : sequence of str
        Band names, for messages.

    Examples
    --------
    >>> import numpy as np
    >>> to_float32(np.ones((1, 1, 2, 2), dtype=np.int16), "file a.fits", ["r"]).dtype
    dtype('float32')
    >>> to_float32(np.full((1, 1, 1, 1), 2**30), "file a.fits", ["r"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: file a.fits: pixel value 1073741824 in galaxy index 0, ...
    """
    return _to_float32(images, where, tuple(bands))[0]


def _to_float32(
    images: np.ndarray | h5py.Dataset, where: str, bands: tuple[str, ...]
) -> tuple[np.ndarray | h5py.Dataset, bool]:
    """Apply the dtype rule; return the images and whether they are a new array."""
    dtype = images.dtype
    if dtype == np.float32 and dtype.isnative:
        return images, False
    if dtype.kind not in "fiu":
        raise ValidationError(
            f"{where}: images must be float32 (float64 and integers are converted), "
            f"got dtype {dtype}"
        )
    out = np.empty(images.shape, dtype=np.float32)
    step = _scan_step(images.shape)
    for start in range(0, images.shape[0], step):
        block = np.asarray(images[start : start + step])
        if dtype.kind == "f" and dtype.itemsize > 4:
            too_big = np.isfinite(block) & (np.abs(block) > _FLOAT32_MAX)
            _refuse_first(too_big, block, start, bands, where, "is beyond the float32 range")
        elif dtype.kind in "iu":
            too_big = np.abs(block.astype(np.float64)) > _FLOAT32_EXACT_INT
            _refuse_first(
                too_big, block, start, bands, where, "is not exactly representable in float32"
            )
        out[start : start + step] = block
    return out, True


def _refuse_first(
    bad: np.ndarray, block: np.ndarray, start: int, bands: tuple[str, ...], where: str, why: str
) -> None:
    if not bad.any():
        return
    i, b, y, x = np.argwhere(bad)[0]
    raise ValidationError(
        f"{where}: pixel value {block[i, b, y, x].item()!r} in galaxy index {start + i}, band "
        f"{bands[b]!r}, pixel (y={y}, x={x}) {why} ({int(bad.sum())} such pixels in this block); "
        "clapkit stores float32 images"
    )


def _scan_nonfinite(
    images: np.ndarray | h5py.Dataset,
    bands: tuple[str, ...],
    where: str,
    nonfinite: str,
    ids: Any,
    mask: np.ndarray | h5py.Dataset | None,
    n_masked: int,
    owned: bool,
) -> tuple[np.ndarray | h5py.Dataset, np.ndarray | h5py.Dataset | None, int]:
    step = _scan_step(images.shape)
    total = 0
    first = None
    mask_owned = False
    for start in range(0, images.shape[0], step):
        block = images[start : start + step]
        bad = ~np.isfinite(block)
        count = int(np.count_nonzero(bad))
        if count == 0:
            continue
        if first is None:
            i, b, y, x = np.argwhere(bad)[0]
            first = (start + int(i), int(b), int(y), int(x))
        total += count
        if nonfinite == "mask":
            if isinstance(images, h5py.Dataset):
                raise ValidationError(
                    f"{where}: non-finite pixels in a lazily loaded stack cannot be masked in "
                    "place; load the set with lazy=False first"
                )
            if not owned:
                # Never modify the caller's array: replace pixels in a private copy.
                images = images.copy()
                owned = True
                block = images[start : start + step]
            if not mask_owned:
                # The caller's mask (if any) is copied too, for the same reason.
                mask = np.zeros(images.shape, dtype=bool) if mask is None else np.array(mask)
                mask_owned = True
            block[bad] = 0.0
            mask[start : start + step] |= bad
    if total == 0:
        return images, mask, n_masked
    if nonfinite == "raise":
        row, b, y, x = first
        galaxy = f"galaxy index {row}"
        if ids is not None:
            galaxy += f" (id {np.asarray(ids)[row].item()!r})"
        raise ValidationError(
            f"{where}: {total} non-finite pixel(s); the first is in {galaxy}, band "
            f"{bands[b]!r}, pixel (y={y}, x={x}). Pass nonfinite='mask' to replace them by 0 "
            "and record a mask."
        )
    return images, mask, int(np.count_nonzero(mask))
