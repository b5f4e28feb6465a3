"""Import users' own cutouts and catalogs from FITS into a GalaxySet.

Two layouts are read: one cube ``(bands, H, W)`` per galaxy, or one cube ``(N, H, W)``
per band. Band names, pixel scale and zero points come from the FITS headers where they
are present and from the arguments otherwise; when both are given they must agree, and
all files must agree with each other. Every error names the file and what was expected.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales

from clapkit.data.galaxyset import GalaxySet
from clapkit.data.stack import ImageStack
from clapkit.data.validation import to_float32, validate_instrument_name
from clapkit.errors import FileFormatError, ValidationError

__all__ = ["import_fits"]

_CATALOG_FORMATS = {
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".ecsv": "ascii.ecsv",
    ".csv": "ascii.csv",
}
# Headers round values differently; pixel scales within this relative tolerance and zero
# points within this many magnitudes are the same.
_PIXSCALE_RTOL = 1e-4
_ZP_ATOL = 1e-4


@dataclass
class _HeaderInfo:
    """What one file's header says (None where it says nothing)."""

    path: Path
    bands: tuple[str, ...] | None
    pixel_scale: float | None
    zero_points: tuple[float, ...] | None


def import_fits(
    catalog: str | os.PathLike | Table,
    instrument: str,
    *,
    per_galaxy: str | None = None,
    per_band: Sequence[str | os.PathLike] | None = None,
    bands: Sequence[str] | None = None,
    pixel_scale: float | None = None,
    zero_points: Sequence[float] | None = None,
    units: str = "counts",
    id_column: str = "id",
    z_column: str = "z",
    nonfinite: str = "raise",
) -> GalaxySet:
    """Build a GalaxySet from a catalog file and FITS cutouts.

    Parameters
    ----------
    catalog : path-like or astropy.table.Table
        FITS, ECSV or CSV catalog (format from the extension, ``.gz`` allowed), or a
        table. Relative image paths are taken from the catalog's directory (the current
        directory for a table).
    instrument : str
        Name of the image stack (a simple identifier), e.g. ``"sdss"``.
    per_galaxy : str, optional
        Pattern such as ``"cutouts/{id}.fits"`` naming one cube ``(bands, H, W)`` per
        galaxy, in the primary HDU or the first image HDU. Band names come from header
        keywords ``BAND1..BANDn`` (or ``FILTER1..n``), zero points from ``MAGZP1..n``
        (or ``ZEROPT1..n``).
    per_band : list of path-like, optional
        One cube ``(N, H, W)`` per band, rows in catalog order. Band name from ``FILTER``
        or ``BAND``, zero point from ``MAGZP`` or ``ZEROPT``.
    bands, pixel_scale, zero_points : optional
        Used where the headers are silent; must agree with them where they are not.
        The pixel scale (arcsec) is read from ``PIXSCALE`` or the celestial WCS.
    units : str
        Pixel units recorded in the stack.
    id_column, z_column : str
        Catalog columns renamed to ``id`` and ``z``.
    nonfinite : {"raise", "mask"}
        What to do with NaN/inf pixels (see :class:`GalaxySet`).

    Returns
    -------
    GalaxySet
        One stack named ``instrument``; ``meta["import"]`` records the sources.

    Raises
    ------
    FileFormatError
        A file is missing, unreadable, or has the wrong dimensions or shape.
    ValidationError
        Headers disagree with each other or with the arguments, information is missing,
        or the catalog fails validation.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from astropy.table import Table
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> Table({"objid": [7, 8], "zspec": [0.1, 0.2]}).write(folder / "cat.ecsv")
    >>> for objid in (7, 8):
    ...     header = fits.Header({"BAND1": "g", "BAND2": "r", "PIXSCALE": 0.396})
    ...     cube = np.ones((2, 16, 16), np.float32)
    ...     fits.PrimaryHDU(cube, header).writeto(folder / f"{objid}.fits")
    >>> gs = import_fits(folder / "cat.ecsv", "sdss", per_galaxy="{id}.fits",
    ...                  zero_points=[22.5, 22.5], id_column="objid", z_column="zspec")
    >>> gs.stacks["sdss"].shape, gs.stacks["sdss"].bands, gs.stacks["sdss"].pixel_scale
    ((2, 2, 16, 16), ('g', 'r'), 0.396)
    """
    validate_instrument_name(instrument)
    table, base_dir, source = _read_catalog(catalog)
    _rename(table, id_column, "id", source)
    _rename(table, z_column, "z", source)
    if (per_galaxy is None) == (per_band is None):
        raise ValidationError(
            "pass exactly one of per_galaxy= (a path pattern) or per_band= (a list of files)"
        )
    if per_galaxy is not None:
        images, infos = _read_per_galaxy(per_galaxy, table, base_dir)
        layout = {"layout": "per_galaxy", "pattern": str(per_galaxy)}
    else:
        images, infos = _read_per_band(per_band, len(table), base_dir)
        layout = {"layout": "per_band", "files": [str(info.path) for info in infos]}
    n_bands = images.shape[1]
    band_names = _resolve(infos, "bands", bands, "bands", _same_bands)
    if band_names is None:
        raise ValidationError(
            f"no band names in the FITS headers (BAND1..n / FILTER1..n for cubes, FILTER / BAND "
            f"for per-band files); pass bands= with {n_bands} names"
        )
    scale = _resolve(infos, "pixel_scale", pixel_scale, "pixel_scale", _same_scale)
    if scale is None:
        raise ValidationError(
            "no pixel scale in the FITS headers (PIXSCALE or a celestial WCS); pass "
            "pixel_scale= in arcsec/pixel"
        )
    zps = _resolve(infos, "zero_points", zero_points, "zero_points", _same_zero_points)
    if zps is None:
        raise ValidationError(
            "no zero points in the FITS headers (MAGZP1..n / ZEROPT1..n for cubes, MAGZP / "
            f"ZEROPT for per-band files); pass zero_points= with {n_bands} values"
        )
    stack = ImageStack(images, tuple(band_names), float(scale), tuple(zps), units)
    meta = {"import": {"catalog": source, "instrument": instrument, **layout}}
    return GalaxySet(table, {instrument: stack}, meta, nonfinite=nonfinite)


def _read_catalog(catalog: str | os.PathLike | Table) -> tuple[Table, Path, str]:
    if isinstance(catalog, Table):
        # Columns get renamed below; the caller's table must not change.
        return catalog.copy(), Path.cwd(), "<table>"
    path = Path(catalog)
    if not path.is_file():
        raise FileFormatError(f"{path}: catalog file not found")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    fmt = _CATALOG_FORMATS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise FileFormatError(
            f"{path}: unknown catalog format; expected one of {', '.join(_CATALOG_FORMATS)}"
        )
    try:
        table = Table.read(path, format=fmt)
    except Exception as err:
        raise FileFormatError(f"{path}: cannot be read as a {fmt} catalog ({err})") from err
    # FITS string columns arrive as bytes; ids and names are text everywhere else.
    table.convert_bytestring_to_unicode()
    return table, path.parent, str(path)


def _rename(table: Table, column: str, target: str, source: str) -> None:
    if column not in table.colnames:
        raise ValidationError(
            f"{source}: catalog has no column {column!r} for {target!r} (columns: "
            f"{', '.join(table.colnames)}); pass {target}_column= to name it"
        )
    if column != target:
        if target in table.colnames:
            raise ValidationError(
                f"{source}: cannot rename column {column!r} to {target!r}: the catalog already "
                f"has a column {target!r}"
            )
        table.rename_column(column, target)


def _resolve_path(name: str | os.PathLike, base_dir: Path) -> Path:
    path = Path(name)
    return path if path.is_absolute() else base_dir / path


def _read_image(path: Path, what: str) -> tuple[np.ndarray, list[fits.Header], fits.Header]:
    """Return the data, the headers to search for keywords, and the data HDU's header."""
    if not path.is_file():
        raise FileFormatError(f"{path}: file not found ({what})")
    try:
        with fits.open(path, memmap=False) as hdul:
            primary = hdul[0]
            hdu = None
            if primary.header.get("NAXIS", 0) > 0:
                hdu = primary
            else:
                for ext in hdul[1:]:
                    if (
                        isinstance(ext, fits.ImageHDU | fits.CompImageHDU)
                        and ext.header.get("NAXIS", 0) > 0
                    ):
                        hdu = ext
                        break
            if hdu is None:
                raise FileFormatError(
                    f"{path}: no image data in the primary HDU or any image HDU ({what})"
                )
            data = np.asarray(hdu.data)
            headers = [hdu.header] if hdu is primary else [hdu.header, primary.header]
            return data, [h.copy() for h in headers], hdu.header.copy()
    except OSError as err:
        if isinstance(err, FileFormatError):
            raise
        raise FileFormatError(f"{path}: cannot be read as FITS ({err})") from err


def _keyword(headers: list[fits.Header], key: str) -> Any:
    for header in headers:
        if key in header:
            return header[key]
    return None


def _numbered(headers: list[fits.Header], prefix: str, n: int, path: Path) -> list | None:
    """Values of PREFIX1..PREFIXn; None if absent; an error if the count disagrees."""
    present = []
    k = 1
    while _keyword(headers, f"{prefix}{k}") is not None:
        present.append(_keyword(headers, f"{prefix}{k}"))
        k += 1
    if not present:
        return None
    if len(present) != n:
        raise ValidationError(
            f"{path}: header has {prefix}1..{prefix}{len(present)} ({len(present)} values) but "
            f"the cube has {n} bands"
        )
    return present


def _header_info(
    path: Path, headers: list[fits.Header], data_header: fits.Header, n: int, cube: bool
) -> _HeaderInfo:
    if cube:
        bands = _numbered(headers, "BAND", n, path) or _numbered(headers, "FILTER", n, path)
        zps = _numbered(headers, "MAGZP", n, path) or _numbered(headers, "ZEROPT", n, path)
    else:
        band = _keyword(headers, "FILTER")
        band = _keyword(headers, "BAND") if band is None else band
        bands = None if band is None else [band]
        zp = _keyword(headers, "MAGZP")
        zp = _keyword(headers, "ZEROPT") if zp is None else zp
        zps = None if zp is None else [zp]
    if bands is not None:
        bands = tuple(str(b).strip() for b in bands)
    if zps is not None:
        try:
            zps = tuple(float(zp) for zp in zps)
        except (TypeError, ValueError) as err:
            raise ValidationError(f"{path}: zero point keywords must be numbers ({err})") from err
    return _HeaderInfo(path, bands, _pixel_scale(path, headers, data_header), zps)


def _pixel_scale(path: Path, headers: list[fits.Header], data_header: fits.Header) -> float | None:
    keyword = _keyword(headers, "PIXSCALE")
    from_keyword = None if keyword is None else float(keyword)
    from_wcs = None
    if any(key.startswith("CTYPE") for key in data_header):
        try:
            with warnings.catch_warnings():
                # Non-standard but harmless keywords in users' headers are fixed quietly.
                warnings.simplefilter("ignore", FITSFixedWarning)
                wcs = WCS(data_header)
        except Exception as err:
            raise FileFormatError(
                f"{path}: the WCS in the header cannot be parsed ({err})"
            ) from err
        if wcs.has_celestial:
            celestial = wcs.celestial
            scales = [
                (s * u.Unit(unit)).to_value(u.arcsec)
                for s, unit in zip(
                    proj_plane_pixel_scales(celestial), celestial.world_axis_units, strict=True
                )
            ]
            if not np.isclose(scales[0], scales[1], rtol=1e-3):
                raise ValidationError(
                    f"{path}: the WCS has non-square pixels ({scales[0]:.6g} x {scales[1]:.6g} "
                    "arcsec); clapkit needs one pixel scale"
                )
            from_wcs = float(np.mean(scales))
    if (
        from_keyword is not None
        and from_wcs is not None
        and not _same_scale(from_keyword, from_wcs)
    ):
        raise ValidationError(
            f"{path}: PIXSCALE = {from_keyword} arcsec disagrees with the WCS pixel scale "
            f"{from_wcs:.6g} arcsec"
        )
    return from_keyword if from_keyword is not None else from_wcs


def _same_bands(a: Sequence[str], b: Sequence[str]) -> bool:
    return tuple(a) == tuple(b)


def _same_scale(a: float, b: float) -> bool:
    return bool(np.isclose(a, b, rtol=_PIXSCALE_RTOL, atol=0))


def _same_zero_points(a: Sequence[float], b: Sequence[float]) -> bool:
    return len(a) == len(b) and bool(np.allclose(a, b, rtol=0, atol=_ZP_ATOL))


def _resolve(infos: list[_HeaderInfo], field: str, given: Any, argument: str, same: Any) -> Any:
    """Combine a header field over files and with the argument; raise on any conflict."""
    if isinstance(given, str) and field == "bands":
        raise ValidationError(f"bands must be a list of names such as ['g', 'r'], not {given!r}")
    header = [(info.path, getattr(info, field)) for info in infos]
    with_value = [(path, value) for path, value in header if value is not None]
    without = [path for path, value in header if value is None]
    if with_value and without:
        raise ValidationError(
            f"{field}: {with_value[0][0]} gives it in its header but {without[0]} does not; "
            "the files disagree"
        )
    if not with_value:
        return None if given is None else (given if field == "pixel_scale" else tuple(given))
    first_path, first = with_value[0]
    for path, value in with_value[1:]:
        if not same(first, value):
            raise ValidationError(
                f"{field}: files disagree: {first_path} says {first!r}, {path} says {value!r}"
            )
    if given is not None:
        wanted = given if field == "pixel_scale" else tuple(given)
        if not same(first, wanted):
            raise ValidationError(
                f"{argument}={wanted!r} disagrees with the FITS header of {first_path}, which "
                f"says {first!r}"
            )
    return first


def _read_per_galaxy(
    pattern: str, table: Table, base_dir: Path
) -> tuple[np.ndarray, list[_HeaderInfo]]:
    if not isinstance(pattern, str) or "{id" not in pattern:
        raise ValidationError(f"per_galaxy must be a pattern containing '{{id}}', got {pattern!r}")
    images = None
    infos = []
    first_path = None
    for row, galaxy_id in enumerate(np.asarray(table["id"]).tolist()):
        try:
            name = pattern.format(id=galaxy_id)
        except (KeyError, IndexError, ValueError) as err:
            raise ValidationError(
                f"per_galaxy pattern {pattern!r} cannot be filled with id={galaxy_id!r} ({err}); "
                "only the field {id} is available"
            ) from err
        path = _resolve_path(name, base_dir)
        data, headers, data_header = _read_image(
            path, f"cutout of galaxy id {galaxy_id!r}, row {row}"
        )
        if data.ndim != 3:
            raise FileFormatError(
                f"{path}: expected a cube of shape (bands, H, W), got {data.ndim}-D shape "
                f"{data.shape} (for one band use shape (1, H, W))"
            )
        if images is None:
            images = np.empty((len(table), *data.shape), dtype=np.float32)
            first_path = path
        elif data.shape != images.shape[1:]:
            raise FileFormatError(
                f"{path}: cube of galaxy id {galaxy_id!r} has shape {data.shape}; expected "
                f"{images.shape[1:]} like {first_path}"
            )
        bands = [f"plane {k + 1}" for k in range(data.shape[0])]
        images[row] = to_float32(data[None], f"file {path}", bands)[0]
        infos.append(_header_info(path, headers, data_header, data.shape[0], cube=True))
    if images is None:
        raise ValidationError("the catalog is empty; there are no cutouts to import")
    return images, infos


def _read_per_band(
    files: Sequence[str | os.PathLike], n_galaxies: int, base_dir: Path
) -> tuple[np.ndarray, list[_HeaderInfo]]:
    if isinstance(files, str | os.PathLike) or len(files) == 0:
        raise ValidationError(
            f"per_band must be a non-empty list of FITS files, one per band, got {files!r}"
        )
    images = None
    infos = []
    first_path = None
    for k, name in enumerate(files):
        path = _resolve_path(name, base_dir)
        data, headers, data_header = _read_image(path, f"band file {k + 1} of {len(files)}")
        if data.ndim != 3:
            raise FileFormatError(
                f"{path}: expected a cube of shape (N, H, W) with one image per catalog row, got "
                f"{data.ndim}-D shape {data.shape}"
            )
        if data.shape[0] != n_galaxies:
            raise FileFormatError(
                f"{path}: has {data.shape[0]} images but the catalog has {n_galaxies} rows"
            )
        if images is None:
            images = np.empty((n_galaxies, len(files), *data.shape[1:]), dtype=np.float32)
            first_path = path
        elif data.shape[1:] != images.shape[2:]:
            raise FileFormatError(
                f"{path}: images are {data.shape[1:]} pixels; expected {images.shape[2:]} like "
                f"{first_path}"
            )
        images[:, k] = to_float32(data[:, None], f"file {path}", [f"file {k + 1}"])[:, 0]
        infos.append(_header_info(path, headers, data_header, 1, cube=False))
    # One name per file; combine them into one per-stack record for _resolve.
    merged = _merge_band_infos(infos)
    return images, merged


def _merge_band_infos(infos: list[_HeaderInfo]) -> list[_HeaderInfo]:
    """Turn per-band-file records into one record per stack (each field all or nothing)."""

    def combine(field: str) -> tuple | None:
        values = [getattr(info, field) for info in infos]
        have = [info.path for info, v in zip(infos, values, strict=True) if v is not None]
        lack = [info.path for info, v in zip(infos, values, strict=True) if v is None]
        if have and lack:
            raise ValidationError(
                f"{field}: {have[0]} gives it in its header but {lack[0]} does not; the files "
                "disagree"
            )
        return None if lack else tuple(v[0] for v in values)

    bands = combine("bands")
    if bands is not None:
        for k, band in enumerate(bands):
            if band in bands[:k]:
                first = infos[bands.index(band)].path
                raise ValidationError(
                    f"band {band!r} is named by two files: {first} and {infos[k].path}"
                )
    zero_points = combine("zero_points")
    scales = [(info.path, info.pixel_scale) for info in infos]
    # Pixel scales are per file: keep one record per file so that _resolve compares them.
    return [_HeaderInfo(path, bands, scale, zero_points) for path, scale in scales]
