"""Local conditional-dependence tests: validity, power on known graphs, the result object."""

import json

import networkx as nx
import numpy as np
import pytest
from astropy.table import MaskedColumn, Table
from scipy import stats

from clapkit.errors import FileFormatError, OverwriteError, ValidationError
from clapkit.interpret.local_tests import (
    MIN_CENTRES,
    CausalGraph,
    LocalTestResult,
    benjamini_hochberg,
    disjoint_neighbourhoods,
    local_test,
    partial_correlation,
    run_local_tests,
)

EXTERNAL = ["hidden", "noise", "through_latent", "through_c"]


def synthetic(seed: int, n: int = 3000) -> tuple[np.ndarray, Table]:
    """Y = a + b + c with a latent space that knows a only.

    ``hidden`` carries b (dependent within neighbourhoods), ``noise`` nothing,
    ``through_latent`` depends on Y only through a (independent given S), and
    ``through_c`` carries c (dependent, but not once c is conditioned on).
    """
    rng = np.random.default_rng(seed)
    a, b, c = rng.normal(size=(3, n))
    latent = np.column_stack([a + 0.02 * rng.normal(size=n), 0.02 * rng.normal(size=n)])
    catalog = Table(
        {
            "log_mstar": a + b + c,
            "hidden": b + 0.5 * rng.normal(size=n),
            "noise": rng.normal(size=n),
            "through_latent": a + 0.1 * rng.normal(size=n),
            "through_c": c + 0.5 * rng.normal(size=n),
            "c": c,
        }
    )
    return latent, catalog


@pytest.fixture(scope="module")
def graph() -> CausalGraph:
    latent, catalog = synthetic(0)
    return run_local_tests(
        latent, catalog, external=EXTERNAL, conditioning="c", k=30, n_permutations=199
    )


def small_result(**overrides) -> LocalTestResult:
    values = dict(
        effect=0.2,
        effect_err=0.03,
        p_value=0.004,
        verdict="dependent",
        alpha=0.05,
        conditioned_on=(),
        adjust_latent=False,
        k=30,
        n_centres=2,
        n_permutations=249,
        seed=0,
        centres=[3, 8],
        centre_r=[0.25, 0.15],
        centre_p=[0.01, 0.2],
    )
    return LocalTestResult(**{**values, **overrides})


# -- the statistic -----------------------------------------------------------------------


def test_partial_correlation_matches_scipy_and_the_precision_matrix():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(200, 2))
    x = z @ [1.0, -0.5] + rng.normal(size=200)
    y = z @ [0.3, 0.8] + 0.4 * x + rng.normal(size=200)
    assert partial_correlation(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    # One conditioning variable: the textbook formula from pairwise correlations.
    r = np.corrcoef([x, y, z[:, 0]])
    expected = (r[0, 1] - r[0, 2] * r[1, 2]) / np.sqrt((1 - r[0, 2] ** 2) * (1 - r[1, 2] ** 2))
    assert partial_correlation(x, y, z[:, 0]) == pytest.approx(expected, abs=1e-12)
    # Two: minus the normalised off-diagonal of the inverse covariance.
    p = np.linalg.inv(np.cov(np.column_stack([x, y, z]).T))
    expected = -p[0, 1] / np.sqrt(p[0, 0] * p[1, 1])
    assert partial_correlation(x, y, z) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("x", "y", "z", "message"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], None, "y must have shape"),
        ([1.0, np.nan, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0], None, "x is not finite"),
        ([1.0, 2.0, 3.0], [2.0, 1.0, 3.0], [0.0, 1.0, 3.0], "needs at least 4 points"),
        ([1.0, 2.0, 3.0, 5.0], [2.0, 1.0, 3.0, 3.0], [1.0, 2.0, 3.0, 5.0], "x has no variance"),
        ([1.0, 1.0, 1.0, 1.0], [2.0, 1.0, 3.0, 3.0], None, "x is constant"),
    ],
)
def test_partial_correlation_refuses_bad_input(x, y, z, message):
    with pytest.raises(ValidationError, match=message):
        partial_correlation(x, y, z)


def test_neighbourhoods_are_disjoint_true_knn_sets_and_seeded():
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(600, 3))
    centres, members = disjoint_neighbourhoods(latent, 12, seed=5)
    assert members.shape == (centres.size, 12)
    assert np.unique(members).size == members.size
    distances = ((latent[centres, None] - latent[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(members, np.argsort(distances, axis=1, kind="stable")[:, :12])
    again, _ = disjoint_neighbourhoods(latent, 12, seed=5)
    np.testing.assert_array_equal(centres, again)
    assert not np.array_equal(centres, disjoint_neighbourhoods(latent, 12, seed=6)[0])
    assert disjoint_neighbourhoods(latent, 12, n_centres=7, seed=5)[0].tolist() == (
        centres[:7].tolist()
    )


# -- the verdicts on a known graph -------------------------------------------------------


def test_recovers_the_known_dependences(graph):
    verdicts = {(e["source"], tuple(e["conditioned_on"])): e["verdict"] for e in graph.edges}
    assert verdicts == {
        ("hidden", ()): "dependent",
        ("hidden", ("c",)): "dependent",
        ("noise", ()): "independent",
        ("noise", ("c",)): "independent",
        ("through_latent", ()): "independent",
        ("through_latent", ("c",)): "independent",
        ("through_c", ()): "dependent",
        ("through_c", ("c",)): "independent",
    }
    # The effects and their errors make sense: b explains a third of Y's local variance
    # unconditionally (r ≈ 1 / √2.5) and all of it once c is removed (r ≈ 1 / √1.25).
    hidden = graph.result("hidden")
    assert hidden.effect == pytest.approx(1 / np.sqrt(2.5), abs=4 * hidden.effect_err)
    conditioned = graph.result("hidden", ["c"])
    assert conditioned.effect == pytest.approx(1 / np.sqrt(1.25), abs=4 * conditioned.effect_err)
    noise = graph.result("noise")
    assert abs(noise.effect) < 3 * noise.effect_err
    assert noise.n_centres >= 40
    assert noise.centres.shape == noise.centre_r.shape == noise.centre_p.shape
    assert np.all((noise.centre_p > 0) & (noise.centre_p <= 1))


def test_all_tests_share_centres_and_match_local_test(graph):
    latent, catalog = synthetic(0)
    centres = {tuple(graph.result(s).centres) for s in EXTERNAL}
    assert len(centres) == 1
    single = local_test(
        latent,
        catalog["log_mstar"],
        catalog["through_c"],
        conditioning=catalog["c"],
        conditioning_names=["c"],
        k=30,
        n_permutations=199,
    )
    in_graph = graph.result("through_c", ["c"])
    # A test alone is not adjusted for multiplicity; within the graph it is.
    assert single.p_adjusted is None and in_graph.p_adjusted is not None
    unadjusted = {k: v for k, v in in_graph.to_dict().items() if k not in ("p_adjusted", "verdict")}
    assert {k: v for k, v in single.to_dict().items() if k in unadjusted} == unadjusted
    assert single.regression == in_graph.regression == "quadratic"


def test_a_variable_is_never_conditioned_on_itself():
    latent, catalog = synthetic(1, n=800)
    graph = run_local_tests(
        latent, catalog, external=["c", "noise"], conditioning="c", k=20, n_permutations=99
    )
    assert [(e["source"], e["conditioned_on"]) for e in graph.edges] == [
        ("c", []),
        ("noise", []),
        ("noise", ["c"]),
    ]


def test_adjust_latent_removes_a_trend_across_wide_neighbourhoods():
    # The latent space knows a exactly, but k = 50 of 1500 galaxies spans a range of a
    # over which Y and the variable both change: the published test sees that trend.
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2, 1500))
    args = (a[:, None], a + 0.3 * b, a + 0.05 * rng.normal(size=1500))
    assert local_test(*args, k=50, n_permutations=199).verdict == "dependent"
    adjusted = local_test(*args, k=50, n_permutations=199, adjust_latent=True)
    assert adjusted.verdict == "independent"
    assert adjusted.adjust_latent


def test_a_neighbourhood_without_variance_counts_as_no_dependence():
    rng = np.random.default_rng(4)
    latent = rng.normal(size=(1000, 1))
    flag = (latent[:, 0] > 0.5).astype(float)  # constant in most neighbourhoods
    result = local_test(latent, rng.normal(size=1000), flag, k=20, n_permutations=99)
    constant = result.centre_r == 0
    assert constant.sum() >= MIN_CENTRES // 2
    assert np.all(result.centre_p[constant] == 1.0)
    assert np.isfinite(result.effect) and np.isfinite(result.effect_err)


# -- conditioning: quadratic (as published) against linear ------------------------------


def quadratic_in_z(seed: int, n: int = 3000) -> tuple[np.ndarray, Table]:
    """Mass depends on z quadratically and on b, which the latent space lacks.

    ``z_only`` depends on z alone (quadratically): independent of the mass given S and
    z, but a straight line in z leaves the same curvature in both residuals. ``hidden``
    carries b: dependent whatever the conditioning.
    """
    rng = np.random.default_rng(seed)
    a, b, e1, e2 = rng.normal(size=(4, n))
    z = rng.uniform(-1.0, 1.0, size=n)
    latent = a[:, None]  # knows a, not z or b
    catalog = Table(
        {
            "log_mstar": a + 3.0 * z**2 + 0.5 * b,
            "z_only": 3.0 * z**2 + 0.5 * e1,
            "hidden": b + 0.5 * e2,
            "z": z,
        }
    )
    return latent, catalog


@pytest.mark.parametrize("regression", ["linear", "quadratic"])
def test_quadratic_conditioning_removes_a_curved_dependence_on_z(regression):
    latent, catalog = quadratic_in_z(5)
    graph = run_local_tests(
        latent,
        catalog,
        external=["z_only", "hidden"],
        conditioning="z",
        k=30,
        n_permutations=199,
        regression=regression,
    )
    z_only, hidden = graph.result("z_only", ["z"]), graph.result("hidden", ["z"])
    assert z_only.regression == hidden.regression == regression
    # Linear residuals share the curvature in z: a spurious dependence. The published
    # second-order regression removes it.
    expected = "dependent" if regression == "linear" else "independent"
    assert z_only.verdict == expected, (z_only.effect, z_only.p_adjusted)
    assert hidden.verdict == "dependent"
    if regression == "quadratic":
        assert abs(z_only.effect) < 3 * z_only.effect_err
    else:
        assert z_only.effect > 0.3


def test_local_test_quadratic_is_the_default():
    latent, catalog = quadratic_in_z(6, n=1500)
    args = (latent, catalog["log_mstar"], catalog["z_only"])
    default = local_test(*args, conditioning=catalog["z"], k=30, n_permutations=199)
    linear = local_test(
        *args, conditioning=catalog["z"], k=30, n_permutations=199, regression="linear"
    )
    assert default.regression == "quadratic" and default.verdict == "independent"
    assert linear.regression == "linear" and linear.verdict == "dependent"


# -- multiple testing: Benjamini-Hochberg --------------------------------------------------


def test_benjamini_hochberg_by_hand():
    # m = 5; sorted 0.005, 0.01, 0.03, 0.04, 0.2; m p / rank = 0.025, 0.025, 0.05, 0.05,
    # 0.2; running minimum from the largest rank down leaves them so.
    p = [0.01, 0.04, 0.03, 0.2, 0.005]
    assert benjamini_hochberg(p) == pytest.approx([0.025, 0.05, 0.05, 0.2, 0.025])
    # A later smaller ratio pulls earlier ones down: 0.02 * 2 / 1 > 0.021 * 2 / 2.
    assert benjamini_hochberg([0.02, 0.021]) == pytest.approx([0.021, 0.021])
    for bad in ([], [[0.1]], [1.2], [np.nan]):
        with pytest.raises(ValidationError, match="p_values"):
            benjamini_hochberg(bad)


def test_verdicts_read_the_adjusted_p_values(graph):
    rows = graph.edges
    assert [r["p_adjusted"] for r in rows] == pytest.approx(
        benjamini_hochberg([r["p_value"] for r in rows]).tolist()
    )
    assert all(r["p_adjusted"] >= r["p_value"] for r in rows)
    for r in rows:
        assert r["verdict"] == ("dependent" if r["p_adjusted"] < 0.05 else "independent")
    # At alpha = 0.01 the three dependences have raw p = 1/200 < alpha, but 8 tests
    # adjust them to 0.005 * 8 / 3 > alpha: the verdict follows the adjusted value.
    latent, catalog = synthetic(0)
    strict = run_local_tests(
        latent,
        catalog,
        external=EXTERNAL,
        conditioning="c",
        k=30,
        n_permutations=199,
        alpha=0.01,
    )
    hidden = strict.result("hidden")
    assert hidden.p_value < 0.01 <= hidden.p_adjusted
    assert hidden.p_adjusted == pytest.approx(0.005 * 8 / 3)
    assert hidden.verdict == "independent"


# -- validity: false-positive rates over seeded repeats ----------------------------------


def _rejection_bounds(alpha: float, n_permutations: int, repeats: int) -> tuple[int, int]:
    """99.9% two-sided binomial bounds on rejections of an exact permutation test."""
    # p = m / (B + 1) < alpha holds for m < alpha (B + 1): the test's exact size.
    size = (np.ceil(alpha * (n_permutations + 1)) - 1) / (n_permutations + 1)
    return int(stats.binom.ppf(0.0005, repeats, size)), int(stats.binom.ppf(0.9995, repeats, size))


@pytest.mark.parametrize("conditioned", [False, True])
def test_false_positive_rate_is_nominal(conditioned):
    # Y and X both depend on the conditioning variable c, which the latent space lacks,
    # but not on each other: conditioned, X is independent of Y given S and c.
    # Unconditioned, X is pure noise.
    repeats, n, k, n_perm = 200, 300, 10, 99
    p = np.empty(repeats)
    for seed in range(repeats):
        rng = np.random.default_rng(seed)
        a, b, c = rng.normal(size=(3, n))
        latent = np.column_stack([a, 0.3 * rng.normal(size=n)])
        if conditioned:
            x = c + rng.normal(size=n)
            r = local_test(
                latent, a + b + c, x, conditioning=c, k=k, n_permutations=n_perm, seed=seed
            )
        else:
            r = local_test(latent, a + b, rng.normal(size=n), k=k, n_permutations=n_perm, seed=seed)
        p[seed] = r.p_value
    for alpha in (0.05, 0.2):
        low, high = _rejection_bounds(alpha, n_perm, repeats)
        assert low <= np.sum(p < alpha) <= high, (alpha, np.sum(p < alpha), (low, high))


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"latent": np.zeros(400)}, r"latent must have shape \(N, D\)"),
        ({"target": np.zeros(399)}, r"target must have shape \(400,\)"),
        (
            {"external": np.r_[np.nan, np.ones(399)]},
            r"external is not finite at 1 rows, first \[0\]",
        ),
        ({"external": np.ones(400)}, "external is constant"),
        ({"conditioning": np.zeros((400, 2, 1))}, "conditioning must have shape"),
        ({"k": 50}, "at least 10 disjoint neighbourhoods, so at least 500 galaxies"),
        ({"k": 3}, "k must be an integer >= 4"),
        ({"k": 7, "conditioning": np.ones((400, 2))}, "k must be at least 8"),
        (
            {"k": 5, "conditioning": np.ones((400, 2)), "regression": "linear"},
            "k must be at least 6",
        ),
        ({"k": 20, "regression": "cubic"}, "regression must be"),
        ({"n_permutations": 10}, "n_permutations must be at least 20"),
        ({"alpha": 1.5}, r"alpha must be a number in \(0, 1\)"),
        ({"n_centres": 3}, "n_centres must be at least 10"),
        ({"conditioning": np.ones(400), "conditioning_names": ["z", "q"]}, "conditioning_names"),
    ],
)
def test_local_test_refuses_bad_input(change, message):
    rng = np.random.default_rng(0)
    args = {
        "latent": rng.normal(size=(400, 2)),
        "target": rng.normal(size=400),
        "external": rng.normal(size=400),
        **change,
    }
    with pytest.raises(ValidationError, match=message):
        local_test(args.pop("latent"), args.pop("target"), args.pop("external"), **args)


def test_too_few_disjoint_neighbourhoods_says_what_is_needed():
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(200, 8))  # room for 10 sets of 20 only if packed perfectly
    with pytest.raises(ValidationError, match=r"only \d+ disjoint neighbourhoods of k=20"):
        local_test(latent, rng.normal(size=200), rng.normal(size=200), k=20)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"external": ["noise", "size"]}, r"no column 'size' \(columns: log_mstar, hidden, "),
        ({"target": "mass"}, "no column 'mass'"),
        ({"conditioning": ["c", "c"]}, "conditioning names a column twice"),
        ({"external": ["log_mstar"]}, "cannot also be external"),
        ({"external": []}, "at least one column"),
    ],
)
def test_run_local_tests_refuses_bad_columns(change, message):
    latent, catalog = synthetic(0, n=500)
    with pytest.raises(ValidationError, match=message):
        run_local_tests(latent, catalog, **{"external": ["noise"], "conditioning": "c", **change})


def test_run_local_tests_names_bad_rows_and_bad_shapes():
    latent, catalog = synthetic(0, n=500)
    catalog["noise"][[7, 42]] = np.nan
    with pytest.raises(
        ValidationError, match=r"column 'noise' is NaN.* at 2 rows, first \[7, 42\]"
    ):
        run_local_tests(latent, catalog, external=["noise"])
    catalog["noise"] = MaskedColumn(np.arange(500.0), mask=np.arange(500) == 9)
    with pytest.raises(ValidationError, match=r"masked at 1 rows, first \[9\]"):
        run_local_tests(latent, catalog, external=["noise"])
    catalog["noise"] = ["x"] * 500
    with pytest.raises(ValidationError, match="column 'noise' must hold one number"):
        run_local_tests(latent, catalog, external=["noise"])
    with pytest.raises(ValidationError, match="the catalog has 500 rows but latent has 499"):
        run_local_tests(latent[:-1], catalog, external=["hidden"])
    with pytest.raises(ValidationError, match="must be an astropy Table"):
        run_local_tests(latent, dict(catalog), external=["hidden"])


# -- the result objects ------------------------------------------------------------------


def test_result_dict_is_strict_json():
    result = small_result()
    text = json.dumps(result.to_dict(), allow_nan=False)
    assert LocalTestResult.from_dict(json.loads(text)).to_dict() == result.to_dict()
    with pytest.raises(ValidationError, match=r"unknown \['extra'\]"):
        LocalTestResult.from_dict({**result.to_dict(), "extra": 1})
    # Results stored before the choice of regression and the adjustment read as what
    # they were: linear, unadjusted (the verdict then reads the raw p-value).
    old = {k: v for k, v in result.to_dict().items() if k not in ("regression", "p_adjusted")}
    read = LocalTestResult.from_dict(old)
    assert read.regression == "linear" and read.p_adjusted is None
    with pytest.raises(ValidationError, match=r"missing \['k'\]"):
        LocalTestResult.from_dict({k: v for k, v in old.items() if k != "k"})
    with pytest.raises(ValidationError, match="regression must be one of"):
        small_result(regression="cubic")
    with pytest.raises(ValidationError, match="centre_r must have shape"):
        small_result(centre_r=[0.1])
    with pytest.raises(ValidationError, match="verdict must be one of"):
        small_result(verdict="maybe")


def test_networkx_view(graph):
    g = graph.to_networkx()
    assert isinstance(g, nx.DiGraph)
    assert g.nodes["images"]["role"] == "X_in" and g.nodes["hidden"]["role"] == "X_ex"
    assert g.edges["images", "latent"]["kind"] == g.edges["latent", "log_mstar"]["kind"]
    edge = g.edges["through_c", "log_mstar"]
    # The headline is the conditioned test: c explains the dependence away.
    assert edge["conditioned_on"] == ["c"] and not edge["significant"]
    assert edge["strength"] == abs(edge["effect"]) and edge["p_value"] >= 0.05
    assert [t["conditioned_on"] for t in edge["tests"]] == [[], ["c"]]
    assert edge["tests"][0]["significant"]
    assert g.edges["hidden", "log_mstar"]["significant"]
    assert set(g.predecessors("log_mstar")) == {"latent", *EXTERNAL}


def test_graph_round_trips_through_dict_and_file(graph, tmp_path):
    data = graph.to_dict()
    assert CausalGraph.from_dict(json.loads(json.dumps(data))).to_dict() == data
    path = graph.save(tmp_path / "graph.json")
    assert CausalGraph.load(path).to_dict() == data
    with pytest.raises(OverwriteError, match="already exists"):
        graph.save(path)
    empty = CausalGraph({"X_in": "images", "S": "latent", "Y": "log_mstar"})
    empty.save(path, overwrite=True)
    assert CausalGraph.load(path).edges == []


def test_load_refuses_other_files(tmp_path):
    with pytest.raises(FileFormatError, match="no such file"):
        CausalGraph.load(tmp_path / "missing.json")
    (tmp_path / "notes.json").write_text("not json")
    with pytest.raises(FileFormatError, match=r"notes\.json: not JSON"):
        CausalGraph.load(tmp_path / "notes.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "clapkit.pdfs"}))
    with pytest.raises(FileFormatError, match="not a clapkit causal graph"):
        CausalGraph.load(tmp_path / "other.json")
    data = CausalGraph({"X_in": "i", "S": "s", "Y": "y"}).to_dict()
    (tmp_path / "future.json").write_text(json.dumps({**data, "format_version": 9}))
    with pytest.raises(FileFormatError, match="unsupported causal graph version 9"):
        CausalGraph.load(tmp_path / "future.json")
    data["tests"] = [{"source": "q", "target": "y", "result": {"effect": 1}}]
    (tmp_path / "broken.json").write_text(json.dumps(data))
    with pytest.raises(FileFormatError, match="missing"):
        CausalGraph.load(tmp_path / "broken.json")


def test_graph_refuses_bad_nodes_and_duplicate_tests():
    with pytest.raises(ValidationError, match=r"missing \['S'\]"):
        CausalGraph({"X_in": "images", "Y": "log_mstar"})
    with pytest.raises(ValidationError, match="distinct"):
        CausalGraph({"X_in": "a", "S": "a", "Y": "y"})
    graph = CausalGraph({"X_in": "images", "S": "latent", "Y": "log_mstar", "X_ex": ["z"]})
    graph.add_test("hlr", small_result())
    assert graph.nodes["X_ex"] == ["z", "hlr"]
    with pytest.raises(ValidationError, match="already recorded"):
        graph.add_test("hlr", small_result())
    graph.add_test("hlr", small_result(effect=0.5), replace=True)
    assert graph.result("hlr").effect == 0.5
    graph.add_test("hlr", small_result(conditioned_on=("z",)))
    assert len(graph.edges) == 2
    with pytest.raises(ValidationError, match="it is the S node"):
        graph.add_test("latent", small_result())
    with pytest.raises(ValidationError, match=r"no test of 'hlr' conditioned on \['q'\]"):
        graph.result("hlr", ["q"])
