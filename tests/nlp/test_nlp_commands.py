import io
import json

from nlp.commands import run_classify

KEYS = {"id", "category", "kind", "emergency", "confidence", "matched"}


def _run(lines: list[str], top: int | None = None) -> list[dict]:
    out = io.StringIO()
    assert run_classify(io.StringIO("\n".join(lines) + "\n"), out, top) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_one_line_per_input():
    rows = _run(
        [
            json.dumps({"id": 1, "text": "楼道灯坏了"}, ensure_ascii=False),
            json.dumps({"id": "b", "text": "你好"}, ensure_ascii=False),
        ]
    )
    assert [r["id"] for r in rows] == [1, "b"]
    assert all(set(r) == KEYS for r in rows)
    assert isinstance(rows[0]["matched"], list)


def test_top_adds_candidates():
    rows = _run([json.dumps({"id": 1, "text": "想申请低保 孩子上学"}, ensure_ascii=False)], top=2)
    cands = rows[0]["candidates"]
    assert len(cands) <= 2 and all(len(c) == 2 for c in cands)
    assert cands[0][0] == rows[0]["category"]


def test_bad_lines_continue():
    rows = _run(
        [
            "not json",
            json.dumps({"id": 7}),
            json.dumps([1]),
            json.dumps({"id": 8, "text": "谢谢"}, ensure_ascii=False),
        ]
    )
    assert rows[0] == {"id": None, "error": rows[0]["error"]}
    assert rows[1]["id"] == 7 and "error" in rows[1]
    assert "error" in rows[2]
    assert rows[3]["id"] == 8 and rows[3]["kind"] == "chitchat"


def test_output_is_not_ascii_escaped():
    out = io.StringIO()
    run_classify(io.StringIO(json.dumps({"id": 1, "text": "修灯"}) + "\n"), out, None)
    assert "\\u" not in out.getvalue()
