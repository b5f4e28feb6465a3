"""The exact neighbour search against a float64 brute force, its edge cases and its checks."""

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from clapkit.errors import ValidationError
from clapkit.photoz import neighbours as nbm
from clapkit.photoz.neighbours import NeighbourIndex, nearest_neighbours


def brute_force(reference, query, k, exclude=None):
    """Stable argsort of the float64 distances between the float32-rounded points."""
    ref = np.asarray(reference, dtype=np.float32).astype(np.float64)
    q = np.asarray(query, dtype=np.float32).astype(np.float64)
    d = ((q[:, None, :] - ref[None, :, :]) ** 2).sum(-1)
    if exclude is not None:
        for row, skip in enumerate(exclude):
            if skip >= 0:
                d[row, skip] = np.inf
    return np.argsort(d, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize(
    ("n_ref", "dim", "k"),
    [
        (1, 1, 1),
        (50, 1, 50),
        (700, 3, 64),
        (2500, 5, 300),
        (3000, 16, 1000),
        (1500, 17, 7),
        (400, 64, 50),
    ],
)
def test_matches_float64_brute_force(n_ref, dim, k):
    rng = np.random.default_rng(n_ref + dim)
    ref = rng.normal(size=(n_ref, dim))
    query = rng.normal(size=(77, dim))
    got = NeighbourIndex(ref).search(query, k)
    assert got.dtype == np.int32 and got.shape == (77, k)
    assert np.array_equal(got, brute_force(ref, query, k))


def test_paper_like_scale_with_self_excluded():
    # Twenty tiles of references and k = 2000: every early cut of the buffer is exercised.
    rng = np.random.default_rng(4)
    z = rng.gamma(4.0, 0.025, 20_000)
    ref = np.hstack(
        [z[:, None] / 0.1 + rng.normal(0, 0.1, (20_000, 4)), rng.normal(size=(20_000, 12))]
    )
    rows = rng.choice(20_000, 12, replace=False)
    got = NeighbourIndex(ref).search(ref[rows], 2000, exclude=rows)
    assert np.array_equal(got, brute_force(ref, ref[rows], 2000, exclude=rows))


def test_careful_search_gives_the_same_lists():
    # The fallback (cuts at k only, no guess) is what a failed guess is redone with.
    rng = np.random.default_rng(8)
    ref = rng.normal(size=(5000, 6))
    index = NeighbourIndex(ref)
    query = np.ascontiguousarray(rng.normal(size=(9, 6)), dtype=np.float32)
    k = 700
    lists = []
    for careful in (False, True):
        out = np.empty((9, k), dtype=np.int32)
        redo = np.zeros(9, dtype=np.bool_)
        index._run(
            query, k, np.empty(0, dtype=np.int64), nbm._buffer_size(k, 5000), careful, out, redo
        )
        assert not redo.any()
        lists.append(out)
    assert np.array_equal(lists[0], lists[1])
    assert np.array_equal(lists[0], brute_force(ref, query, k))


def test_slack_covers_float32_rounding():
    # Four times the worst relative rounding of a float32 squared distance.
    assert float(nbm._slack(16)) - 1 == pytest.approx(4 * 18 * 2.0**-24, rel=0.05)
    assert nbm._slack(64) > nbm._slack(16) > 1


def test_agrees_with_scikit_learn():
    rng = np.random.default_rng(5)
    ref = rng.normal(size=(2000, 8)).astype(np.float32)
    query = rng.normal(size=(40, 8)).astype(np.float32)
    got = nearest_neighbours(ref, query, 200)
    expected = (
        NearestNeighbors(n_neighbors=200, algorithm="brute")
        .fit(ref.astype(np.float64))
        .kneighbors(query.astype(np.float64), return_distance=False)
    )
    assert np.array_equal(got, expected)


def test_excluding_self_with_duplicates():
    rng = np.random.default_rng(6)
    ref = rng.normal(size=(1200, 4))
    ref[100:130] = ref[7]  # 31 copies of one point
    ref[500:505] = ref[900]
    rows = np.r_[7, 100, 129, 900, 502, np.arange(20)]
    got = NeighbourIndex(ref).search(ref[rows], 50, exclude=rows)
    assert np.array_equal(got, brute_force(ref, ref[rows], 50, exclude=rows))
    # The row itself is gone; its copies, at distance 0, come first by index.
    assert not np.any(got == rows[:, None])
    assert got[0, :30].tolist() == list(range(100, 130))
    assert got[1, :30].tolist() == [7, *range(101, 130)]


def test_exclude_minus_one_leaves_nothing_out():
    rng = np.random.default_rng(7)
    ref = rng.normal(size=(300, 3))
    exclude = np.array([0, -1, 2, -1])
    got = NeighbourIndex(ref).search(ref[:4], 10, exclude=exclude)
    assert np.array_equal(got, brute_force(ref, ref[:4], 10, exclude=exclude))
    assert got[1, 0] == 1 and got[3, 0] == 3


def test_more_ties_than_the_buffer_holds():
    # 3000 identical points: every distance ties, far more than the candidate buffer
    # (4k + 256) holds, so the search falls back to a buffer for every point.
    ref = np.zeros((3000, 2))
    ref[::500] = 1.0
    query = np.zeros((3, 2))
    got = NeighbourIndex(ref).search(query, 100)
    assert nbm._buffer_size(100, 3000) < 3000
    assert np.array_equal(got, np.tile(np.arange(1, 101), (3, 1)))
    got = NeighbourIndex(ref).search(ref[:3], 100, exclude=[0, 1, 2])
    assert np.array_equal(got, brute_force(ref, ref[:3], 100, exclude=[0, 1, 2]))


def test_sorted_references_and_all_neighbours():
    # References sorted along the query direction: the scan order must not matter.
    x = np.linspace(0.0, 1.0, 4000)[:, None] * np.ones((1, 3))
    index = NeighbourIndex(x)
    got = index.search(x[[0, 1999, 3999]], 4000)
    assert np.array_equal(got, brute_force(x, x[[0, 1999, 3999]], 4000))
    assert index.n_reference == 4000 and index.dim == 3


def test_empty_query_and_float64_input():
    index = NeighbourIndex(np.arange(20.0).reshape(10, 2))
    assert index.search(np.empty((0, 2)), 3).shape == (0, 3)
    assert index.search([[0.4, 1.4]], 2).tolist() == [[0, 1]]
    assert index.reference.dtype == np.float32


@pytest.mark.parametrize(
    ("query", "k", "exclude", "message"),
    [
        (np.zeros((2, 3)), 2, None, "3 dimensions"),
        (np.zeros(2), 2, None, "shape"),
        ([[np.nan, 0.0]], 2, None, "not finite"),
        (np.zeros((2, 2)), 0, None, r"k must be in 1\.\.10"),
        (np.zeros((2, 2)), 11, None, r"k must be in 1\.\.10"),
        (np.zeros((2, 2)), 10, [0, 1], r"1\.\.9 .* with one excluded"),
        (np.zeros((2, 2)), 2.0, None, "k must be an integer"),
        (np.zeros((2, 2)), True, None, "k must be an integer"),
        (np.zeros((2, 2)), 2, [0], "exclude must be 2 integer rows"),
        (np.zeros((2, 2)), 2, [0.0, 1.0], "exclude must be 2 integer rows"),
        (np.zeros((2, 2)), 2, [0, 10], r"exclude rows must lie in -1\.\.9"),
        (np.zeros((2, 2)), 2, [-2, 0], r"exclude rows must lie in -1\.\.9"),
    ],
)
def test_bad_search_input_raises(query, k, exclude, message):
    index = NeighbourIndex(np.arange(20.0).reshape(10, 2))
    with pytest.raises(ValidationError, match=message):
        index.search(query, k, exclude=exclude)


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        (np.zeros((0, 2)), "at least one point"),
        (np.zeros(5), "shape"),
        (np.zeros((3, 0)), "shape"),
        ([[0.0, np.inf]], "not finite"),
    ],
)
def test_bad_reference_raises(reference, message):
    with pytest.raises(ValidationError, match=message):
        NeighbourIndex(reference)
