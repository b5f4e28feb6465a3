"""Settings of the four stages of :mod:`clapkit.interpret.pipeline`, and the names they use.

Each stage takes one frozen :class:`~clapkit.settings.Settings` object, checked when it
is made, before the stage reads the data or writes to the run:

- :class:`MassTrainSettings` for ``train_stage`` (``clapkit interpret train``);
- :class:`CausalSettings` for ``causal_stage`` (``clapkit interpret causal``);
- :class:`PIDSettings` for ``pid_stage`` (``clapkit interpret pid``);
- :class:`AttributionSettings` for ``attribute_stage`` (``clapkit interpret attribute``).

The defaults are those of the command line. Checks that need a model's own tables (the
presets' keys, :class:`~clapkit.interpret.information.ClassifierConfig`, the attribution
methods) import them when a settings object is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clapkit.checks import check_choice, check_int, check_names, check_number
from clapkit.errors import ValidationError
from clapkit.interpret.causal_graph import REGRESSIONS
from clapkit.interpret.input_sets import ALL_INPUT_SETS, INPUT_SETS, expand_input_sets
from clapkit.presets import check_preset
from clapkit.settings import Settings

#: Feature sources of the MI decomposition: catalog columns, or ``latent:<input set>``,
#: the v_A of that trained model (how the images enter: through their encoder).
SOURCES: dict[str, tuple[str, ...]] = {
    "photometry": tuple(f"mag_{b}" for b in "ugriz"),
    "optical": tuple(f"mag_{b}" for b in "ugriz"),
    "wise": ("mag_w1", "mag_w2", "mag_w3"),
    "morphology": ("hlr", "disk_q", "bulge_fraction"),
    "images": ("latent:images",),
    "images_normalised": ("latent:images_normalised",),
    "r_band": ("mag_r",),
    "other_bands": ("mag_u", "mag_g", "mag_i", "mag_z"),
}
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
        Seeds the networks and their training.

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

    def __post_init__(self) -> None:
        names = check_names(self.input_sets, "input_sets")
        if not names:
            raise ValidationError("input_sets must name at least one input set")
        self._set("input_sets", expand_input_sets(names))
        check_preset(self.preset, "stellar-mass")
        if self.overrides is not None and not isinstance(self.overrides, dict):
            raise ValidationError(f"overrides must be a dict, got {self.overrides!r}")
        self._set("seed", check_int(self.seed, "seed", 0))
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
    k : int
        Neighbours per local test (at least 4).
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
    >>> CausalSettings(k=2)
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: k must be an integer >= 4, got 2
    """

    latent_of: str = "images"
    external: tuple[str, ...] = EXTERNAL
    conditioning: str | None = "z"
    regression: str = "quadratic"
    k: int = 30
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
        self._set("k", check_int(self.k, "k", 4))
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
    method : str
        One of :data:`clapkit.interpret.attributions.METHODS`.
    n_steps : int
        Integration steps of the path methods.
    internal_batch_size : int
        How many of those steps go through the network at once.
    centre_radius : float
        Radius (pixels) inside which attribution counts as central.
    seed : int
        Seeds the draw of galaxies and the randomisation check.

    Examples
    --------
    >>> AttributionSettings(n_galaxies=6, n_steps=8).method
    'integrated_gradients'
    >>> AttributionSettings(n_galaxies=0)
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: n_galaxies must be an integer >= 1, got 0
    """

    model: str = "images"
    n_galaxies: int = 32
    method: str = "integrated_gradients"
    n_steps: int = 32
    internal_batch_size: int = 32
    centre_radius: float = 4.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice(self.model, "model", ALL_INPUT_SETS)
        self._set("n_galaxies", check_int(self.n_galaxies, "n_galaxies"))
        from clapkit.interpret.attributions import METHODS

        check_choice(self.method, "method", METHODS)
        self._set("n_steps", check_int(self.n_steps, "n_steps"))
        self._set("internal_batch_size", check_int(self.internal_batch_size, "internal_batch_size"))
        self._set("centre_radius", check_number(self.centre_radius, "centre_radius", above=0))
        self._set("seed", check_int(self.seed, "seed", 0))
