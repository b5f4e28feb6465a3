"""One vocabulary across the pillars: presets, "bias", ``--method`` and ``--model``."""

from __future__ import annotations

import argparse

import pytest

from clapkit.cli import build_parser, main
from clapkit.presets import PRESET_NAMES, RENAMED_PRESETS


def options(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """``(command, action)`` for every option of every (sub)command of ``parser``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from options(sub, (*path, name))
        elif action.option_strings:
            yield " ".join(path), action


def test_every_preset_option_offers_the_same_presets():
    commands = set()
    for command, action in options(build_parser()):
        if "--preset" in action.option_strings:
            commands.add(command)
            assert tuple(action.choices) == PRESET_NAMES, command
            assert action.default in (None, "cpu"), command
            for name in PRESET_NAMES:
                assert name in action.help, command
    assert commands == {"train", "translate train", "interpret train"}


def test_every_pillar_sizes_exactly_the_shared_presets():
    from clapkit.interpret.mass import MASS_PRESETS
    from clapkit.photoz.pipeline import PRESETS
    from clapkit.translate.registry import MODELS

    assert tuple(PRESETS) == PRESET_NAMES
    assert tuple(MASS_PRESETS) == PRESET_NAMES
    for name, model in MODELS.items():
        assert tuple(model.config_class.PRESETS) == PRESET_NAMES, name


@pytest.mark.parametrize(
    "command", [["train"], ["translate", "train", "--model", "swin"], ["interpret", "train"]]
)
@pytest.mark.parametrize("old", sorted(RENAMED_PRESETS))
def test_an_old_preset_name_is_refused_with_the_new_one(command, old, tmp_path, capsys):
    args = [*command, "--data", str(tmp_path / "x.h5"), "--run", str(tmp_path / "run")]
    if command[0] == "translate":
        args += ["--task", "s2c"]
    with pytest.raises(SystemExit) as stopped:
        main([*args, "--preset", old])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"preset {old!r} is now called {RENAMED_PRESETS[old]!r}" in err
    assert not (tmp_path / "run").exists()


def test_method_is_a_photoz_method_and_model_a_network_or_input_set():
    meanings = {}
    for command, action in options(build_parser()):
        if action.help == argparse.SUPPRESS:
            continue  # a renamed flag kept only to refuse it
        for flag in ("--method", "--model", "--models", "--attribution"):
            if flag in action.option_strings:
                meanings[(command, flag)] = action
    assert set(meanings) == {
        ("train", "--method"),
        ("export", "--method"),
        ("predict", "--method"),
        ("translate train", "--model"),
        ("translate apply", "--model"),
        ("translate evaluate", "--models"),
        ("interpret attribute", "--model"),
        ("interpret attribute", "--attribution"),
    }
    assert "clap" in meanings[("train", "--method")].help
    assert "clap" in meanings[("export", "--method")].help
    assert "clap" in meanings[("predict", "--method")].help
    for step in ("train", "apply"):
        assert "nrgan" in meanings[(f"translate {step}", "--model")].choices
    assert "input set" in meanings[("interpret attribute", "--model")].help


def test_the_old_attribution_flag_names_the_new_one(tmp_path, capsys):
    args = ["interpret", "attribute", "--data", "x.h5", "--run", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as stopped:
        main([*args, "--method", "saliency"])
    assert stopped.value.code == 2
    assert "--method is now --attributions" in capsys.readouterr().err
    # --attribution, the one-method spelling, still works as --attributions
    namespace = build_parser().parse_args([*args, "--attribution", "saliency"])
    assert namespace.attributions == "saliency"
    namespace = build_parser().parse_args([*args, "--attributions", "saliency,smoothgrad"])
    assert namespace.attributions == "saliency,smoothgrad"


def test_bias_means_the_photoz_bias_and_the_mass_offset_has_its_own_name():
    import numpy as np

    from clapkit.interpret.mass import mass_metrics
    from clapkit.interpret.mass_metric_names import MASS_METRICS, upgrade_mass_metrics
    from clapkit.metrics import bias

    # Photo-z: the mean of (z_phot - z_true) / (1 + z_true).
    assert bias([0.3, 0.1], [0.2, 0.1]) == pytest.approx(0.1 / 1.2 / 2)
    # Stellar mass: the median of estimate - truth in dex, not called bias.
    edges = np.linspace(9.0, 12.0, 31)
    p = np.zeros((3, 30))
    p[:, 10] = 1.0  # every estimate 10.05
    scores = mass_metrics(p, edges, [10.05, 10.25, 11.05])
    assert set(scores) == set(MASS_METRICS)
    assert "bias" not in scores
    assert scores["median_offset"] == pytest.approx(-0.2)
    assert upgrade_mass_metrics({"bias": -0.2, "sigma": 0.1}) == {
        "median_offset": -0.2,
        "sigma": 0.1,
    }
