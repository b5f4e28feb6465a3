"""The 2-D latent map and clap/knn.h5, what the neighbour browser reads."""

import h5py
import numpy as np
import pytest

from clapkit.errors import FileFormatError, ValidationError
from clapkit.photoz.details import read_clap_details
from clapkit.photoz.projection import project_latent
from clapkit.testing import SyntheticRunConfig, synthetic_run


def two_clusters(n=60, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n // 2)
    latent = rng.normal(0, 0.1, (n, dim)) + labels[:, None] * 3.0
    return latent, labels


@pytest.mark.parametrize("method", ["pca", "umap"])
def test_projection_keeps_separate_clusters_apart(method):
    latent, labels = two_clusters()
    xy = project_latent(latent, method, seed=1)
    assert xy.shape == (60, 2) and xy.dtype == np.float32
    centres = [xy[labels == c].mean(axis=0) for c in (0, 1)]
    spread = max(xy[labels == c].std(axis=0).max() for c in (0, 1))
    assert np.linalg.norm(centres[0] - centres[1]) > 3 * spread


def test_umap_projection_is_reproducible_with_its_seed():
    latent, _ = two_clusters(n=40)
    np.testing.assert_array_equal(
        project_latent(latent, "umap", seed=3), project_latent(latent, "umap", seed=3)
    )


def test_projection_refuses_bad_input():
    with pytest.raises(ValidationError, match="shape"):
        project_latent(np.zeros(5))
    with pytest.raises(ValidationError, match="at least 3"):
        project_latent(np.zeros((2, 4)))
    bad = np.zeros((5, 3))
    bad[2, 1] = np.nan
    with pytest.raises(ValidationError, match="latent vector 2"):
        project_latent(bad, "pca")
    with pytest.raises(ValidationError, match="tsne"):
        project_latent(np.ones((5, 3)), "tsne")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return synthetic_run(tmp_path_factory.mktemp("synthetic"), SyntheticRunConfig(60, 120))


def test_details_give_each_galaxy_its_chosen_neighbours(run):
    details = read_clap_details(run.root / "clap" / "knn.h5")
    pdfs, _ = run.load_pdfs("clap_raw")
    assert details.ids.tolist() == pdfs.ids.tolist()
    assert details.projection.shape == (60, 2)
    for row in (0, 17, 59):
        chosen = details.neighbours(row)
        assert chosen.size == details.k[row]
        # The raw PDF is the histogram of the chosen neighbours' redshifts.
        counts, _ = np.histogram(details.train_z[chosen], pdfs.edges)
        np.testing.assert_allclose(pdfs.p[row], counts / counts.sum())
    assert details.neighbours(3, count=5).tolist() == details.neighbours(3)[:5].tolist()
    with pytest.raises(ValidationError, match="outside"):
        details.neighbours(60)


def test_details_from_an_older_prediction_say_how_to_fix_it(run, tmp_path):
    old = tmp_path / "knn.h5"
    old.write_bytes((run.root / "clap" / "knn.h5").read_bytes())
    with h5py.File(old, "a") as f:
        del f["projection"]
    with pytest.raises(FileFormatError, match="predict again"):
        read_clap_details(old)


def test_synthetic_run_is_evaluated_like_a_real_one(run):
    metrics = run.read_json("metrics.json")["methods"]
    assert set(metrics) == set(run.methods())
    assert {"by_z_true", "by_mag_r", "by_g_r", "coverage_curve"} <= set(metrics["clap"])
    # The stand-in softmax is over-confident, as the paper's is.
    assert metrics["softmax"]["summary"]["coverage_68"] < 0.6
    assert run.data_path().is_file()
