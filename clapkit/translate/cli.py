"""``clapkit translate train|apply|evaluate``: image translation through a run directory.

A task's files live in ``RUN/translate/<task>/``: one folder per model (``model.pt``,
``model.json``, ``checkpoint.pt`` while training, ``translated.h5`` once applied), the
photo-z probe (``probe/``) and ``evaluation.json`` with the per-galaxy morphology tables.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from clapkit.errors import ValidationError
from clapkit.presets import add_preset_argument


def _read_config(path: str | None) -> dict:
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValidationError(f"{path}: not a readable JSON file ({err})") from err
    if not isinstance(data, dict):
        raise ValidationError(f"{path}: expected a JSON object of model options")
    return data


def _model_dir(args: argparse.Namespace) -> Path:
    """The folder of the model of the task, in the run."""
    from clapkit.runs import RunDir
    from clapkit.translate.tasks import task

    return RunDir(args.run).translation_dir(task(args.task).name, args.model)


def _translated_path(args: argparse.Namespace, name: str) -> Path:
    """Where the images translated as set ``name`` go."""
    from clapkit.runs import RunDir
    from clapkit.translate.tasks import task

    return RunDir(args.run).translated_path(task(args.task).name, name)


def _cmd_train(args: argparse.Namespace) -> int:
    from clapkit.translate.training import default_options, train_translator

    options = default_options(
        args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        paired_fraction=args.paired_fraction,
        seed=args.seed,
    )
    spec = train_translator(
        args.data,
        _model_dir(args),
        args.model,
        args.task,
        config=_read_config(args.config),
        preset=args.preset,
        options=options,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    last = spec.history[-1] if spec.history else {}
    losses = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k not in ("epoch", "lr"))
    print(f"trained {args.model} ({args.task}) in {_model_dir(args)}: {losses}")
    return 0


def _cmd_apply(args: argparse.Namespace) -> int:
    from clapkit.translate.apply import ApplySettings, apply_translator
    from clapkit.translate.models import family_of

    overrides = {"add_noise": False} if args.no_noise else None
    if args.no_noise and family_of(args.model) != "nrgan":
        raise ValidationError(
            "--no-noise applies to nrgan only (and its variants): their emulated noise"
        )
    name = args.name or (f"{args.model}_smooth" if args.no_noise else args.model)
    settings = ApplySettings(
        model=args.model,
        overrides=overrides,
        split=None if args.split == "all" else args.split,
        seed=args.seed,
        n_samples=args.samples,
    )
    out = apply_translator(
        _model_dir(args),
        args.data,
        _translated_path(args, name),
        settings,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(f"wrote {out}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from clapkit.translate.evaluate import BootstrapConfig, evaluate_task, format_evaluation

    bootstrap = BootstrapConfig(
        n_resamples=args.bootstrap, confidence=args.confidence, seed=args.bootstrap_seed
    )
    result = evaluate_task(
        args.run,
        args.task,
        args.data,
        models=args.models.split(",") if args.models else None,
        bootstrap=bootstrap,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(format_evaluation(result))
    return 0


def add_translate_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``translate`` and its sub-commands to the ``clapkit`` parser."""
    from clapkit.translate.models import TRAINABLE_NAMES

    translate = commands.add_parser(
        "translate",
        help="galaxy image translation SDSS→CFHTLS (and SDSS→SDSS): train, apply, evaluate",
        description="Train translation models, translate test images, and judge them by "
        "pixels, morphology, noise and redshift information.",
    )
    steps = translate.add_subparsers(dest="step", metavar="STEP", required=True)

    def common(parser: argparse.ArgumentParser, model: bool = True) -> None:
        if model:
            parser.add_argument(
                "--model",
                required=True,
                choices=list(TRAINABLE_NAMES),
                help="a model family, or a variant such as nrgan_clapkit",
            )
        parser.add_argument("--task", required=True, choices=["s2s", "s2c"])
        parser.add_argument("--data", required=True, help="GalaxySet file with both stacks")
        parser.add_argument("--run", required=True, help="run directory")
        parser.add_argument("--overwrite", action="store_true", help="replace existing results")
        parser.add_argument("--quiet", action="store_true", help="no progress bars")

    train = steps.add_parser("train", help="train a model on the train split; a killed run resumes")
    common(train)
    add_preset_argument(train, "translation")
    train.add_argument("--config", help="JSON file overriding the preset's model options")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--learning-rate", type=float)
    train.add_argument(
        "--paired-fraction",
        type=float,
        help="fraction of training galaxies seen in both surveys (nrgan; others need 1)",
    )
    train.add_argument("--seed", type=int)
    train.set_defaults(func=_cmd_train)

    apply = steps.add_parser("apply", help="translate the test split with a trained model")
    common(apply)
    apply.add_argument("--split", default="test", help="split to translate, or 'all'")
    apply.add_argument(
        "--no-noise",
        action="store_true",
        help="nrgan and its variants: leave out the emulated noise (the smooth set)",
    )
    apply.add_argument("--name", help="name of the translated set (default: the model's)")
    apply.add_argument("--seed", type=int, default=0, help="seed of stochastic models")
    apply.add_argument(
        "--samples",
        type=int,
        help="translations per galaxy (default: 8 for stochastic models, diffusion and "
        "nrgan with its noise; 1 otherwise, the only value deterministic models take)",
    )
    apply.set_defaults(func=_cmd_apply)

    evaluate = steps.add_parser(
        "evaluate", help="pixel, morphology, noise and photo-z metrics of every translated set"
    )
    common(evaluate, model=False)
    evaluate.add_argument(
        "--models",
        help="comma-separated translated sets: apply's --model, or its --name (default: all)",
    )
    evaluate.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        help="bootstrap draws of the galaxies for the intervals of every metric (0: none)",
    )
    evaluate.add_argument(
        "--confidence", type=float, default=0.95, help="probability covered by each interval"
    )
    evaluate.add_argument(
        "--bootstrap-seed", type=int, default=0, help="seed of the bootstrap draws"
    )
    evaluate.set_defaults(func=_cmd_evaluate)
