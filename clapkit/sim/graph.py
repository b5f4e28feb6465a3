"""The generative process of the mock survey as a directed graph over catalog columns.

Interpretability methods (local conditional-independence tests, causal discovery) can be
scored against it, because on mock data the truth is known. An edge ``a -> b`` means
that ``b`` is computed from ``a`` in :mod:`clapkit.sim`; nodes are catalog columns.
``source_index`` (the real SDSS galaxy a simulated one was resampled from) is the common
cause of redshift, SED (the template shares ``sed_coeff_k``), mass and Galactic
reddening, which the population draws jointly; the SED is the common cause that ties
the magnitudes of all bands together. Observed magnitudes are noisy versions of the true ones; sizes on the sky
depend on physical size and redshift; the disk's dust depends on its inclination and on
mass. Images are not nodes: every catalog quantity above the magnitudes shapes them
(:data:`IMAGE_PARENTS` lists which, for a proxy node that needs them).

The mock keeps a drawn galaxy only if its extinction-corrected Petrosian r magnitude is
below :data:`~clapkit.sim.survey.PETROSIAN_R_LIMIT` (``_select_galaxies`` in
:mod:`clapkit.sim.survey`). That magnitude is the catalog's ``petromag_r``: the observed,
extinction-corrected ``mag_r`` plus the Petrosian-minus-model offset of the real galaxy
it was resampled from (``source_index``). So the graph has a ``petromag_<band>`` node for
each SDSS band and a binary node :data:`SELECTION_NODE` whose only parent is
``petromag_r``. Every galaxy of a catalog has ``selected = 1``: the data are conditioned
on it, which makes its ancestors (redshift, mass, SED, sizes, dust, the source galaxy)
dependent where the graph alone would separate them. The graph records the node's name
as ``graph.graph["selection"]``.

A survey simulated with ``observing="varying"`` records each galaxy's seeing and sky
(``psf_fwhm_<instrument>_<band>``, ``sky_<instrument>_<band>``; see
:mod:`clapkit.sim.conditions`). ``true_graph(observing="varying")`` adds them as root
nodes (drawn independently of everything) whose children are the observed magnitude and
its error in that band (the noise grows with the sky and the PSF's area);
:func:`image_parents` adds them to what shapes the images (the PSF blurs, the sky sets
the pixel noise). One approximation: the selection is made on the nominal-condition
photometry (see :mod:`clapkit.sim.survey`), which differs from ``petromag_r`` by the
condition-dependent part of the noise (< 0.01 mag near the cut), so the graph's
``petromag_r -> selected`` stands for a selection that does not itself see the
conditions.
"""

from __future__ import annotations

import networkx as nx

from clapkit.errors import ValidationError
from clapkit.sim.conditions import CONDITION_INSTRUMENTS, check_observing, psf_column, sky_column
from clapkit.sim.seds import BAND_NAMES

#: Prefix of each band set's magnitude columns (see :mod:`clapkit.sim.survey`).
_PREFIX = {"sdss": "", "cfhtls": "cfhtls_", "wise": ""}

SED_COLUMNS = tuple(f"sed_coeff_{k}" for k in range(5))
#: The node that stands for the survey's selection (not a catalog column: every row has it).
SELECTION_NODE = "selected"
#: The magnitude the selection cuts on (``petro_r`` in ``clapkit.sim.survey._select_galaxies``).
SELECTION_MAGNITUDE = "petromag_r"

_STRUCTURE = [
    ("source_index", "z"),
    ("source_index", "log_mstar"),
    ("source_index", "ebv"),
    *(("source_index", sed) for sed in SED_COLUMNS),
    *((sed, "log_mstar") for sed in SED_COLUMNS),
    *((sed, "restframe_u_r") for sed in SED_COLUMNS),
    *((sed, "bulge_fraction") for sed in SED_COLUMNS),
    ("restframe_u_r", "bulge_fraction"),
    ("z", "bulge_fraction"),
    ("log_mstar", "bulge_hlr_kpc"),
    ("log_mstar", "disk_hlr_kpc"),
    ("bulge_hlr_kpc", "bulge_hlr"),
    ("disk_hlr_kpc", "disk_hlr"),
    ("z", "bulge_hlr"),
    ("z", "disk_hlr"),
    ("inclination", "disk_q"),
    ("disk_q", "disk_av"),
    ("log_mstar", "disk_gamma_v"),
    ("disk_gamma_v", "disk_av"),
    # The flux-weighted mean size weighs bulge and (dust-dimmed, rest-frame) disk light.
    ("bulge_hlr", "hlr"),
    ("disk_hlr", "hlr"),
    ("bulge_fraction", "hlr"),
    ("disk_av", "hlr"),
    ("z", "hlr"),
]
#: Parents of every true magnitude: the SED (template shares, luminosity via mass,
#: redshift), the real galaxy's template-fit residual (through ``source_index``), the
#: split between bulge and disk with the disk's dust. Milky Way extinction is corrected
#: exactly and enters only through the noise.
_MAGNITUDE_PARENTS = ("z", "log_mstar", *SED_COLUMNS, "source_index", "bulge_fraction", "disk_av")
#: What shapes an image (``Components`` in ``clapkit.sim.survey.simulate_chunk``): the
#: bulge and disk fluxes in every band (made from the magnitudes' parents, and not
#: corrected for Milky Way dust, hence ``ebv``), their sizes and axis ratios, the position
#: angle and the centroid offsets. ``hlr`` is not among them: it only sets the noise of
#: the catalog photometry.
IMAGE_PARENTS = (
    *_MAGNITUDE_PARENTS,
    "ebv",
    "bulge_hlr",
    "disk_hlr",
    "bulge_q",
    "disk_q",
    "position_angle",
    "offset_x",
    "offset_y",
)


def image_parents(
    observing: str = "fixed", instruments: tuple[str, ...] = CONDITION_INSTRUMENTS
) -> tuple[str, ...]:
    """What shapes the images: :data:`IMAGE_PARENTS`, plus the conditions when varying.

    Parameters
    ----------
    observing : str
        ``"fixed"`` or ``"varying"``, as the survey was simulated.
    instruments : tuple of str
        Whose images: the PSF FWHM and sky columns of these instruments are added.

    Examples
    --------
    >>> image_parents() == IMAGE_PARENTS
    True
    >>> extra = image_parents("varying", ("sdss",))[len(IMAGE_PARENTS):]
    >>> extra[:2], len(extra)
    (('psf_fwhm_sdss_u', 'sky_sdss_u'), 10)
    """
    if check_observing(observing) == "fixed":
        return IMAGE_PARENTS
    unknown = [name for name in instruments if name not in CONDITION_INSTRUMENTS]
    if isinstance(instruments, str) or unknown:
        raise ValidationError(
            f"instruments must be a tuple of {CONDITION_INSTRUMENTS}, got {instruments!r}"
        )
    extra = tuple(
        column
        for name in instruments
        for band in BAND_NAMES[name]
        for column in (psf_column(name, band), sky_column(name, band))
    )
    return (*IMAGE_PARENTS, *extra)


def true_graph(
    band_sets: tuple[str, ...] = ("sdss", "cfhtls", "wise"),
    *,
    selection: bool = True,
    observing: str = "fixed",
) -> nx.DiGraph:
    """The directed acyclic graph of the mock survey's generative process.

    Parameters
    ----------
    band_sets : tuple of str
        Whose magnitude columns to include (``mag_r``, ``mag_cfhtls_r``, ``mag_w1``...).
        The SDSS ones also bring the ``petromag_<band>`` nodes.
    selection : bool
        Add the selection node :data:`SELECTION_NODE` (child of ``petromag_r``) and name
        it in ``graph.graph["selection"]``. The r-band chain it reads (``true_mag_r``,
        ``mag_r``, ``petromag_r``) is then in the graph whatever the band sets.
    observing : str
        ``"fixed"`` (nominal conditions, no condition nodes) or ``"varying"``: the
        catalog's ``psf_fwhm_<instrument>_<band>`` and ``sky_<instrument>_<band>`` are
        parents of that band's ``mag`` and ``magerr`` (SDSS and CFHTLS bands; WISE keeps
        fixed depths).

    Returns
    -------
    networkx.DiGraph
        Nodes are catalog column names, and the selection node.

    Examples
    --------
    >>> g = true_graph(("sdss",))
    >>> nx.is_directed_acyclic_graph(g), g.has_edge("inclination", "disk_q")
    (True, True)
    >>> sorted(g.predecessors("mag_r"))
    ['ebv', 'hlr', 'true_mag_r']
    >>> g.graph["selection"], sorted(g.predecessors("petromag_r"))
    ('selected', ['mag_r', 'source_index'])
    >>> "selected" in true_graph(("sdss",), selection=False)
    False
    >>> sorted(true_graph(("sdss",), observing="varying").successors("sky_sdss_r"))
    ['mag_r', 'magerr_r']
    """
    varying = check_observing(observing) == "varying"
    unknown = [name for name in band_sets if name not in BAND_NAMES]
    if isinstance(band_sets, str) or unknown:
        raise ValidationError(
            f"band_sets must be a tuple of {sorted(BAND_NAMES)}, got {band_sets!r}"
        )
    graph = nx.DiGraph()
    graph.add_edges_from(_STRUCTURE)
    graph.add_nodes_from(["bulge_q", "position_angle", "offset_x", "offset_y"])
    for band_set in band_sets:
        for band in BAND_NAMES[band_set]:
            _add_magnitude(graph, band_set, band, varying)
    if selection:
        _add_magnitude(graph, "sdss", "r", varying)
        graph.add_edge(SELECTION_MAGNITUDE, SELECTION_NODE)
        graph.graph["selection"] = SELECTION_NODE
    return graph


def _add_magnitude(graph: nx.DiGraph, band_set: str, band: str, varying: bool = False) -> None:
    true_mag = f"true_mag_{_PREFIX[band_set]}{band}"
    mag = f"mag_{_PREFIX[band_set]}{band}"
    graph.add_edges_from((parent, true_mag) for parent in _MAGNITUDE_PARENTS)
    # The noise grows with the flux (Poisson, dimmed by Milky Way dust) and the size (sky
    # within the aperture); the error is computed from the noisy flux.
    graph.add_edges_from((parent, mag) for parent in (true_mag, "hlr", "ebv"))
    graph.add_edges_from(
        (parent, f"magerr_{_PREFIX[band_set]}{band}") for parent in (mag, "hlr", "ebv")
    )
    if varying and band_set in CONDITION_INSTRUMENTS:
        # This galaxy's seeing and sky set the noise level of its photometry.
        for condition in (psf_column(band_set, band), sky_column(band_set, band)):
            graph.add_edges_from(
                (condition, child) for child in (mag, f"magerr_{_PREFIX[band_set]}{band}")
            )
    if band_set == "sdss":
        # Petrosian = the (extinction-corrected) model magnitude + the source galaxy's
        # Petrosian-minus-model offset (``simulate_chunk``).
        graph.add_edges_from((parent, f"petromag_{band}") for parent in (mag, "source_index"))
