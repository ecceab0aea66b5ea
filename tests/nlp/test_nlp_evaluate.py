import pytest

from nlp.commands import run_eval
from nlp.evaluate import evaluate, format_report, load_jsonl
from tests.nlp.conftest import DEV_SET, OWN_SAMPLES


def test_evaluate_counts_also(classifier):
    recs = [
        {
            "text": "楼道灯坏了",
            "category": "housekeeping",
            "also": ["environment"],
            "kind": "need",
            "emergency": False,
        },
        {
            "text": "着火了 冒黑烟",
            "category": "safety",
            "also": [],
            "kind": "need",
            "emergency": True,
        },
    ]
    rep = evaluate(recs, classifier)
    assert rep.total == 2
    assert rep.category_accuracy == 1.0
    assert rep.emergency_recall == 1.0 and rep.emergency_precision == 1.0
    text = format_report(rep)
    assert "category accuracy" in text and "emergency recall" in text


def test_own_samples_floor(classifier):
    rep = evaluate(load_jsonl(OWN_SAMPLES), classifier)
    assert rep.category_accuracy >= 0.95
    assert rep.kind_accuracy >= 0.85
    assert rep.emergency_recall == 1.0
    assert rep.emergency_precision == 1.0


@pytest.mark.skipif(not DEV_SET.exists(), reason=f"shared dev set not found at {DEV_SET}")
def test_dev_set_floor():
    text, rep = run_eval(DEV_SET)
    assert rep.total == 260
    assert rep.category_accuracy >= 0.97, text
    assert rep.kind_accuracy >= 0.94, text
    assert rep.emergency_recall == 1.0, text
    assert rep.emergency_precision >= 0.95, text
