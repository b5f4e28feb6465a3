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
"""

from __future__ import annotations

import networkx as nx

from clapkit.errors import ValidationError
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


def true_graph(
    band_sets: tuple[str, ...] = ("sdss", "cfhtls", "wise"), *, selection: bool = True
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
    """
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
            _add_magnitude(graph, band_set, band)
    if selection:
        _add_magnitude(graph, "sdss", "r")
        graph.add_edge(SELECTION_MAGNITUDE, SELECTION_NODE)
        graph.graph["selection"] = SELECTION_NODE
    return graph


def _add_magnitude(graph: nx.DiGraph, band_set: str, band: str) -> None:
    true_mag = f"true_mag_{_PREFIX[band_set]}{band}"
    mag = f"mag_{_PREFIX[band_set]}{band}"
    graph.add_edges_from((parent, true_mag) for parent in _MAGNITUDE_PARENTS)
    # The noise grows with the flux (Poisson, dimmed by Milky Way dust) and the size (sky
    # within the aperture); the error is computed from the noisy flux.
    graph.add_edges_from((parent, mag) for parent in (true_mag, "hlr", "ebv"))
    graph.add_edges_from(
        (parent, f"magerr_{_PREFIX[band_set]}{band}") for parent in (mag, "hlr", "ebv")
    )
    if band_set == "sdss":
        # Petrosian = the (extinction-corrected) model magnitude + the source galaxy's
        # Petrosian-minus-model offset (``simulate_chunk``).
        graph.add_edges_from((parent, f"petromag_{band}") for parent in (mag, "source_index"))
