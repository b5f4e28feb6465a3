"""What each stellar-mass model reads: the input sets of the analysis.

The published analysis trains one model per set of inputs and asks why some estimate
mass better than others. An :class:`InputSet` names catalog columns (the features, or the
scalars fed beside the images) and, for image models, the image stack. Milky Way reddening
E(B−V) is always among them, as in the paper. No torch here: the dashboards list the sets.

Examples
--------
>>> input_set("images").instrument
'sdss'
>>> [name for name, chosen in INPUT_SETS.items() if chosen.kind == "features"]
['photometry', 'photometry_wise']
"""

from __future__ import annotations

from dataclasses import dataclass

from clapkit.errors import ValidationError

__all__ = ["INPUT_SETS", "InputSet", "input_set"]

_OPTICAL = [f"{kind}_{band}" for band in "ugriz" for kind in ("mag", "magerr")]
_WISE = [f"{kind}_{band}" for band in ("w1", "w2", "w3") for kind in ("mag", "magerr")]


@dataclass(frozen=True)
class InputSet:
    """What one stellar-mass model reads.

    Attributes
    ----------
    name : str
    kind : {"features", "images"}
    columns : tuple of str
        Catalog columns: the features, or the scalars fed beside the images.
    instrument : str
        The image stack (``images`` only).
    description : str
    flux_columns : tuple of str
        ``images`` only: one magnitude column per band; each band is divided by the
        galaxy's flux in it (see :class:`~clapkit.photoz.network_inputs.InputSpec`).
    """

    name: str
    kind: str
    columns: tuple[str, ...]
    instrument: str = ""
    description: str = ""
    flux_columns: tuple[str, ...] = ()


INPUT_SETS: dict[str, InputSet] = {
    s.name: s
    for s in (
        InputSet("photometry", "features", (*_OPTICAL, "ebv"), "", "SDSS ugriz photometry"),
        InputSet(
            "photometry_wise", "features", (*_OPTICAL, *_WISE, "ebv"), "", "ugriz + WISE W1-W3"
        ),
        InputSet("images", "images", ("ebv",), "sdss", "SDSS ugriz images"),
        InputSet(
            "images_normalised",
            "images",
            ("ebv",),
            "sdss",
            "images, each band divided by its flux",
            tuple(f"mag_{band}" for band in "ugriz"),
        ),
        InputSet("images_wise", "images", ("ebv", *_WISE), "sdss", "images + WISE W1-W3"),
        InputSet(
            "images_wise_z", "images", ("ebv", *_WISE, "z"), "sdss", "images + WISE + redshift"
        ),
    )
}


def input_set(name: str) -> InputSet:
    """The input set called ``name``; anything else is refused with the known names."""
    if name not in INPUT_SETS:
        raise ValidationError(f"unknown input set {name!r}; expected one of {list(INPUT_SETS)}")
    return INPUT_SETS[name]
