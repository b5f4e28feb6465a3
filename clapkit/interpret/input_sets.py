"""What each stellar-mass model reads: the input sets of the analysis.

The published analysis trains one model per set of inputs and asks why some estimate
mass better than others. An :class:`InputSet` names catalog columns (the features, or the
scalars fed beside the images) and, for image models, the image stack. Milky Way reddening
E(B−V) is always among them, as in the paper. No torch here: the dashboards list the sets.

:data:`INPUT_SETS` are the sets trained by default. :data:`BAND_SETS` ablate every band
alone, the images of one band (``images_band_<b>``) and its photometry
(``photometry_band_<b>``: magnitude and error), for each of ugriz; the publication
compares the r band with the rest only. They are trained when asked for by name, or all
of them as the group ``bands`` (:func:`expand_input_sets`): ten more CLAP models would
triple the time of a default CPU run and of ``make demo``.

Examples
--------
>>> input_set("images").instrument
'sdss'
>>> [name for name, chosen in INPUT_SETS.items() if chosen.kind == "features"]
['photometry', 'photometry_wise']
>>> input_set("images_band_g").bands, input_set("photometry_band_g").columns
(('g',), ('mag_g', 'magerr_g', 'ebv'))
>>> expand_input_sets(["images", "bands"])[:3]
('images', 'images_band_u', 'photometry_band_u')
"""

from __future__ import annotations

from dataclasses import dataclass

from clapkit.errors import ValidationError

__all__ = [
    "ALL_INPUT_SETS",
    "BANDS",
    "BAND_SETS",
    "GROUPS",
    "INPUT_SETS",
    "InputSet",
    "expand_input_sets",
    "input_set",
]

#: The optical bands of the mock survey's SDSS-like images and photometry.
BANDS = tuple("ugriz")
_OPTICAL = [f"{kind}_{band}" for band in BANDS for kind in ("mag", "magerr")]
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
    bands : tuple of str
        ``images`` only: the bands of the stack the model reads; all when empty.
    """

    name: str
    kind: str
    columns: tuple[str, ...]
    instrument: str = ""
    description: str = ""
    flux_columns: tuple[str, ...] = ()
    bands: tuple[str, ...] = ()


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


#: Single-band ablations: each band's images alone and its photometry alone (+ E(B−V)).
BAND_SETS: dict[str, InputSet] = {
    s.name: s
    for band in BANDS
    for s in (
        InputSet(
            f"images_band_{band}",
            "images",
            ("ebv",),
            "sdss",
            f"SDSS {band}-band images alone",
            bands=(band,),
        ),
        InputSet(
            f"photometry_band_{band}",
            "features",
            (f"mag_{band}", f"magerr_{band}", "ebv"),
            "",
            f"SDSS {band}-band photometry alone",
        ),
    )
}
#: Every input set a model can be trained on: the default ones, then the ablations.
ALL_INPUT_SETS: dict[str, InputSet] = {**INPUT_SETS, **BAND_SETS}
#: Names that stand for several input sets on the command line and in the settings.
GROUPS: dict[str, tuple[str, ...]] = {
    "default": tuple(INPUT_SETS),
    "bands": tuple(BAND_SETS),
    "all": tuple(ALL_INPUT_SETS),
}


def input_set(name: str) -> InputSet:
    """The input set called ``name``; anything else is refused with the known names."""
    if name not in ALL_INPUT_SETS:
        raise ValidationError(
            f"unknown input set {name!r}; expected one of {list(INPUT_SETS)}, a single-band "
            f"ablation (images_band_<b>, photometry_band_<b> for b in {''.join(BANDS)}) or a "
            f"group ({', '.join(GROUPS)})"
        )
    return ALL_INPUT_SETS[name]


def expand_input_sets(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Input-set names with the groups of :data:`GROUPS` spelt out, each name once.

    Examples
    --------
    >>> expand_input_sets(["photometry", "default"])[:2]
    ('photometry', 'photometry_wise')
    >>> len(expand_input_sets(["all"]))
    16
    """
    out: list[str] = []
    for name in names:
        for member in GROUPS.get(name, (name,)):
            if member not in out:
                out.append(member)
    return tuple(input_set(member).name for member in out)
