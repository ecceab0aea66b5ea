from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from nlp.extract import (
    TIME_RE,
    Precision,
    Span,
    find_addresses,
    find_datetimes,
    find_id_cards,
    find_phones,
    find_times,
    mask_phone,
    mask_pii,
    parse_datetime,
)
from nlp.timeparse import SHANGHAI


def test_phones():
    spans = find_phones("电话13812345678 或 139-1234-5678 座机010-87654321 已脱敏138****1234")
    assert [s.text for s in spans] == [
        "13812345678",
        "139-1234-5678",
        "010-87654321",
        "138****1234",
    ]


def test_phone_not_inside_id_card():
    assert find_phones("110101199003071234") == []
    assert [s.text for s in find_id_cards("身份证110101199003071234")] == ["110101199003071234"]


def test_addresses():
    texts = [s.text for s in find_addresses("我住在阳光小区5号楼2单元301 对面X号楼 还有302室")]
    assert "阳光小区5号楼2单元301" in texts
    assert "X号楼" in texts
    assert "302室" in texts


def test_times_spans():
    text = "明天下午三点来 周六上午9点半也行 10月1日"
    spans = find_times(text)
    assert [s.text for s in spans] == ["明天下午三点", "周六上午9点半", "10月1日"]
    assert all(text[s.start : s.end] == s.text for s in spans)


def test_times_ignore_building_numbers():
    assert find_times("我住5号楼") == []


def test_mask_phone():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("138 1234 5678") == "138****5678"
    assert mask_phone("010-12345678") == "010-****5678"


def test_mask_pii():
    masked = mask_pii("阳光小区5号楼2单元301 电话13812345678 身份证110101199003071234 门牌号18")
    assert "13812345678" not in masked and "138****5678" in masked
    assert "110101199003071234" not in masked and "110***********1234" in masked
    assert "阳光小区5号楼2单元" in masked and "301" not in masked
    assert "门牌号***" in masked


def test_mask_pii_empty():
    assert mask_pii("") == ""


def _find_times_ungated(text: str) -> list[Span]:
    """find_times as it was before its literal gate: the reference for the gate."""
    spans = []
    for m in TIME_RE.finditer(text):
        value = m.group(0).strip()
        if value:
            start = m.start() + m.group(0).index(value)
            spans.append(Span(start, start + len(value), value))
    return spans


_TIME_CHARS = "今明后昨前大天晚早周星期礼拜一二三四五六日月号上中下午傍凌晨夜里点时:：半刻分"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_TIME_CHARS + "0123 楼x", max_size=30))
def test_find_times_gate_changes_nothing(text: str) -> None:
    assert find_times(text) == _find_times_ungated(text)


def test_find_datetimes_resolves_times() -> None:
    now = datetime(2026, 11, 22, 10, 0, tzinfo=SHANGHAI)  # a Sunday
    got = find_datetimes("明天下午三点来 周六上午9点半也行", now)
    assert [(t.text, t.start.strftime("%m-%d %H:%M")) for t in got] == [
        ("明天下午三点", "11-23 15:00"),
        ("周六上午9点半", "11-28 09:30"),
    ]
    assert parse_datetime("10月1日", now).precision is Precision.DAY
