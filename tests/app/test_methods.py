"""One identity per method: every method the library makes has one name, colour and place."""

import re

from clapkit_app.methods import (
    IDEAL_COLOUR,
    LANDING_METHODS,
    METHODS,
    MODELS,
    identity,
    method_label,
    model_identity,
    ordered,
)
from clapkit_app.store import BASELINES, METHOD_LABELS
from clapkit_app.store import method_label as store_label

from clapkit.evaluation import CLAP_STAGES, ordered_methods
from clapkit.translate.models import MODEL_NAMES


def test_every_method_of_the_library_has_an_identity_of_its_own():
    assert set(CLAP_STAGES) | set(BASELINES) <= set(METHODS)
    looks = [(found.colour.lower(), found.dash) for found in METHODS.values()]
    assert len(set(looks)) == len(looks)
    assert len({found.label for found in METHODS.values()}) == len(METHODS)
    # No black (invisible in the dark theme), no white; the ideal lines are neither.
    for colour in [c for c, _ in looks] + [IDEAL_COLOUR]:
        assert re.fullmatch(r"#[0-9a-f]{6}", colour)
        assert colour not in ("#000000", "#ffffff")
    assert set(LANDING_METHODS) <= set(METHODS)


def test_the_store_and_every_page_read_the_same_names():
    assert {m: found.label for m, found in METHODS.items()} == METHOD_LABELS
    assert all(store_label(m) == method_label(m) for m in [*METHODS, "unknown"])
    assert identity("unknown").label == "unknown"


def test_order_keeps_clap_first_like_the_library():
    methods = ["softmax", "flexzboost", "clap_raw", "clap", "mine"]
    assert ordered(methods)[:2] == ordered_methods(methods)[:2] == ["clap", "clap_raw"]
    assert ordered(methods)[-1] == "mine"
    assert ordered(reversed(methods)) == ordered(methods)  # not the order given


def test_every_translation_model_has_a_colour_of_its_own():
    assert set(MODEL_NAMES) | {"real", "nrgan_smooth"} <= set(MODELS)
    looks = [(found.colour, found.dash) for found in MODELS.values()]
    assert len(set(looks)) == len(looks)
    assert model_identity("nrgan").label == "nrgan"  # the page names models by key
