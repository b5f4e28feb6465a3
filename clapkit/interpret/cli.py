"""``clapkit interpret train|causal|pid|attribute``: the stellar-mass analysis of a run.

Results go to ``RUN/interpret/`` (see :mod:`clapkit.interpret.pipeline`): ``train`` the
mass models of the input sets (resumable), then ``causal`` (local tests in a model's
latent space, PC over catalog columns), ``pid`` (MI decomposition of input pairs) and
``attribute`` (captum maps of an image model), each refusing to replace its results
without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json

from clapkit.interpret.attribution_names import METHODS, SMOOTHGRAD_NOISE, SMOOTHGRAD_SAMPLES
from clapkit.presets import add_preset_argument


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]


def _numbers(text: str) -> tuple[float, ...] | str:
    """``"6,12.5"`` as numbers; text that is not numbers is passed on for the settings to
    refuse by name."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        return text


class _Renamed(argparse.Action):
    """A flag that was renamed: using it is an error that names the new spelling."""

    def __init__(self, option_strings: list[str], dest: str, new: str, **kwargs) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        parser.error(f"{option_string} is now {self.new} (e.g. {self.new} {values})")


def _log(args: argparse.Namespace):
    return (lambda message: None) if args.quiet else print


def _cmd_train(args: argparse.Namespace) -> int:
    from clapkit.interpret.input_sets import INPUT_SETS
    from clapkit.interpret.pipeline import train_stage
    from clapkit.interpret.settings import MassTrainSettings

    overrides = {}
    if args.epochs is not None:
        overrides["train"] = {"epochs": args.epochs}
    settings = MassTrainSettings(
        input_sets=_names(args.input_sets) or tuple(INPUT_SETS),
        preset=args.preset,
        overrides=overrides,
        seed=args.seed,
        n_bootstrap=args.bootstrap,
        confidence=args.confidence,
    )
    metrics = train_stage(
        args.data,
        args.run,
        settings,
        progress=not args.quiet,
        log=_log(args),
        device=args.device,
    )
    print(
        f"{'input set':<16} {'sigma':>7} {'offset':>7}  {'sigma interval':<16} (dex, test "
        f"split; offset: median; {settings.confidence:.0%} bootstrap interval)"
    )
    for name, row in metrics.items():
        interval = "[{:.3f}, {:.3f}]".format(*row["sigma_ci"]) if "sigma_ci" in row else ""
        print(f"{name:<16} {row['sigma']:7.3f} {row['median_offset']:+7.3f}  {interval}")
    return 0


def _extras(row: dict) -> str:
    """The published permuted mean and the predictive efficiency of a test's line, each
    where the result holds it."""
    out = ""
    if row.get("effect_permuted") is not None:
        out += f"  permuted {row['effect_permuted']:+.3f}"
    if row.get("pred_efficiency") is not None:
        out += f"  efficiency {row['pred_efficiency']:.3f} ± {row['pred_efficiency_spread']:.3f}"
    return out


def _cmd_causal(args: argparse.Namespace) -> int:
    from clapkit.interpret.pipeline import causal_stage
    from clapkit.interpret.settings import EXTERNAL, CausalSettings

    settings = CausalSettings(
        latent_of=args.latent_of,
        external=_names(args.external) or EXTERNAL,
        conditioning=args.conditioning or None,
        regression=args.regression,
        neighbourhoods=args.neighbourhoods,
        weights=args.weights,
        k=args.k,
        n_permutations=args.permutations,
        n_bootstrap=args.bootstrap,
        discovery=args.discovery,
        seed=args.seed,
    )
    result = causal_stage(
        args.data,
        args.run,
        settings,
        overwrite=args.overwrite,
        progress=not args.quiet,
        log=_log(args),
    )
    for edge in result["local_tests"]["tests"]:
        conditioned = ",".join(edge["result"]["conditioned_on"]) or "-"
        row = edge["result"]
        print(
            f"{edge['source']:<16} | {conditioned:<4} effect {row['effect']:+.3f} ± "
            f"{row['effect_err']:.3f}  p {row['p_value']:.3g}  p(BH) {row['p_adjusted']:.3g}  "
            f"{row['verdict']}{_extras(row)}"
        )
    if result["pc"] is not None and result["pc"]["score"] is not None:
        print("PC vs the true graph:", json.dumps(_rounded(result["pc"]["score"])))
        print(
            "PC vs the truth given selection:",
            json.dumps(_rounded(result["pc"]["score_selection"])),
        )
    if result["fci"] is not None and result["fci"]["score"] is not None:
        print("FCI vs the true PAG:", json.dumps(_rounded(result["fci"]["score"])))
    return 0


def _rounded(score: dict) -> dict:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in score.items()}


def _cmd_pid(args: argparse.Namespace) -> int:
    from clapkit.interpret.pipeline import pid_stage
    from clapkit.interpret.settings import PAIRS, PIDSettings

    settings = PIDSettings(
        _names(args.pairs) or tuple(PAIRS),
        n_bins=args.bins,
        seed=args.seed,
        image_features=args.image_features,
        auxiliary=_names(args.auxiliary),
        crop=args.crop,
        mass_range=None if args.mass_range is None else _numbers(args.mass_range),
        prior_pseudocount=args.prior_pseudocount,
    )
    result = pid_stage(
        args.data,
        args.run,
        settings,
        overwrite=args.overwrite,
        progress=not args.quiet,
        log=_log(args),
    )
    print(f"{'pair':<24} {'redund.':>8} {'unique1':>8} {'unique2':>8} {'synergy':>8}  (nats)")
    for pair, row in result["pairs"].items():
        print(
            f"{pair:<24} {row['redundancy']:8.3f} {row['unique_1']:8.3f} "
            f"{row['unique_2']:8.3f} {row['synergy']:8.3f}"
        )
    return 0


def _cmd_attribute(args: argparse.Namespace) -> int:
    from clapkit.interpret.pipeline import attribute_stage
    from clapkit.interpret.settings import AttributionSettings

    settings = AttributionSettings(
        model=args.model,
        n_galaxies=args.galaxies,
        methods=METHODS if args.attributions is None else args.attributions,
        smoothgrad_samples=args.smoothgrad_samples,
        smoothgrad_noise=args.smoothgrad_noise,
        seed=args.seed,
    )
    summary = attribute_stage(
        args.data,
        args.run,
        settings,
        overwrite=args.overwrite,
        progress=not args.quiet,
        log=_log(args),
    )
    check = summary["randomisation"]
    print(
        f"maps of {summary['n_galaxies']} test galaxies; randomisation check "
        f"(passes at median |rho| < {check['threshold']:.2f}):"
    )
    for method, row in check["per_method"].items():
        print(f"{method:<22} median |rho| {row['median_abs_rho']:.2f} -> {row['verdict']}")
    return 0


def add_interpret_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``interpret`` and its sub-commands to the ``clapkit`` parser.

    Names and numbers (input sets, attribution methods, ``--k``) are checked by the stages'
    settings (:mod:`clapkit.interpret.settings`) when a command runs, not by the parser, so
    that the command line starts without importing PyTorch; presets by
    :mod:`clapkit.presets`.
    """

    interpret = commands.add_parser(
        "interpret",
        help="why networks estimate stellar mass as they do: train, causal, pid, attribute",
        description="Stellar-mass models per input set, local causal tests and PC causal "
        "discovery, mutual-information decomposition and attributions.",
    )
    steps = interpret.add_subparsers(dest="step", metavar="STEP", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--data", required=True, help="GalaxySet file (catalog + images)")
        parser.add_argument("--run", required=True, help="run directory")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--quiet", action="store_true", help="no progress bars")

    train = steps.add_parser("train", help="train the stellar-mass models; a killed run resumes")
    common(train)
    train.add_argument(
        "--input-sets",
        help="comma-separated among photometry, photometry_wise, images, images_normalised, "
        "images_wise, images_wise_z (default: these six), the single-band ablations "
        "images_band_<b> and photometry_band_<b> (b in ugriz), or the groups bands (all ten "
        "ablations) and all",
    )
    add_preset_argument(train, "stellar-mass")
    train.add_argument("--epochs", type=int, help="SCL epochs (default: the preset's)")
    train.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        help="bootstrap draws of the test galaxies for each metric's interval (0: none; "
        "default: %(default)s)",
    )
    train.add_argument(
        "--confidence", type=float, default=0.95, help="probability covered by each interval"
    )
    train.add_argument(
        "--device",
        default="cpu",
        help="where the networks train: cpu, cuda, cuda:N or auto (default: %(default)s)",
    )
    train.set_defaults(func=_cmd_train)

    causal = steps.add_parser("causal", help="local causal tests and PC causal discovery")
    common(causal)
    causal.add_argument(
        "--latent-of", default="images", help="input set whose latent space is searched"
    )
    causal.add_argument("--external", help="comma-separated catalog columns to test")
    causal.add_argument("--conditioning", default="z", help="column to condition on ('' for none)")
    causal.add_argument(
        "--regression",
        default="quadratic",
        help="how the conditioning column is regressed out in each neighbourhood: quadratic "
        "(with its square, as published) or linear (default: %(default)s)",
    )
    causal.add_argument(
        "--neighbourhoods",
        default="disjoint",
        help="disjoint (a calibrated permutation test, the default) or overlapping (k "
        "nearest neighbours of every galaxy, as published, with the published summary)",
    )
    causal.add_argument(
        "--weights",
        default="none",
        help="weights of the neighbours in each correlation: none or distance (a Gaussian "
        "kernel of the latent distance) (default: %(default)s)",
    )
    causal.add_argument(
        "--k", type=int, help="neighbourhood size (default: 30 disjoint, 100 overlapping)"
    )
    causal.add_argument("--permutations", type=int, default=999)
    causal.add_argument("--bootstrap", type=int, default=20, help="PC bootstrap resamples")
    causal.add_argument(
        "--discovery",
        default="both",
        help="causal discovery over catalog columns: pc, fci or both (default: %(default)s)",
    )
    causal.add_argument("--overwrite", action="store_true", help="replace existing results")
    causal.set_defaults(func=_cmd_causal)

    pid = steps.add_parser("pid", help="mutual-information decomposition of input pairs")
    common(pid)
    pid.add_argument("--pairs", help="comma-separated input pairs (default: all)")
    pid.add_argument("--bins", type=int, default=20, help="mass bins of the classifiers")
    pid.add_argument(
        "--image-features",
        default="pixels",
        help="how image inputs reach the classifiers: pixels (through a CNN, as published) "
        "or latent (the trained mass model's latent vectors) (default: %(default)s)",
    )
    pid.add_argument(
        "--auxiliary",
        default="ebv",
        help="catalog columns given beside both inputs of every pair ('' for none; "
        "default: %(default)s, as published)",
    )
    pid.add_argument(
        "--crop", type=int, default=32, help="side of the image cut-out, pixels (default: 32)"
    )
    pid.add_argument(
        "--mass-range",
        help="low,high log M* the bins span (default: the training galaxies' range); "
        "--bins 520 --mass-range 6,12.5 is the published grid",
    )
    pid.add_argument(
        "--prior-pseudocount",
        type=float,
        default=0.0,
        help="added to every bin's training count (0.5 lets a grid finer than the sample run)",
    )
    pid.add_argument("--overwrite", action="store_true", help="replace existing results")
    pid.set_defaults(func=_cmd_pid)

    attribute = steps.add_parser("attribute", help="captum attributions of an image model")
    common(attribute)
    attribute.add_argument(
        "--model",
        default="images",
        help="input set whose image model is attributed (default: %(default)s)",
    )
    attribute.add_argument("--galaxies", type=int, default=32, help="test galaxies to map")
    attribute.add_argument(
        "--attributions",
        "--attribution",
        dest="attributions",
        help=f"comma-separated attribution methods among {', '.join(METHODS)}, each "
        "computed and checked; the first is shown first (default: all)",
    )
    attribute.add_argument(
        "--smoothgrad-samples",
        type=int,
        default=SMOOTHGRAD_SAMPLES,
        help="noisy copies SmoothGrad averages per image (default: %(default)s)",
    )
    attribute.add_argument(
        "--smoothgrad-noise",
        type=float,
        default=SMOOTHGRAD_NOISE,
        help="SmoothGrad's noise sigma as a fraction of each image's max - min "
        "(default: %(default)s)",
    )
    # --method names a photo-z PDF method everywhere else (clapkit train, figures); the
    # attribution method's old spelling is refused with its new one.
    attribute.add_argument(
        "--method", action=_Renamed, new="--attributions", help=argparse.SUPPRESS
    )
    attribute.add_argument("--overwrite", action="store_true", help="replace existing results")
    attribute.set_defaults(func=_cmd_attribute)
