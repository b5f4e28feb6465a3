"""Settings of the four stages of :mod:`clapkit.interpret.pipeline`, and the names they use.

Each stage takes one frozen :class:`~clapkit.settings.Settings` object, checked when it
is made, before the stage reads the data or writes to the run:

- :class:`MassTrainSettings` for ``train_stage`` (``clapkit interpret train``);
- :class:`CausalSettings` for ``causal_stage`` (``clapkit interpret causal``);
- :class:`PIDSettings` for ``pid_stage`` (``clapkit interpret pid``);
- :class:`AttributionSettings` for ``attribute_stage`` (``clapkit interpret attribute``).

The defaults are those of the command line. Checks that need a model's own tables (the
presets' keys, :class:`~clapkit.interpret.information.ClassifierConfig`) import them when
a settings object is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clapkit.checks import check_choice, check_int, check_names, check_number
from clapkit.errors import ValidationError
from clapkit.interpret.attribution_names import METHODS, SMOOTHGRAD_NOISE, SMOOTHGRAD_SAMPLES
from clapkit.interpret.causal_graph import NEIGHBOURHOODS, REGRESSIONS, WEIGHTS
from clapkit.interpret.input_sets import ALL_INPUT_SETS, INPUT_SETS, expand_input_sets
from clapkit.metrics.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, check_confidence
from clapkit.presets import check_preset
from clapkit.settings import Settings

#: Catalog columns of each input of the MI decomposition. As published
#: (``InterpretSM_scl_mi.py``, ``texp == 0``), photometry comes with its errors (WISE
#: without the W3 error) and every input is given E(B−V) beside it (:data:`AUXILIARY`).
_OPTICAL_PHOTOMETRY = (*(f"mag_{b}" for b in "ugriz"), *(f"magerr_{b}" for b in "ugriz"))
SOURCES: dict[str, tuple[str, ...]] = {
    "photometry": _OPTICAL_PHOTOMETRY,
    "optical": _OPTICAL_PHOTOMETRY,
    "wise": ("mag_w1", "mag_w2", "mag_w3", "magerr_w1", "magerr_w2"),
    "morphology": ("hlr", "disk_q", "bulge_fraction"),
    "images": (),
    "images_normalised": (),
    "r_band": ("mag_r", "magerr_r"),
    "other_bands": (*(f"mag_{b}" for b in "ugiz"), *(f"magerr_{b}" for b in "ugiz")),
}
#: Inputs that are images: the stellar-mass input set whose stamps (bands, flux
#: normalisation) they are. Read as pixels through the MI classifier's own CNN, as
#: published, or as the latent vector of that trained mass model (``image_features``).
IMAGE_SOURCES: dict[str, str] = {"images": "images", "images_normalised": "images_normalised"}
#: The published mass grid of the MI classifiers: 520 bins over log M* 6–12.5
#: (``InterpretSM_scl_mi.py``: ``bins``, ``y_min``, ``y_max``), for half a million galaxies.
PUBLISHED_GRID = {"n_bins": 520, "mass_range": (6.0, 12.5)}
#: How image inputs reach the MI classifiers.
IMAGE_FEATURES = ("pixels", "latent")
#: Catalog columns given beside every input, as published: Milky Way reddening.
AUXILIARY = ("ebv",)
#: The published pairs: photometry vs images (normalised by their fluxes, so that the
#: images add shape, not brightness or colour), vs morphology, optical vs WISE, images vs
#: WISE, and a band ablation (r against the other optical bands).
PAIRS: dict[str, tuple[str, str]] = {
    "photometry_images": ("photometry", "images_normalised"),
    "photometry_morphology": ("photometry", "morphology"),
    "optical_wise": ("optical", "wise"),
    "images_wise": ("images", "wise"),
    "r_band_rest": ("r_band", "other_bands"),
}
#: External variables of the local tests: axis ratio, size, bulge fraction (the mock's
#: Sérsic-like index), redshift, disk dust, and the position angle, independent of the
#: mass by construction (the false-positive check).
EXTERNAL = ("disk_q", "hlr", "bulge_fraction", "z", "disk_av", "position_angle")
#: Neighbours per local test when ``k`` is not given, per neighbourhood scheme: the
#: published 100 for overlapping ones.
DEFAULT_K = {"disjoint": 30, "overlapping": 100}
#: Which causal-discovery searches the causal stage runs over catalog columns.
DISCOVERY = ("pc", "fci", "both")


def _optional_int(value: Any, name: str, minimum: int) -> int | None:
    return None if value is None else check_int(value, name, minimum)


def _column(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{name} must name a catalog column, got {value!r}")
    return value


@dataclass(frozen=True)
class MassTrainSettings(Settings):
    """What ``clapkit interpret train`` trains: which input sets, how big, from which seed.

    Parameters
    ----------
    input_sets : sequence of str
        Names from :data:`clapkit.interpret.input_sets.ALL_INPUT_SETS` or groups of
        :data:`~clapkit.interpret.input_sets.GROUPS` (``bands``: every single-band
        ablation); :data:`~clapkit.interpret.input_sets.INPUT_SETS` by default.
    preset : str
        Network size (``"tiny"``, ``"cpu"``, ``"paper"``;
        :data:`clapkit.interpret.mass.MASS_PRESETS`).
    overrides : dict, optional
        Settings that replace the preset's (``{"train": {"epochs": 5}}``).
    seed : int
        Seeds the networks and their training, and the bootstrap draws.
    n_bootstrap : int
        Bootstrap draws of the test galaxies behind each metric's interval (``<metric>_ci``
        in ``mass/metrics.json``); 0 stores no intervals.
    confidence : float
        Probability covered by the intervals.

    Examples
    --------
    >>> MassTrainSettings(("photometry",), preset="tiny").input_sets
    ('photometry',)
    >>> MassTrainSettings(preset="huge")
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: unknown stellar-mass preset 'huge'; expected one of tiny, cpu, paper
    """

    input_sets: tuple[str, ...] = tuple(INPUT_SETS)
    preset: str = "cpu"
    overrides: dict[str, Any] | None = None
    seed: int = 0
    n_bootstrap: int = DEFAULT_RESAMPLES
    confidence: float = DEFAULT_CONFIDENCE

    def __post_init__(self) -> None:
        names = check_names(self.input_sets, "input_sets")
        if not names:
            raise ValidationError("input_sets must name at least one input set")
        self._set("input_sets", expand_input_sets(names))
        check_preset(self.preset, "stellar-mass")
        if self.overrides is not None and not isinstance(self.overrides, dict):
            raise ValidationError(f"overrides must be a dict, got {self.overrides!r}")
        self._set("seed", check_int(self.seed, "seed", 0))
        self._set("n_bootstrap", check_int(self.n_bootstrap, "n_bootstrap", 0))
        self._set("confidence", check_confidence(self.confidence))
        if self.overrides:
            from clapkit.interpret.mass import resolve_settings

            resolve_settings(self.preset, self.overrides)  # unknown keys refused now


@dataclass(frozen=True)
class CausalSettings(Settings):
    """How ``clapkit interpret causal`` tests: the local tests, then PC discovery.

    Parameters
    ----------
    latent_of : str
        The input set whose latent space is tested.
    external : sequence of str
        Catalog columns tested against the latent vectors and the target.
    conditioning : str or None
        Column every local test conditions on; None for none.
    regression : {"quadratic", "linear"}
        How the conditioning column is regressed out in each neighbourhood: with its
        square, as the published code does (the default), or a straight line (the
        earlier default). Recorded in every stored test.
    neighbourhoods : {"disjoint", "overlapping"}
        Disjoint neighbourhoods with a permutation baseline (the default: its
        false-positive rate is nominal), or, as published, the k nearest neighbours of
        every galaxy with the published summary and a latent-cell permutation p-value
        (see :mod:`clapkit.interpret.local_tests`). Overlapping is slower: each
        permutation recomputes all N neighbourhoods of k galaxies.
    weights : {"none", "distance"}
        Weights of the members in each local correlation: equal, or a Gaussian kernel
        of the latent distance to the centre.
    k : int or None
        Neighbours per local test (at least 4); None for 30 with disjoint neighbourhoods
        and 100 (as published) with overlapping ones.
    n_permutations : int
        Permutations per local test.
    alpha : float
        False-discovery rate of the local tests, in (0, 1): a test is "dependent" when its
        Benjamini–Hochberg adjusted p-value is below it.
    discovery : {"both", "pc", "fci"}
        Which searches run over catalog columns: PC, FCI (which allows hidden common
        causes and selection bias), or both, with the same columns, test and alpha.
    pc_columns : sequence of str, optional
        Columns for PC (and FCI) discovery; :func:`~clapkit.interpret.discovery.default_columns`
        when None.
    pc_alpha : float
        Significance level of PC's (and FCI's) conditional-independence tests, in (0, 1).
    pc_depth : int or None
        Largest conditioning set PC (and FCI's adjacency search) tries; None for no limit.
    n_bootstrap : int
        Bootstrap resamples that give each PC edge its frequency (0 for none).
    max_rows : int or None
        Rows PC and FCI draw from the catalog; None for all.
    seed : int
        Seeds the permutations, the row draw and the bootstrap.

    Examples
    --------
    >>> CausalSettings(k=8, external=["disk_q", "z"], conditioning=None).external
    ('disk_q', 'z')
    >>> CausalSettings().regression, CausalSettings(regression="linear").regression
    ('quadratic', 'linear')
    >>> CausalSettings().k, CausalSettings(neighbourhoods="overlapping").k
    (30, 100)
    >>> CausalSettings(k=2)
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: k must be an integer >= 4, got 2
    """

    latent_of: str = "images"
    external: tuple[str, ...] = EXTERNAL
    conditioning: str | None = "z"
    regression: str = "quadratic"
    neighbourhoods: str = "disjoint"
    weights: str = "none"
    k: int | None = None
    n_permutations: int = 999
    alpha: float = 0.05
    discovery: str = "both"
    pc_columns: tuple[str, ...] | None = None
    pc_alpha: float = 0.01
    pc_depth: int | None = 3
    n_bootstrap: int = 20
    max_rows: int | None = 5000
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice(self.latent_of, "latent_of", ALL_INPUT_SETS)
        external = check_names(self.external, "external")
        if not external:
            raise ValidationError("external must name at least one catalog column")
        self._set("external", external)
        if self.conditioning is not None:
            _column(self.conditioning, "conditioning")
        check_choice(self.regression, "regression", REGRESSIONS)
        check_choice(self.neighbourhoods, "neighbourhoods", NEIGHBOURHOODS)
        check_choice(self.weights, "weights", WEIGHTS)
        k = DEFAULT_K[self.neighbourhoods] if self.k is None else self.k
        self._set("k", check_int(k, "k", 4))
        self._set("n_permutations", check_int(self.n_permutations, "n_permutations"))
        self._set("alpha", check_number(self.alpha, "alpha", above=0, below=1))
        check_choice(self.discovery, "discovery", DISCOVERY)
        if self.pc_columns is not None:
            self._set("pc_columns", check_names(self.pc_columns, "pc_columns"))
        self._set("pc_alpha", check_number(self.pc_alpha, "pc_alpha", above=0, below=1))
        self._set("pc_depth", _optional_int(self.pc_depth, "pc_depth", 0))
        self._set("n_bootstrap", check_int(self.n_bootstrap, "n_bootstrap", 0))
        self._set("max_rows", _optional_int(self.max_rows, "max_rows", 1))
        self._set("seed", check_int(self.seed, "seed", 0))


@dataclass(frozen=True)
class PIDSettings(Settings):
    """What ``clapkit interpret pid`` decomposes and how its classifiers train.

    Parameters
    ----------
    pairs : sequence of str
        Names from :data:`PAIRS` (all by default).
    n_bins : int
        Equal bins of log M* (at least 2).
    classifier : dict, optional
        Settings of :class:`~clapkit.interpret.information.ClassifierConfig`
        (``{"epochs": 15}``); its ``seed`` defaults to ``seed``.
    seed : int
        The classifiers' seed, unless ``classifier`` sets one.
    image_features : {"pixels", "latent"}
        How image inputs reach the classifiers: their pixels through a CNN, as published,
        or the latent vector v_A of the trained stellar-mass model of that input set (how
        clapkit read them before; a network trained for another task, whose information
        about the mass bins is what that task kept).
    auxiliary : sequence of str
        Catalog columns given beside both inputs of every pair (E(B−V) as published;
        empty for none): both inputs get the same ones, so neither gains from them.
    mass_range : (float, float), optional
        The log M* range the ``n_bins`` equal bins span; masses outside it fall in the end
        bins. None (the default) spans the training galaxies' range. The published grid is
        ``n_bins=520, mass_range=(6.0, 12.5)`` (:data:`PUBLISHED_GRID`).
    prior_pseudocount : float
        Added to every bin's training count for the prior (see
        :func:`~clapkit.interpret.information.bin_prior`): with a grid finer than the
        training sample fills, a test galaxy in a bin no training galaxy is in has an
        undefined MI and is refused unless this is > 0 (0.5 is Jeffreys' choice).
    crop : int
        Side of the central cut-out of the image inputs, in pixels. The publication reads
        64 × 64 stamps on a GPU; 32 (the default) keeps the CNN classifiers of a CPU run
        within minutes and holds the mock's galaxies (half-light radii of a few pixels).

    Notes
    -----
    The published grid is 520 bins over log M* 6–12.5, for half a million galaxies; with
    the few thousand of a CPU run most of those bins would hold no training galaxy, whose
    prior surprise (and so MI) is then undefined. ``n_bins`` equal bins over the training
    range (20 by default) is the coarser grid a CPU run affords; binning loses
    information, so the MIs are lower bounds on those of the finer grid.

    Examples
    --------
    >>> PIDSettings(("optical_wise",), n_bins=10).pairs
    ('optical_wise',)
    >>> PIDSettings(n_bins=1)
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: n_bins must be an integer >= 2, got 1
    """

    pairs: tuple[str, ...] = tuple(PAIRS)
    n_bins: int = 20
    classifier: dict[str, Any] | None = None
    seed: int = 0
    image_features: str = "pixels"
    auxiliary: tuple[str, ...] = AUXILIARY
    crop: int = 32
    mass_range: tuple[float, float] | None = None
    prior_pseudocount: float = 0.0

    def __post_init__(self) -> None:
        pairs = check_names(self.pairs, "pairs")
        unknown = [pair for pair in pairs if pair not in PAIRS]
        if not pairs:
            raise ValidationError(f"pairs must name at least one of {list(PAIRS)}")
        if unknown:
            raise ValidationError(f"unknown input pairs {unknown}; expected some of {list(PAIRS)}")
        self._set("pairs", pairs)
        self._set("n_bins", check_int(self.n_bins, "n_bins", 2))
        self._set("seed", check_int(self.seed, "seed", 0))
        check_choice(self.image_features, "image_features", IMAGE_FEATURES)
        self._set("auxiliary", check_names(self.auxiliary, "auxiliary"))
        self._set("crop", check_int(self.crop, "crop", 4))
        if self.mass_range is not None:
            if not isinstance(self.mass_range, tuple | list) or len(self.mass_range) != 2:
                raise ValidationError(
                    f"mass_range must be two numbers (low, high), got {self.mass_range!r}"
                )
            low, high = (check_number(v, "mass_range") for v in self.mass_range)
            if not low < high:
                raise ValidationError(f"mass_range must rise, got ({low}, {high})")
            self._set("mass_range", (low, high))
        pseudocount = check_number(self.prior_pseudocount, "prior_pseudocount")
        if pseudocount < 0:
            raise ValidationError(f"prior_pseudocount must be >= 0, got {pseudocount}")
        self._set("prior_pseudocount", pseudocount)
        if self.classifier is not None and not isinstance(self.classifier, dict):
            raise ValidationError(f"classifier must be a dict of settings, got {self.classifier!r}")
        self.classifier_config()  # refused now, not after the data is read

    def classifier_config(self) -> Any:
        """The :class:`~clapkit.interpret.information.ClassifierConfig` these settings give."""
        from clapkit.interpret.information.estimator import ClassifierConfig

        options = {"seed": self.seed, **(self.classifier or {})}
        try:
            return ClassifierConfig(**options)
        except TypeError as err:  # an unknown key
            raise ValidationError(f"classifier: {err}") from None


@dataclass(frozen=True)
class AttributionSettings(Settings):
    """What ``clapkit interpret attribute`` attributes, and how.

    Parameters
    ----------
    model : str
        The image input set to attribute.
    n_galaxies : int
        Test galaxies drawn for the maps.
    methods : sequence of str
        Names from :data:`clapkit.interpret.attribution_names.METHODS` (all by default),
        each computed and checked; the first is the one shown first.
    n_steps : int
        Integration steps of the path methods.
    internal_batch_size : int
        How many of those steps go through the network at once.
    smoothgrad_samples : int
        Noisy copies SmoothGrad averages per image (25 by default: see
        :data:`~clapkit.interpret.attribution_names.SMOOTHGRAD_SAMPLES`).
    smoothgrad_noise : float
        SmoothGrad's noise σ as a fraction of each image's max − min, in (0, 1); 0.15 by
        default, within the 10–20 % Smilkov et al. (2017) found best.
    centre_radius : float
        Radius (pixels) inside which attribution counts as central.
    seed : int
        Seeds the draw of galaxies, the randomisation check and SmoothGrad's noise.

    Examples
    --------
    >>> AttributionSettings(n_galaxies=6, n_steps=8).methods
    ('integrated_gradients', 'saliency', 'smoothgrad')
    >>> AttributionSettings(methods="smoothgrad,saliency").methods
    ('smoothgrad', 'saliency')
    >>> AttributionSettings(n_galaxies=0)
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: n_galaxies must be an integer >= 1, got 0
    """

    model: str = "images"
    n_galaxies: int = 32
    methods: tuple[str, ...] = METHODS
    n_steps: int = 32
    internal_batch_size: int = 32
    smoothgrad_samples: int = SMOOTHGRAD_SAMPLES
    smoothgrad_noise: float = SMOOTHGRAD_NOISE
    centre_radius: float = 4.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice(self.model, "model", ALL_INPUT_SETS)
        self._set("n_galaxies", check_int(self.n_galaxies, "n_galaxies"))
        methods = check_names(self.methods, "methods")
        if not methods:
            raise ValidationError(f"methods must name at least one of {list(METHODS)}")
        unknown = [name for name in methods if name not in METHODS]
        if unknown:
            raise ValidationError(
                f"unknown attribution methods {unknown}; expected some of {list(METHODS)}"
            )
        repeated = sorted({name for name in methods if methods.count(name) > 1})
        if repeated:
            raise ValidationError(f"methods names {repeated} more than once")
        self._set("methods", methods)
        self._set("n_steps", check_int(self.n_steps, "n_steps"))
        self._set("internal_batch_size", check_int(self.internal_batch_size, "internal_batch_size"))
        self._set("smoothgrad_samples", check_int(self.smoothgrad_samples, "smoothgrad_samples"))
        noise = check_number(self.smoothgrad_noise, "smoothgrad_noise", above=0, below=1)
        self._set("smoothgrad_noise", noise)
        self._set("centre_radius", check_number(self.centre_radius, "centre_radius", above=0))
        self._set("seed", check_int(self.seed, "seed", 0))
