"""Chinese date/time parsing: table-driven against a fixed ``now``, plus hostile input."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from nlp import timeparse
from nlp.extract import find_datetimes
from nlp.timeparse import SHANGHAI, Precision, parse_datetime

# Sunday 2026-11-22 10:00 in Shanghai.
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=SHANGHAI)
D, P, X = Precision.DAY, Precision.PERIOD, Precision.EXACT

# (text, start, end, precision, matched text); times are Shanghai wall times.
CASES = [
    # relative days, and days that carry a part of the day
    ("今天", "2026-11-22 00:00", None, D, "今天"),
    ("明天", "2026-11-23 00:00", None, D, "明天"),
    ("后天", "2026-11-24 00:00", None, D, "后天"),
    ("大后天", "2026-11-25 00:00", None, D, "大后天"),
    ("昨天", "2026-11-21 00:00", None, D, "昨天"),
    ("今晚", "2026-11-22 19:00", None, P, "今晚"),
    ("明早", "2026-11-23 08:00", None, P, "明早"),
    ("明晚", "2026-11-23 19:00", None, P, "明晚"),
    ("明晚8点", "2026-11-23 20:00", None, X, "明晚8点"),
    ("今晚7点半", "2026-11-22 19:30", None, X, "今晚7点半"),
    # weekdays: this week is Mon 16 .. Sun 22 (today)
    ("本周三", "2026-11-18 00:00", None, D, "本周三"),
    ("这周三", "2026-11-18 00:00", None, D, "这周三"),
    ("下周三", "2026-11-25 00:00", None, D, "下周三"),
    ("下个礼拜三上午十点", "2026-11-25 10:00", None, X, "下个礼拜三上午十点"),
    ("下下周一", "2026-11-30 00:00", None, D, "下下周一"),
    ("上周五", "2026-11-13 00:00", None, D, "上周五"),
    ("周日", "2026-11-29 00:00", None, D, "周日"),  # today, but no time given: next week
    ("星期天", "2026-11-29 00:00", None, D, "星期天"),
    ("礼拜天", "2026-11-29 00:00", None, D, "礼拜天"),
    ("礼拜六", "2026-11-28 00:00", None, D, "礼拜六"),
    ("周日下午3点", "2026-11-22 15:00", None, X, "周日下午3点"),  # today, still ahead
    ("周日上午9点", "2026-11-29 09:00", None, X, "周日上午9点"),  # today's is past
    ("周六下午", "2026-11-28 14:00", None, P, "周六下午"),
    # calendar dates
    ("11月25日", "2026-11-25 00:00", None, D, "11月25日"),
    ("11月25号", "2026-11-25 00:00", None, D, "11月25号"),
    ("十一月二十五日", "2026-11-25 00:00", None, D, "十一月二十五日"),
    ("11.25", "2026-11-25 00:00", None, D, "11.25"),
    ("11-25", "2026-11-25 00:00", None, D, "11-25"),
    ("12/1", "2026-12-01 00:00", None, D, "12/1"),
    ("2026年12月1日", "2026-12-01 00:00", None, D, "2026年12月1日"),
    ("2026-12-01", "2026-12-01 00:00", None, D, "2026-12-01"),
    ("2026-12-01 14:00", "2026-12-01 14:00", None, X, "2026-12-01 14:00"),
    ("明年3月1日", "2027-03-01 00:00", None, D, "明年3月1日"),
    ("11月20日", "2027-11-20 00:00", None, D, "11月20日"),  # past this year: next year
    ("1月3日", "2027-01-03 00:00", None, D, "1月3日"),
    ("10.1", "2027-10-01 00:00", None, D, "10.1"),
    ("25号", "2026-11-25 00:00", None, D, "25号"),
    ("三十号", "2026-11-30 00:00", None, D, "三十号"),
    ("5号", "2026-12-05 00:00", None, D, "5号"),  # this month's 5th is past
    ("31号", "2026-12-31 00:00", None, D, "31号"),  # November has no 31st
    ("月底", "2026-11-30 00:00", None, D, "月底"),
    ("下个月底", "2026-12-31 00:00", None, D, "下个月底"),
    ("下个月5号", "2026-12-05 00:00", None, D, "下个月5号"),
    ("下下个月1号", "2027-01-01 00:00", None, D, "下下个月1号"),
    # parts of the day with a clock
    ("下午三点", "2026-11-22 15:00", None, X, "下午三点"),
    ("晚上8点", "2026-11-22 20:00", None, X, "晚上8点"),
    ("中午12点", "2026-11-22 12:00", None, X, "中午12点"),
    ("中午1点", "2026-11-22 13:00", None, X, "中午1点"),
    ("凌晨1点", "2026-11-23 01:00", None, X, "凌晨1点"),
    ("明天凌晨1点", "2026-11-23 01:00", None, X, "明天凌晨1点"),
    ("早上7点", "2026-11-23 07:00", None, X, "早上7点"),
    ("傍晚6点", "2026-11-22 18:00", None, X, "傍晚6点"),
    ("明天早上八点半", "2026-11-23 08:30", None, X, "明天早上八点半"),
    ("下午15:30", "2026-11-22 15:30", None, X, "下午15:30"),
    ("晚上12点", "2026-11-23 00:00", None, X, "晚上12点"),
    # bare clocks: next plausible (7:00-22:59) occurrence
    ("3点", "2026-11-22 15:00", None, X, "3点"),
    ("三点", "2026-11-22 15:00", None, X, "三点"),
    ("3点半", "2026-11-22 15:30", None, X, "3点半"),
    ("三点一刻", "2026-11-22 15:15", None, X, "三点一刻"),
    ("三点三刻", "2026-11-22 15:45", None, X, "三点三刻"),
    ("3点15", "2026-11-22 15:15", None, X, "3点15"),
    ("3点15分", "2026-11-22 15:15", None, X, "3点15分"),
    ("15:30", "2026-11-22 15:30", None, X, "15:30"),
    ("十点二十", "2026-11-22 10:20", None, X, "十点二十"),
    ("十点二十分", "2026-11-22 10:20", None, X, "十点二十分"),
    ("10点", "2026-11-22 10:00", None, X, "10点"),  # said at 10:00: now counts
    ("9点", "2026-11-22 21:00", None, X, "9点"),  # 9:00 is past, 21:00 is plausible
    ("明天9点", "2026-11-23 09:00", None, X, "明天9点"),
    ("明天6点", "2026-11-23 18:00", None, X, "明天6点"),  # 6:00 is outside the day
    ("一点半", "2026-11-22 13:30", None, X, "一点半"),
    ("03:00", "2026-11-23 03:00", None, X, "03:00"),  # zero-padded: literal
    ("0点", "2026-11-23 00:00", None, X, "0点"),
    # from now
    ("半小时后", "2026-11-22 10:30", None, X, "半小时后"),
    ("半个小时后", "2026-11-22 10:30", None, X, "半个小时后"),
    ("两个小时后", "2026-11-22 12:00", None, X, "两个小时后"),
    ("一个半小时后", "2026-11-22 11:30", None, X, "一个半小时后"),
    ("10分钟后", "2026-11-22 10:10", None, X, "10分钟后"),
    ("3天后", "2026-11-25 00:00", None, D, "3天后"),
    ("三天后下午2点", "2026-11-25 14:00", None, X, "三天后下午2点"),
    ("一周后", "2026-11-29 00:00", None, D, "一周后"),
    # ranges
    ("明天下午2点到4点", "2026-11-23 14:00", "2026-11-23 16:00", X, "明天下午2点到4点"),
    ("周六9:00-11:30", "2026-11-28 09:00", "2026-11-28 11:30", X, "周六9:00-11:30"),
    ("周六 9:00 - 11:30", "2026-11-28 09:00", "2026-11-28 11:30", X, "周六 9:00 - 11:30"),
    ("周六9-11点", "2026-11-28 09:00", "2026-11-28 11:00", X, "周六9-11点"),
    ("下午2到4点", "2026-11-22 14:00", "2026-11-22 16:00", X, "下午2到4点"),
    ("上午10点到下午2点", "2026-11-22 10:00", "2026-11-22 14:00", X, "上午10点到下午2点"),
    ("晚上7点到凌晨1点", "2026-11-22 19:00", "2026-11-23 01:00", X, "晚上7点到凌晨1点"),
    ("晚上10点到12点", "2026-11-22 22:00", "2026-11-23 00:00", X, "晚上10点到12点"),
    (
        "礼拜六上午十点到十一点半",
        "2026-11-28 10:00",
        "2026-11-28 11:30",
        X,
        "礼拜六上午十点到十一点半",
    ),
    ("11月25日到27日", "2026-11-25 00:00", "2026-11-27 00:00", D, "11月25日到27日"),
    ("周一到周五", "2026-11-23 00:00", "2026-11-27 00:00", D, "周一到周五"),
    # inside sentences, notes, full-width
    ("请明天下午三点来修一下楼道的灯", "2026-11-23 15:00", None, X, "明天下午三点"),
    ("我家住5号楼，明天下午有人", "2026-11-23 14:00", None, P, "明天下午"),
    ("11月28日(周六)上午9点集合", "2026-11-28 09:00", None, X, "11月28日(周六)上午9点"),
    ("明天的下午3点", "2026-11-23 15:00", None, X, "明天的下午3点"),
    ("２６号下午３：３０", "2026-11-26 15:30", None, X, "２６号下午３：３０"),
    ("下午3点分享会", "2026-11-22 15:00", None, X, "下午3点"),
]

# (now, text, start, end): year rollover and month ends.
EDGE_CASES = [
    ("2026-12-30 16:00", "明天", "2026-12-31 00:00", None),
    ("2026-12-30 16:00", "大后天", "2027-01-02 00:00", None),
    ("2026-12-30 16:00", "下周三", "2027-01-06 00:00", None),
    ("2026-12-30 16:00", "1月3日", "2027-01-03 00:00", None),
    ("2026-12-30 16:00", "12/29", "2027-12-29 00:00", None),
    ("2026-12-30 16:00", "下个月5号", "2027-01-05 00:00", None),
    ("2026-12-30 16:00", "2号", "2027-01-02 00:00", None),
    ("2026-12-30 16:00", "3天后", "2027-01-02 00:00", None),
    ("2026-12-30 16:00", "周五下午", "2027-01-01 14:00", None),
    ("2026-12-30 16:00", "3点", "2026-12-31 15:00", None),
    ("2026-12-30 16:00", "12月30日到1月2日", "2026-12-30 00:00", "2027-01-02 00:00"),
    ("2026-12-30 16:00", "12月31日晚上8点到1月1日凌晨1点", "2026-12-31 20:00", "2027-01-01 01:00"),
    ("2026-12-31 23:50", "半小时后", "2027-01-01 00:20", None),
    ("2026-12-31 23:50", "晚上12点", "2027-01-01 00:00", None),
    ("2027-01-31 09:00", "月底", "2027-01-31 00:00", None),
    ("2027-01-31 09:00", "下个月底", "2027-02-28 00:00", None),
    ("2027-01-31 09:00", "2月29日", "2028-02-29 00:00", None),
    ("2028-02-28 09:00", "月底", "2028-02-29 00:00", None),
    ("2028-02-28 09:00", "明天", "2028-02-29 00:00", None),
    ("2028-02-28 09:00", "3天后", "2028-03-02 00:00", None),
]

NOT_TIMES = [
    "",
    "楼道的灯坏了，请尽快来修",
    "2月30日",
    "11月31日",
    "13月5日",
    "2027年2月29日",
    "2月29日",  # no 29 February before 2028
    "25点",
    "24:30",
    "12:60",
    "上午15点",
    "中午5点",
    "能不能快一点",
    "有三点建议",
    "第三点",
    "我住5号楼2单元",
    "坐1号线",
    "电话13812345678",
    "身份证110101199003071234",
    "11.25元",
    "1.5公里",
    "三点五公里",
    "1/2的人",
    "3-5天",
    "每周三次",
    "早上好",
    "下周",  # no weekday: deliberately not guessed
    "周末",
]


def _local(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=SHANGHAI)


@pytest.mark.parametrize(("text", "start", "end", "precision", "matched"), CASES)
def test_parse(text: str, start: str, end: str | None, precision: Precision, matched: str) -> None:
    got = parse_datetime(text, NOW)
    assert got is not None
    assert (got.start, got.end) == (_local(start), end and _local(end))
    assert got.precision is precision
    assert got.needs_clock == (precision is not X)
    assert got.text == matched == text[got.span[0] : got.span[1]]
    assert got.start.tzinfo is SHANGHAI


@pytest.mark.parametrize(("now", "text", "start", "end"), EDGE_CASES)
def test_year_rollover_and_month_ends(now: str, text: str, start: str, end: str | None) -> None:
    got = parse_datetime(text, _local(now))
    assert got is not None
    assert (got.start, got.end) == (_local(start), end and _local(end))


@pytest.mark.parametrize("text", NOT_TIMES)
def test_not_a_time(text: str) -> None:
    assert parse_datetime(text, NOW) is None


def test_impossible_start_takes_its_range_along() -> None:
    """「2月30日到3月2日」 is one broken expression, not a 3月2日 to act on."""
    assert parse_datetime("2月30日到3月2日", NOW) is None
    assert parse_datetime("2月30日不行，明天吧", NOW).text == "明天"


def test_now_in_another_zone_is_read_in_shanghai() -> None:
    utc_now = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    got = parse_datetime("下午三点", utc_now)
    assert got is not None and got.start == _local("2026-11-22 15:00")
    late = datetime(2026, 11, 22, 17, 0, tzinfo=UTC)  # already 01:00 on the 23rd
    assert parse_datetime("明天", late).start == _local("2026-11-24 00:00")


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        parse_datetime("明天", datetime(2026, 11, 22, 10, 0))


def test_find_datetimes_returns_every_expression() -> None:
    text = "明天下午三点不行，改到周六9:00-11:30，或者下个月5号"
    got = find_datetimes(text, NOW)
    assert [t.text for t in got] == ["明天下午三点", "周六9:00-11:30", "下个月5号"]
    assert [t.precision for t in got] == [X, X, D]


_SOUP = "0123456789.-/:年月日号点时分半到至周星期礼拜天今明后上下午晚早一二三四五六七八九十两 "


@pytest.mark.parametrize(
    "text",
    [
        "9" * 100_000,
        "明天" * 50_000,
        "2月30日" * 20_000,
        "一" * 100_000,
        "1:" * 50_000,
        "".join(random.Random(7).choice(_SOUP) for _ in range(100_000)),
        "楼道的灯坏了" * 20_000,
    ],
    ids=["nines", "tomorrows", "impossible", "ones", "colons", "soup", "no-time"],
)
def test_hostile_input_returns_quickly(text: str) -> None:
    began = time.perf_counter()
    for _ in range(5):
        got = parse_datetime(text, NOW)
        assert got is None or text[got.span[0] : got.span[1]] == got.text
    assert (time.perf_counter() - began) / 5 < 0.05  # a few ms here; generous for loaded CI


def test_message_without_time_words_costs_microseconds() -> None:
    text = "楼道里的灯坏了，请尽快派人来修一下，谢谢"
    began = time.perf_counter()
    for _ in range(10_000):
        parse_datetime(text, NOW)
    assert (time.perf_counter() - began) / 10_000 < 20e-6  # ~1 µs measured


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_SOUP + "()的，ab", max_size=40))
def test_never_raises_and_spans_hold(text: str) -> None:
    for got in find_datetimes(text, NOW):
        assert text[got.span[0] : got.span[1]] == got.text
        assert got.end is None or got.end > got.start


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_SOUP + "傍晚凌晨夜里深清中零〇个钟头以之刻末底这本大昨前", max_size=30))
@example("八到十一:")  # found by a longer fuzz run: 「八」 before a range once passed the gate
def test_gate_covers_every_token(text: str) -> None:
    """The literal gate may only skip texts in which the token regex finds nothing."""
    if timeparse._GATE.search(text) is None:
        assert timeparse._TOKEN.search(text) is None
