"""The true causal graph of the mock survey, checked against a simulated catalog."""

import networkx as nx
import numpy as np
import pytest
from astropy.cosmology import Planck18

from clapkit.errors import ValidationError
from clapkit.sim import true_graph
from clapkit.sim.dust import effective_wavelengths
from clapkit.sim.morphology import disk_axis_ratio, mean_log_inverse_axis_ratio, restframe_u_r
from clapkit.sim.survey import dust_strength

pytestmark = pytest.mark.usefixtures("kcorrect_ready")

MAGNITUDES = [
    f"{kind}_{band}"
    for kind in ("true_mag", "mag", "magerr")
    for band in [*"ugriz", *(f"cfhtls_{b}" for b in "ugriz"), "w1", "w2", "w3"]
]


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    return true_graph()


def test_the_graph_is_a_dag(graph):
    assert nx.is_directed_acyclic_graph(graph)
    assert nx.is_directed_acyclic_graph(true_graph(("sdss",)))


def test_every_node_but_the_selection_is_a_column_of_a_simulated_catalog(graph, mock_survey):
    missing = set(graph.nodes) - set(mock_survey.catalog.colnames)
    assert missing == {graph.graph["selection"]} == {"selected"}


def test_the_selection_reads_the_petrosian_r_magnitude_alone(graph):
    # survey._select_galaxies cuts on mag_r - extinction_r + petro_offset_r, which is the
    # catalog's petromag_r: the extinction-corrected mag_r plus the source galaxy's offset.
    assert set(graph.predecessors("selected")) == {"petromag_r"}
    assert set(graph.predecessors("petromag_r")) == {"mag_r", "source_index"}
    assert graph.out_degree("selected") == 0
    for band in "ugiz":
        assert set(graph.predecessors(f"petromag_{band}")) == {f"mag_{band}", "source_index"}
    assert "petromag_r" not in true_graph(("wise",), selection=False)
    # The selected galaxies descend from redshift, mass, the SED, sizes, dust, reddening
    # and the disk's inclination, but not from the orientation on the sky.
    ancestors = nx.ancestors(graph, "selected")
    assert {"z", "log_mstar", "sed_coeff_0", "hlr", "disk_av", "ebv", "inclination"} <= ancestors
    assert not {"position_angle", "offset_x", "bulge_q"} & ancestors


def test_the_selection_chain_is_there_whatever_the_band_sets():
    wise = true_graph(("wise",))
    assert wise.graph["selection"] == "selected"
    assert nx.has_path(wise, "true_mag_r", "selected") and "mag_u" not in wise
    assert "selected" not in true_graph(selection=False).nodes


def test_the_selected_catalog_passes_the_cut_on_petromag_r(mock_survey):
    from clapkit.sim.survey import PETROSIAN_R_LIMIT

    catalog = mock_survey.catalog
    assert np.all(np.asarray(catalog["petromag_r"]) < PETROSIAN_R_LIMIT)


@pytest.mark.parametrize("band_sets", ["sdss", ("sdss", "euclid")])
def test_unknown_band_sets_are_refused(band_sets):
    with pytest.raises(ValidationError, match="band_sets"):
        true_graph(band_sets)


def test_the_image_parents_are_nodes_and_leave_out_what_only_the_photometry_reads(graph):
    from clapkit.sim.graph import IMAGE_PARENTS

    assert set(IMAGE_PARENTS) <= set(graph.nodes)
    assert {"position_angle", "disk_q", "bulge_hlr", "ebv", "log_mstar"} <= set(IMAGE_PARENTS)
    assert "hlr" not in IMAGE_PARENTS and "inclination" not in IMAGE_PARENTS


def test_every_magnitude_of_the_catalog_is_a_node(graph):
    assert set(MAGNITUDES) <= set(graph.nodes)


def test_band_sets_select_the_magnitude_nodes():
    sdss_only = true_graph(("sdss",))
    assert "mag_r" in sdss_only and "mag_cfhtls_r" not in sdss_only and "mag_w1" not in sdss_only
    assert "mag_w3" in true_graph(("wise",))
    # The structure above the magnitudes is the same whatever the band sets.
    assert sdss_only.has_edge("inclination", "disk_q")


@pytest.mark.parametrize(
    "edge",
    [
        ("inclination", "disk_q"),
        ("disk_q", "disk_av"),
        ("z", "bulge_hlr"),
        ("z", "disk_hlr"),
        ("log_mstar", "disk_hlr_kpc"),
        ("log_mstar", "bulge_hlr_kpc"),
        ("true_mag_r", "mag_r"),
        ("true_mag_cfhtls_g", "mag_cfhtls_g"),
        ("z", "true_mag_r"),
        ("restframe_u_r", "bulge_fraction"),
        ("source_index", "z"),
    ],
)
def test_edges_of_the_generative_process_exist(graph, edge):
    assert graph.has_edge(*edge)


def test_position_angle_and_offsets_cause_nothing(graph):
    for node in ("position_angle", "offset_x", "offset_y", "bulge_q"):
        assert node in graph and graph.out_degree(node) == 0, node


def test_redshift_is_caused_by_no_magnitude(graph):
    assert set(graph.predecessors("z")) == {"source_index"}
    assert not any(nx.has_path(graph, mag, "z") for mag in MAGNITUDES)


def test_observed_magnitudes_are_noisy_true_magnitudes(graph):
    # The physics reaches an observed magnitude through its true magnitude; only what
    # sets the noise (size, Milky Way dust) may point at it directly.
    physics = {"z", "log_mstar", "restframe_u_r", "bulge_fraction", "disk_av", "inclination"}
    for band in [*"ugriz", "cfhtls_r", "w2"]:
        parents = set(graph.predecessors(f"mag_{band}"))
        assert f"true_mag_{band}" in parents
        assert not parents & physics, band
        assert nx.has_path(graph, "inclination", f"mag_{band}")  # through the disk's dust


# -- the graph's deterministic edges hold in the catalog ---------------------------------


def test_disk_axis_ratio_is_a_function_of_inclination(mock_survey):
    catalog = mock_survey.catalog
    np.testing.assert_allclose(
        np.asarray(catalog["disk_q"]), disk_axis_ratio(np.radians(catalog["inclination"]))
    )


def test_disk_dust_is_a_function_of_axis_ratio_and_mass(mock_survey):
    catalog = mock_survey.catalog
    gamma = dust_strength(np.asarray(catalog["log_mstar"]))
    np.testing.assert_allclose(np.asarray(catalog["disk_gamma_v"]), gamma)
    expected = gamma * (np.log10(1 / np.asarray(catalog["disk_q"])) - mean_log_inverse_axis_ratio())
    np.testing.assert_allclose(np.asarray(catalog["disk_av"]), expected, atol=1e-12)


def test_angular_sizes_are_functions_of_physical_size_and_redshift(mock_survey):
    catalog = mock_survey.catalog
    per_kpc = Planck18.arcsec_per_kpc_proper(np.asarray(catalog["z"])).value
    for part in ("bulge", "disk"):
        expected = np.maximum(np.asarray(catalog[f"{part}_hlr_kpc"]) * per_kpc, 0.05)
        np.testing.assert_allclose(np.asarray(catalog[f"{part}_hlr"]), expected, rtol=1e-6)


def _mean_size(catalog, z):
    """The catalog's ``hlr`` recomputed from its graph parents, with the redshift ``z``."""
    fraction = np.asarray(catalog["bulge_fraction"])
    # The disk's extra dust in the observed r band, at the rest-frame wavelength.
    rest = effective_wavelengths("sdss")[2] / (1 + z)
    dimming = 10 ** (-0.4 * np.asarray(catalog["disk_av"]) * (rest / 5500.0) ** -0.7)
    bulge, disk = fraction, (1 - fraction) * dimming
    sizes = np.asarray(catalog["bulge_hlr"]), np.asarray(catalog["disk_hlr"])
    return (bulge * sizes[0] + disk * sizes[1]) / (bulge + disk)


def test_the_mean_size_has_all_its_parents_in_the_graph(graph, mock_survey):
    catalog = mock_survey.catalog
    z = np.asarray(catalog["z"])
    hlr = np.asarray(catalog["hlr"])
    # The recomputation is exact (to kcorrect's float32), so these are all of hlr's
    # inputs ...
    np.testing.assert_allclose(_mean_size(catalog, z), hlr, rtol=1e-6)
    # ... and the redshift is one of them: other parents fixed, hlr moves with z.
    assert np.max(np.abs(_mean_size(catalog, z + 0.1) / hlr - 1)) > 1e-3
    assert {"bulge_hlr", "disk_hlr", "bulge_fraction", "disk_av", "z"} <= set(
        graph.predecessors("hlr")
    )


def test_sed_shares_sum_to_one_and_set_the_restframe_colour(graph, mock_survey):
    catalog = mock_survey.catalog
    shares = np.column_stack([np.asarray(catalog[f"sed_coeff_{k}"]) for k in range(5)])
    assert np.all(shares >= 0)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    # The rest-frame colour depends on the shares alone (not on z or luminosity).
    colour = restframe_u_r(shares, np.full(len(catalog), 0.3))
    np.testing.assert_allclose(colour, np.asarray(catalog["restframe_u_r"]), atol=1e-5)
    assert set(graph.predecessors("restframe_u_r")) == {f"sed_coeff_{k}" for k in range(5)}
