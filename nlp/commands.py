"""Bodies of the ``linli classify`` and ``linli nlp eval`` commands (the CLI wires them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from nlp.classifier import Classification, get_classifier
from nlp.evaluate import EvalReport, evaluate, format_report, load_jsonl


def classification_to_json(item_id: Any, result: Classification, top: int | None) -> dict:
    """The output object of one input line, per interfaces.md §1."""
    out: dict[str, Any] = {
        "id": item_id,
        "category": result.category,
        "kind": result.kind,
        "emergency": result.emergency,
        "confidence": result.confidence,
        "matched": list(result.matched),
    }
    if top is not None:
        out["candidates"] = [[c, s] for c, s in result.candidates[: max(0, top)]]
    return out


def _parse_line(line: str) -> tuple[Any, str | None, str | None]:
    """(id, text, error) of one input line."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, None, f"invalid JSON: {exc.msg}"
    if not isinstance(obj, dict):
        return None, None, "expected a JSON object"
    item_id = obj.get("id")
    text = obj.get("text")
    if not isinstance(text, str):
        return item_id, None, 'missing or non-string "text"'
    return item_id, text, None


def run_classify(inp: TextIO, out: TextIO, top: int | None) -> int:
    """Classify JSON Lines ``{"id", "text"}`` from ``inp``; one JSON line per input line."""
    classifier = get_classifier()
    for line in inp:
        if not line.strip():
            continue
        item_id, text, error = _parse_line(line)
        if error is not None or text is None:
            record: dict[str, Any] = {"id": item_id, "error": error or "no text"}
        else:
            record = classification_to_json(item_id, classifier.classify(text), top)
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()
    return 0


def run_eval(path: Path) -> tuple[str, EvalReport]:
    """Score the default classifier on a labelled file; returns (printable text, report)."""
    report = evaluate(load_jsonl(path), get_classifier())
    return format_report(report), report
