"""The metric definitions the pages show (clapkit.metrics.definitions) and the glossary."""

import re
from pathlib import Path

import pytest

from clapkit.metrics.definitions import MASS, MI, PHOTOZ, TRANSLATION, tooltip, tooltips

GLOSSARY = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
NAMESPACES = {"photoz": PHOTOZ, "translation": TRANSLATION, "mass": MASS, "mi": MI}

# pending docs: terms docs/metrics.md does not define yet; the test below fails for a
# term listed here that the glossary has (then drop it from the set).
PENDING_DOCS: set[str] = set()


def _documented(term: str, text: str) -> bool:
    """Whether the glossary names ``term`` in code quotes: `term`, `term(...)` or `module.term`."""
    return re.search(r"[`.]" + re.escape(term) + r"[`(]", text) is not None


def _terms() -> set[str]:
    return {item.doc for table in NAMESPACES.values() for item in table.values() if item.doc}


def test_every_definition_is_in_the_glossary_or_pending():
    text = GLOSSARY.read_text()
    missing = sorted(t for t in _terms() - PENDING_DOCS if not _documented(t, text))
    assert not missing, f"docs/metrics.md lacks {missing}"


def test_pending_terms_are_still_missing_and_still_used():
    text = GLOSSARY.read_text()
    assert _terms() >= PENDING_DOCS, sorted(PENDING_DOCS - _terms())
    documented = sorted(t for t in PENDING_DOCS if _documented(t, text))
    assert not documented, f"now in docs/metrics.md, drop from PENDING_DOCS: {documented}"


@pytest.mark.parametrize("namespace", sorted(NAMESPACES))
def test_every_definition_says_what_and_what_is_good(namespace):
    for key, item in NAMESPACES[namespace].items():
        text = tooltip(key, namespace)
        assert text.startswith(item.label + ": ") and "Good: " in text, key
        assert item.definition.endswith(".") and item.good, key


def test_units_where_the_numbers_have_them():
    assert MASS["sigma"].unit == MASS["crps"].unit == "dex"
    assert TRANSLATION["psnr"].unit == "dB"
    assert PHOTOZ["sigma_mad"].unit == ""  # δz is dimensionless
    # The probe's columns are the photo-z metrics, said to be the probe's.
    assert TRANSLATION["photoz_crps"].definition.startswith(PHOTOZ["crps"].definition[:-1])
    assert "probe" in TRANSLATION["photoz_crps"].definition


def test_tooltips_of_suffixed_columns():
    found = tooltips(["bin", "n", "crps_b", "pit_w1_b", "crps_a"], suffix="_b")
    assert set(found) == {"n", "crps_b", "pit_w1_b"}
    assert found["crps_b"] == tooltip("crps")
