"""The page frame: a served page's document is the same whether or not Bokeh's model
index is frozen while the template adds itself (:func:`clapkit_app.page.serve`)."""

from collections import Counter

from bokeh.document import Document
from clapkit_app.calibration import CalibrationExplorer
from clapkit_app.page import DASHBOARDS, page, serve
from clapkit_app.store import load_run

from clapkit.testing import SyntheticRunConfig, synthetic_run


def _kinds(document: Document) -> tuple[int, Counter]:
    return len(document.roots), Counter(type(model).__name__ for model in document.models)


def test_serve_builds_the_document_the_template_builds_alone(tmp_path):
    root = tmp_path / "run"
    synthetic_run(root, SyntheticRunConfig(n_test=60, n_train=80, seed=1))
    run = load_run(root)
    plain, frozen = Document(), Document()
    page(CalibrationExplorer(run=run), DASHBOARDS["calibration"], str(root)).server_doc(
        plain, location=True
    )
    serve(page(CalibrationExplorer(run=run), DASHBOARDS["calibration"], str(root)), frozen)
    assert _kinds(frozen) == _kinds(plain)
    assert len(frozen.roots) > 1 and len(frozen.models) > 100
    # Every model the roots reach is indexed, so the browser's pull of the document and
    # later events find it.
    reachable = {model.id for root_model in frozen.roots for model in root_model.references()}
    assert reachable == {model.id for model in frozen.models}
