"""The settings of the stellar-mass stages: bad settings refused by name, before any work."""

from __future__ import annotations

import pytest

from clapkit.cli import main
from clapkit.errors import ValidationError
from clapkit.interpret.settings import (
    PAIRS,
    AttributionSettings,
    CausalSettings,
    MassTrainSettings,
    PIDSettings,
)

ALL = (MassTrainSettings, CausalSettings, PIDSettings, AttributionSettings)


@pytest.mark.parametrize(
    ("cls", "changes", "message"),
    [
        (MassTrainSettings, {"input_sets": ("spectra",)}, "unknown input set 'spectra'"),
        (MassTrainSettings, {"input_sets": ()}, "input_sets must name"),
        (MassTrainSettings, {"preset": "huge"}, "unknown stellar-mass preset 'huge'"),
        (MassTrainSettings, {"overrides": {"trian": {}}}, "unknown stellar-mass settings"),
        (MassTrainSettings, {"seed": -1}, "seed must be an integer >= 0"),
        (CausalSettings, {"latent_of": "pixels"}, "latent_of must be one of"),
        (CausalSettings, {"external": ()}, "external must name"),
        (CausalSettings, {"k": 3}, "k must be an integer >= 4, got 3"),
        (CausalSettings, {"k": 30.0}, "k must be an integer"),
        (CausalSettings, {"n_permutations": 0}, "n_permutations must be an integer >= 1"),
        (CausalSettings, {"alpha": 1.0}, r"alpha must be a number in \(0, 1\)"),
        (CausalSettings, {"pc_alpha": 0}, r"pc_alpha must be a number in \(0, 1\)"),
        (CausalSettings, {"pc_depth": -1}, "pc_depth must be an integer >= 0"),
        (CausalSettings, {"n_bootstrap": -1}, "n_bootstrap must be an integer >= 0"),
        (CausalSettings, {"max_rows": 0}, "max_rows must be an integer >= 1"),
        (CausalSettings, {"conditioning": ""}, "conditioning must name a catalog column"),
        (CausalSettings, {"neighbourhoods": "random"}, "neighbourhoods must be one of"),
        (CausalSettings, {"neighbourhoods": None}, "neighbourhoods must be one of"),
        (CausalSettings, {"weights": "gauss"}, "weights must be one of"),
        (CausalSettings, {"neighbourhoods": "overlapping", "k": 2}, "k must be an integer >= 4"),
        (PIDSettings, {"pairs": ("images_spectra",)}, "unknown input pairs"),
        (PIDSettings, {"n_bins": 1}, "n_bins must be an integer >= 2"),
        (PIDSettings, {"mass_range": (12.5, 6.0)}, r"mass_range must rise"),
        (PIDSettings, {"mass_range": 6.0}, r"mass_range must be two numbers"),
        (PIDSettings, {"mass_range": ("6", 12.5)}, r"mass_range must be a finite number"),
        (PIDSettings, {"prior_pseudocount": -0.5}, r"prior_pseudocount must be >= 0"),
        (PIDSettings, {"classifier": {"epochs": 0}}, "epochs must be an integer >= 1"),
        (PIDSettings, {"classifier": {"epoch": 5}}, "classifier: .*epoch"),
        (AttributionSettings, {"model": "photo"}, "model must be one of"),
        (AttributionSettings, {"n_galaxies": 0}, "n_galaxies must be an integer >= 1"),
        (AttributionSettings, {"methods": ("shap",)}, r"unknown attribution methods \['shap'\]"),
        (AttributionSettings, {"methods": ()}, "methods must name at least one of"),
        (AttributionSettings, {"methods": "saliency,saliency"}, r"names \['saliency'\] more than"),
        (AttributionSettings, {"smoothgrad_samples": 0}, "smoothgrad_samples must be an integer"),
        (
            AttributionSettings,
            {"smoothgrad_noise": 0.0},
            r"smoothgrad_noise must be a number in \(0, 1\)",
        ),
        (
            AttributionSettings,
            {"smoothgrad_noise": 1.0},
            r"smoothgrad_noise must be a number in \(0, 1\)",
        ),
        (AttributionSettings, {"n_steps": 0}, "n_steps must be an integer >= 1"),
        (AttributionSettings, {"internal_batch_size": True}, "internal_batch_size must be"),
        (AttributionSettings, {"centre_radius": -1.0}, "centre_radius must be a number > 0"),
    ],
)
def test_a_bad_setting_is_refused_by_name(cls, changes, message):
    with pytest.raises(ValidationError, match=message):
        cls(**changes)


@pytest.mark.parametrize("cls", ALL)
def test_settings_round_trip_through_json(cls):
    import json

    settings = cls()
    data = json.loads(json.dumps(settings.to_dict()))
    assert cls.from_dict(data) == settings
    with pytest.raises(ValidationError, match=f"unknown {cls.__name__} settings"):
        cls.from_dict({**data, "nonsense": 1})


def test_sequences_are_stored_as_tuples_and_settings_are_frozen():
    settings = CausalSettings(external=["disk_q", "z"], pc_columns=["z", "log_mstar"])
    assert settings.external == ("disk_q", "z") and settings.pc_columns == ("z", "log_mstar")
    assert PIDSettings(list(PAIRS)).pairs == tuple(PAIRS)
    with pytest.raises(AttributeError):
        settings.k = 5


def test_the_neighbourhood_size_follows_the_scheme_unless_given():
    assert CausalSettings().k == 30
    assert CausalSettings(neighbourhoods="overlapping").k == 100  # as published
    assert CausalSettings(neighbourhoods="overlapping", k=40, weights="distance").k == 40
    settings = CausalSettings(neighbourhoods="overlapping", weights="distance")
    assert CausalSettings.from_dict(settings.to_dict()) == settings


def test_band_ablations_are_trained_by_name_or_as_a_group_not_by_default():
    from clapkit.interpret.input_sets import BAND_SETS, INPUT_SETS

    assert MassTrainSettings().input_sets == tuple(INPUT_SETS)
    assert MassTrainSettings(("images", "bands")).input_sets == ("images", *BAND_SETS)
    assert MassTrainSettings(("images_band_r",)).input_sets == ("images_band_r",)
    assert CausalSettings(latent_of="images_band_r").latent_of == "images_band_r"
    with pytest.raises(ValidationError, match="single-band ablation"):
        MassTrainSettings(("images_band_y",))


def test_attribution_methods_are_all_three_by_default_and_keep_the_order_given():
    assert AttributionSettings().methods == ("integrated_gradients", "saliency", "smoothgrad")
    assert AttributionSettings(methods=["smoothgrad", "saliency"]).methods == (
        "smoothgrad",
        "saliency",
    )
    settings = AttributionSettings()
    assert (settings.smoothgrad_samples, settings.smoothgrad_noise) == (25, 0.15)


def test_pid_settings_give_the_classifier_the_stage_seed():
    assert PIDSettings(seed=3, classifier={"epochs": 15}).classifier_config().seed == 3
    assert PIDSettings(seed=3, classifier={"seed": 1}).classifier_config().seed == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["causal", "--k", "2"], "k must be an integer >= 4, got 2"),
        (["causal", "--regression", "cubic"], "regression must be one of"),
        (["causal", "--neighbourhoods", "all"], "neighbourhoods must be one of"),
        (["causal", "--weights", "inverse"], "weights must be one of"),
        (["pid", "--bins", "1"], "n_bins must be an integer >= 2, got 1"),
        (["attribute", "--attribution", "shap"], "unknown attribution methods ['shap']"),
        (["attribute", "--attributions", "saliency,gradcam"], "unknown attribution methods"),
        (["attribute", "--smoothgrad-noise", "0"], "smoothgrad_noise must be a number in"),
        (["attribute", "--smoothgrad-samples", "0"], "smoothgrad_samples must be an integer"),
        (["train", "--input-sets", "spectra"], "unknown input set 'spectra'"),
    ],
)
def test_the_command_line_refuses_a_bad_setting_before_reading_or_writing(
    tmp_path, capsys, argv, message
):
    run = tmp_path / "run"
    args = ["interpret", argv[0], "--data", str(tmp_path / "missing.h5"), "--run", str(run)]
    assert main([*args, *argv[1:]]) == 2
    # Refused for the setting, not for the missing data file, and nothing written.
    assert message in capsys.readouterr().err
    assert not run.exists()


def test_causal_discovery_is_pc_fci_or_both():
    assert CausalSettings().discovery == "both"
    assert CausalSettings.from_dict(CausalSettings(discovery="fci").to_dict()).discovery == "fci"
    with pytest.raises(ValidationError, match="discovery"):
        CausalSettings(discovery="lingam")
