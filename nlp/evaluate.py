"""Scoring the classifier on a labelled JSON Lines file (format of ``shared/data/dev.jsonl``)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from nlp.classifier import Classification
from nlp.taxonomy import CATEGORIES


class SupportsClassify(Protocol):
    def classify(self, text: str) -> Classification: ...


@dataclass(frozen=True)
class CategoryStats:
    """Precision/recall of one category (a prediction in ``also`` counts as correct)."""

    precision: float
    recall: float
    support: int
    predicted: int


@dataclass
class EvalReport:
    """Everything ``linli nlp eval`` prints."""

    total: int = 0
    category_accuracy: float = 0.0
    kind_accuracy: float = 0.0
    emergency_recall: float = 1.0
    emergency_precision: float = 1.0
    emergency_support: int = 0
    throughput: float = 0.0  # messages per second
    per_category: dict[str, CategoryStats] = field(default_factory=dict)
    confusion: list[tuple[str, str, int]] = field(default_factory=list)  # gold, predicted, n
    errors: list[dict[str, Any]] = field(default_factory=list)  # misrouted records


def load_jsonl(path: Path | str) -> Iterator[dict[str, Any]]:
    """Records of a JSON Lines file; blank lines are skipped."""
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _ratio(num: int, den: int, empty: float) -> float:
    return num / den if den else empty


def evaluate(records: Iterable[dict[str, Any]], classifier: SupportsClassify) -> EvalReport:
    """Classify every record and compare with its labels."""
    rows = [r for r in records if isinstance(r.get("text"), str)]
    started = time.perf_counter()
    results = [classifier.classify(r["text"]) for r in rows]
    elapsed = time.perf_counter() - started

    cat_ok = kind_ok = 0
    tp: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    support: Counter[str] = Counter()
    confusion: Counter[tuple[str, str]] = Counter()
    em_tp = em_fp = em_fn = 0
    errors: list[dict[str, Any]] = []
    for rec, res in zip(rows, results, strict=True):
        gold = rec.get("category", "other")
        accepted = {gold, *rec.get("also", [])}
        support[gold] += 1
        predicted[res.category] += 1
        if res.category in accepted:
            cat_ok += 1
            tp[gold] += 1
            if res.category != gold:
                # Counted as correct for the gold class; keep precision honest for the other.
                predicted[res.category] -= 1
                predicted[gold] += 1
        else:
            confusion[(gold, res.category)] += 1
            errors.append({"id": rec.get("id"), "gold": gold, "got": res.category})
        if res.kind == rec.get("kind"):
            kind_ok += 1
        gold_em = bool(rec.get("emergency"))
        em_tp += gold_em and res.emergency
        em_fp += (not gold_em) and res.emergency
        em_fn += gold_em and not res.emergency

    n = len(rows)
    per_category = {
        cat: CategoryStats(
            precision=_ratio(tp[cat], predicted[cat], 0.0),
            recall=_ratio(tp[cat], support[cat], 0.0),
            support=support[cat],
            predicted=predicted[cat],
        )
        for cat in CATEGORIES
        if support[cat] or predicted[cat]
    }
    return EvalReport(
        total=n,
        category_accuracy=_ratio(cat_ok, n, 0.0),
        kind_accuracy=_ratio(kind_ok, n, 0.0),
        emergency_recall=_ratio(em_tp, em_tp + em_fn, 1.0),
        emergency_precision=_ratio(em_tp, em_tp + em_fp, 1.0),
        emergency_support=em_tp + em_fn,
        throughput=n / elapsed if elapsed > 0 else float("inf"),
        per_category=per_category,
        confusion=[(g, p, c) for (g, p), c in confusion.most_common()],
        errors=errors,
    )


def format_report(report: EvalReport) -> str:
    """Plain-text report for the terminal."""
    lines = [
        f"messages            {report.total}",
        f"category accuracy   {report.category_accuracy:.1%}  (category or also)",
        f"kind accuracy       {report.kind_accuracy:.1%}",
        f"emergency recall    {report.emergency_recall:.1%}  (support {report.emergency_support})",
        f"emergency precision {report.emergency_precision:.1%}",
        f"throughput          {report.throughput:,.0f} msgs/s",
        "",
        f"{'category':<14}{'precision':>10}{'recall':>8}{'support':>9}{'predicted':>11}",
    ]
    for cat, st in report.per_category.items():
        lines.append(
            f"{cat:<14}{st.precision:>10.1%}{st.recall:>8.1%}{st.support:>9}{st.predicted:>11}"
        )
    if report.confusion:
        lines += ["", "confusions (gold -> predicted: count)"]
        lines += [f"  {g} -> {p}: {c}" for g, p, c in report.confusion]
    return "\n".join(lines)
