"""Tables as files to download: an astropy Table from columns, then CSV or FITS bytes.

The dashboards offer every table they show as a file; this module does the conversion,
so that what a user downloads carries the units and the notes the page shows with it:

``csv``
    Astropy's ECSV with commas: a plain CSV whose ``#`` header lines record each
    column's unit and description and the table's notes (``pandas.read_csv(path,
    comment="#")`` reads the values; ``astropy.table.Table.read`` reads everything).
``fits``
    One binary table (HDU 1, named by ``name``) with ``TUNITn`` cards for units, each
    description as a ``TCOMMn`` card and the notes as header cards (keys of up to
    eight characters) or ``COMMENT`` lines.

Nothing here writes to disk: the bytes go to a browser (or anywhere else).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
from astropy.table import Table

from clapkit.errors import ValidationError

#: Formats :func:`table_bytes` writes, and the file suffix of each.
FORMATS = {"csv": ".csv", "fits": ".fits"}


def make_table(
    columns: Mapping[str, Any],
    units: Mapping[str, str] | None = None,
    descriptions: Mapping[str, str] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Table:
    """An astropy Table of ``columns`` with units, descriptions and notes.

    Parameters
    ----------
    columns : mapping of str to array-like
        Column name -> values (a ``pandas.DataFrame`` works); all of one length. Text
        and object columns become strings; NaN stays NaN.
    units : mapping of str to str, optional
        Column -> unit (any string astropy parses, e.g. ``"dex"``, ``"mag"``; ``""`` for
        dimensionless). Names of absent columns are an error.
    descriptions : mapping of str to str, optional
        Column -> one-line description. Names of absent columns are an error.
    meta : mapping of str to scalar, optional
        Table notes (the run, the selection): kept in the CSV header and as FITS cards.

    Returns
    -------
    Table

    Raises
    ------
    ValidationError
        Columns of different lengths, or a unit or description for a column the table
        lacks.

    Examples
    --------
    >>> t = make_table({"id": [1, 2], "z": [0.1, 0.2]}, units={"z": ""}, meta={"RUN": "demo"})
    >>> t.colnames, t.meta["RUN"], len(t)
    (['id', 'z'], 'demo', 2)
    """
    names = list(columns.keys())
    arrays = {}
    for name in names:
        values = np.asarray(columns[name])
        if values.dtype == object:
            values = np.asarray([str(v) for v in values], dtype=str)
        arrays[str(name)] = values
    lengths = {name: len(values) for name, values in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValidationError(f"table columns differ in length: {lengths}")
    for what, given in (("unit", units), ("description", descriptions)):
        unknown = sorted(set(given or {}) - set(arrays))
        if unknown:
            raise ValidationError(
                f"{what} given for column(s) {unknown} that the table lacks "
                f"(columns: {list(arrays)})"
            )
    table = Table(arrays, meta=dict(meta or {}))
    for name, unit in (units or {}).items():
        table[name].unit = unit or None
    for name, text in (descriptions or {}).items():
        table[name].description = text
    return table


def table_bytes(table: Table, format: str, name: str = "TABLE") -> bytes:
    """``table`` as the bytes of a CSV (ECSV) or FITS file.

    Parameters
    ----------
    table : Table
        What to write (see :func:`make_table`).
    format : {"csv", "fits"}
        The file format.
    name : str
        Name of the FITS table's HDU (``EXTNAME``); unused for CSV.

    Returns
    -------
    bytes

    Raises
    ------
    ValidationError
        An unknown format.

    Examples
    --------
    >>> data = table_bytes(make_table({"z": [0.5]}), "csv")
    >>> data.decode().splitlines()[-2:]
    ['z', '0.5']
    """
    if format not in FORMATS:
        raise ValidationError(f"table format {format!r}: expected one of {sorted(FORMATS)}")
    if format == "csv":
        buffer = io.StringIO()
        table.write(buffer, format="ascii.ecsv", delimiter=",")
        return buffer.getvalue().encode("utf-8")
    return _fits_bytes(table, name)


def read_table_bytes(data: bytes, format: str) -> Table:
    """The table of :func:`table_bytes`'s output (units, descriptions and notes kept).

    Parameters
    ----------
    data : bytes
        A file's content.
    format : {"csv", "fits"}
        Its format.

    Returns
    -------
    Table

    Examples
    --------
    >>> t = make_table({"m": [10.5]}, units={"m": "dex"}, descriptions={"m": "log M*"})
    >>> back = read_table_bytes(table_bytes(t, "fits"), "fits")
    >>> str(back["m"].unit), back["m"].description
    ('dex', 'log M*')
    """
    if format not in FORMATS:
        raise ValidationError(f"table format {format!r}: expected one of {sorted(FORMATS)}")
    if format == "csv":
        return Table.read(data.decode("utf-8"), format="ascii.ecsv")
    from astropy.io import fits

    with fits.open(io.BytesIO(data)) as hdus:
        hdu = hdus[1]
        # NaN stays NaN, as written (astropy would mask it).
        table = Table.read(hdu, mask_invalid=False, unit_parse_strict="silent")
        for i, column in enumerate(table.colnames, start=1):
            comment = hdu.header.get(f"TCOMM{i}")
            if comment:
                table[column].description = str(comment)
            table.meta.pop(f"TCOMM{i}", None)
        table.meta.pop("EXTNAME", None)
    return table


def _fits_bytes(table: Table, name: str) -> bytes:
    from astropy.io import fits

    hdu = fits.table_to_hdu(_without_meta(table))
    hdu.name = name
    for i, column in enumerate(table.colnames, start=1):
        # Units as written (``dex`` is no FITS unit, and astropy refuses to write it).
        if table[column].unit is not None:
            hdu.header[f"TUNIT{i}"] = _card_text(table[column].unit.to_string())
        description = table[column].description
        if description:
            hdu.header[f"TCOMM{i}"] = _card_text(description)
    for key, value in table.meta.items():
        key = str(key).upper()
        if len(key) <= 8 and key.isascii() and isinstance(value, (str, int, float, bool)):
            hdu.header[key] = _card_text(value) if isinstance(value, str) else value
        else:  # a long key or a structured value: a line of text
            hdu.header["COMMENT"] = _card_text(f"{key} = {value}")
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buffer)
    return buffer.getvalue()


def _without_meta(table: Table) -> Table:
    """A copy without notes, units and descriptions: :func:`_fits_bytes` writes them as
    cards, in place of astropy's own (which fail on long keys and non-FITS units)."""
    bare = table.copy(copy_data=False)
    bare.meta.clear()
    for column in bare.colnames:
        bare[column].description = None
        bare[column].unit = None
    return bare


#: ASCII for the symbols the pages write (FITS headers hold ASCII only).
_ASCII = str.maketrans(
    {
        "≤": "<=",
        "≥": ">=",
        "−": "-",
        "σ": "sigma",
        "δ": "d",
        "Δ": "D",
        "×": "x",
        "±": "+/-",
        "·": "-",
        "→": "->",
        "…": "...",
        "²": "^2",
    }
)


def _card_text(value: Any) -> str:
    """Text a FITS card holds: ASCII, at most 68 characters (a card's room)."""
    text = str(value).translate(_ASCII).encode("ascii", "replace").decode("ascii")
    return text if len(text) <= 68 else text[:65] + "..."
