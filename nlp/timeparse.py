"""Chinese dates and times in chat text, resolved to aware Asia/Shanghai datetimes.

Residents and organizers write 「明天下午三点」, 「周六9:00-11:30」, 「11.25」, 「半小时后」;
intake and activity creation need a datetime, and need to know whether only a day was given
so that the bot can ask 「几点?」. Rules that are choices, not facts:

* Hours without 上午/下午/…: the plausible day is 7:00–22:59, so 「3点」 is 15:00, 「9点」 is
  9:00 or 21:00 and 「0点」 or 「03:00」 (zero-padded, or 13–23) are taken literally. Without a
  date, the next plausible occurrence from ``now`` on (today or tomorrow) wins; with a date,
  the first plausible reading not before ``now`` on that day, else the earliest one.
* A weekday without 这/本/下/上 is its next occurrence; today counts only when a time or part
  of day is given that is still ahead. 这周三/本周三 is this Monday-based week's, even if past.
* A month-day without year that is before today means next year; a bare 25号 means the next
  25th (from today, or from the start of a range for its end).
* 「一点」 without date, part of day, minutes or 钟 is 「a bit」 (快一点), never 13:00.
* Recurrence (每周三) gives the next occurrence; lunar dates, 周末, 上旬, 过两天 are not parsed.

Only the first ``MAX_SCAN`` characters are read, so hostile input costs bounded time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

try:
    SHANGHAI: ZoneInfo | timezone = ZoneInfo("Asia/Shanghai")
except ZoneInfoNotFoundError:  # slim image without a tz database: China has no DST since 1991
    SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")

MAX_SCAN = 2000
# Every token below contains one of these: this one C-speed search lets most messages skip
# the token regex. test_gate_covers_every_token keeps the two in step.
_GATE = re.compile(r"[0-9０-９后月周期拜天日晚早夜晨号午点时]")
_WIDE = str.maketrans("０１２３４５６７８９：～－／．", "0123456789:~-/.")  # same length
_WIDE_RE = re.compile("[０-９：～－／．]")

_CN = "零〇一二两三四五六七八九十"
_D = "一二三四五六七八九"
_N = rf"(?:\d{{1,2}}|[{_CN}]{{1,3}})"
_MIN = rf"半|一刻|三刻|\d{{2}}分?|\d分|零[{_D}]分?|[一二三四五]?十[{_D}]?分?|[{_D}]分"
_SEP = r"到|至|~|-|—|–"
_NOT_DAY = r"[楼院房室栋单线门床位]"  # 5号楼, 1号线: numbers, not days
_UNITS = "%个元块米斤克升倍度公万千岁人次位楼栋层室分星"  # 3.15元: an amount, not a date
# Where a token may start (two characters): each try of the alternation costs about a
# microsecond, and 一/上/下/digits are in most Chinese messages (一下, 上门, 5号楼2单元).
_LEAD = (
    rf"\d[\d点时:月日号年天个小分周星礼半到至~\-—–./]"
    rf"|[{_CN}][{_CN}点时月日号个小分天周星礼半早到至~\-—–]"
    r"|[上下][午个周星礼月下]|中午|大后|后[天年]|前天|[今明昨][天日晚早夜晨年]|[本这][周月个星礼]"
    r"|早[上晨]|清早|傍晚|晚[上间]|夜[里间]|深夜|凌晨|半[个小夜]|月[底末]|周[一二三四五六日天1-7]"
    r"|星期|礼拜"
)
_TOKENS = [
    rf"(?P<dur>(?<![\d.])(?:(?P<dur_n>{_N})(?P<dur_half>个半)?|半)个?"
    r"(?P<dur_u>小时|钟头|分钟|天|周|星期|礼拜)(?:以后|之后|后))",
    r"(?P<ymd>(?<![\d.:/\-])(?P<ymd_y>\d{4})[-/.年](?P<ymd_m>\d{1,2})[-/.月]"
    r"(?P<ymd_d>\d{1,2})[日号]?(?!\d))",
    rf"(?P<cmd>(?:(?P<cmd_y>\d{{4}})年|(?P<cmd_yr>今年|明年|后年))?(?P<cmd_m>{_N})月份?"
    rf"(?P<cmd_d>{_N})(?:[日号](?!{_NOT_DAY})|(?![\d日号{_CN}])))",
    # 11.25, 12/1, 11-25; never 1.5 or 1/2 (decimals, fractions) nor 3.15元
    r"(?P<mdn>(?<![\d.:/\-])(?=\d\d|\d[./\-]\d\d)(?P<mdn_m>1[0-2]|0?[1-9])[./\-]"
    rf"(?P<mdn_d>3[01]|[12]\d|0?[1-9])(?![\d.:/\-]|\s*[点时天日号月年{_UNITS}]))",
    rf"(?P<mrel>(?P<mrel_w>下下个?|下个?|本|这个?|上个?)月"
    rf"(?:(?P<mrel_d>{_N})[日号]|(?P<mrel_end>[底末])))",
    r"(?P<eom>月[底末])",
    r"(?P<wd>(?P<wd_pre>下下个?|下个?|这个?|本|上个?)?(?:周|星期|礼拜)"
    r"(?P<wd_d>[一二三四五六日天1-7])(?![次回遍趟个]))",  # 每周三次 is a frequency
    r"(?P<rday>大后天|后天|明天|明日|今天|今日|昨天|前天|"
    r"今晚上?|明晚上?|昨晚上?|今早上?|明早上?|今夜|明晨)",
    rf"(?P<dom>(?<![\d.:/\-月第])(?P<dom_d>{_N})[日号](?!{_NOT_DAY}))",
    r"(?P<part>早上|早晨|清早|一早|上午|中午|下午|傍晚|晚上|晚间|夜里|夜间|半夜|深夜|凌晨)(?!好)",
    r"(?P<hm>(?<![\d.:])(?P<hm_h>\d{1,2}):(?P<hm_m>\d{2})(?![\d:]))",
    rf"(?P<clk>(?<![\d.第])(?P<clk_h>{_N})(?P<clk_u>点钟?|时)(?P<clk_m>{_MIN})?"
    rf"(?![\d%{_CN}]))",  # 三点五 is 3.5
    rf"(?P<hr>(?<![\d.第])(?P<hr_h>{_N})"  # 2到4点, 9-11:30
    rf"(?=\s*(?:{_SEP})\s*(?:{_N}\s*[点时]|\d{{1,2}}:\d\d)))",
]
_TOKEN = re.compile(f"(?={_LEAD})(?:{'|'.join(_TOKENS)})")
_RANGE = re.compile(rf"[\s的]{{0,3}}(?:{_SEP})[\s的]{{0,3}}")  # 3点到5点, 9:00 - 11:30
_GAP = re.compile(r"[\s的()（）]{0,3}")  # what may stand between parts of one expression
_DATE_KINDS = frozenset({"ymd", "cmd", "mdn", "mrel", "eom", "wd", "rday", "dom", "dur"})
_NOTED = frozenset({"ymd", "cmd", "mdn", "mrel", "dom"})  # dates a (周六) may follow
_CLOCK_KINDS = frozenset({"hm", "clk", "hr"})
_TIME_UNITS = frozenset({"小时", "钟头", "分钟"})
_NOT_A_TIME = frozenset("建意要问看想原注内理")  # 有三点建议, 两点意见


class Precision(StrEnum):
    """How much of the time the writer gave: ask 「几点?」 unless EXACT."""

    DAY = "day"  # 明天, 11月25日, 3天后: start is midnight
    PERIOD = "period"  # 明天下午: start is a typical hour of that part of the day
    EXACT = "exact"  # 明天下午3点, 半小时后


@dataclass(frozen=True, slots=True)
class TimeParse:
    """A resolved time expression; ``text == source[span[0]:span[1]]``."""

    start: datetime
    end: datetime | None  # only for a range (到, -, ~), always after start
    precision: Precision
    span: tuple[int, int]
    text: str

    @property
    def needs_clock(self) -> bool:
        """True when the bot should still ask what time (only a day or part of day given)."""
        return self.precision is not Precision.EXACT


# Part of day -> (rule for hours, typical hour when no clock is given, hour it is over).
_PARTS = {
    **dict.fromkeys(("早上", "早晨", "清早", "一早"), ("am", 8, 10)),
    "上午": ("am", 9, 12),
    "中午": ("noon", 12, 14),
    "下午": ("pm", 14, 18),
    "傍晚": ("pm", 17, 19),
    **dict.fromkeys(("晚上", "晚间"), ("eve", 19, 24)),
    **dict.fromkeys(("夜里", "夜间", "半夜", "深夜"), ("night", 22, 27)),
    "凌晨": ("dawn", 1, 6),
}
_RDAY = {"今": 0, "明": 1, "后": 2, "大": 3, "昨": -1, "前": -2}
_RDAY_PART = {"晚": "晚上", "早": "早上", "夜": "夜里", "晨": "早上"}  # 今晚, 明早, 今夜, 明晨
_WEEK = {d: i for i, d in enumerate("一二三四五六日")} | {str(i + 1): i for i in range(7)}
_WEEK["天"] = 6
_REL = {"下下": 2, "下": 1, "这": 0, "本": 0, "上": -1}
_QUARTER = {"半": 30, "一刻": 15, "三刻": 45}
_DIGIT = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}


def _num(s: str) -> int | None:
    """Arabic or Chinese numeral up to 99 (十五, 二十三, 三十, 零五); None if malformed."""
    if s.isdecimal():
        return int(s)
    head, ten, tail = s.partition("十")
    if not ten:
        return _DIGIT.get(s[-1]) if len(s) == 1 or s[:-1] == "零" else None
    tens = _DIGIT.get(head, -99) if head else 1
    ones = _DIGIT.get(tail, -99) if tail else 0
    return tens * 10 + ones if tens > 0 and ones >= 0 else None


def _ymd(y: int, m: int | None, d: int | None) -> date | None:
    """The date, or None for 2月30日 and friends."""
    try:
        return date(y, m, d) if m and d else None
    except ValueError:
        return None


def _month(d: date, n: int) -> tuple[int, int]:
    """(year, month) ``n`` months after ``d``'s month."""
    k = d.year * 12 + d.month - 1 + n
    return k // 12, k % 12 + 1


def _date(m: re.Match[str], today: date, ref: date) -> tuple[date | None, bool]:
    """The day a date token names, and whether it is a bare weekday falling on today."""
    g, kind = m.group, m.lastgroup
    if kind == "rday":
        return today + timedelta(days=_RDAY[g("rday")[0]]), False
    if kind == "dur":  # 3天后, 两周后
        n = _num(g("dur_n") or "")
        if n is None or g("dur_half"):
            return None, False
        return today + timedelta(days=n if g("dur_u") == "天" else 7 * n), False
    if kind == "wd":
        wd, pre = _WEEK[g("wd_d")], g("wd_pre")
        if pre is None:
            got = today + timedelta(days=(wd - today.weekday()) % 7)
            return got, got == today
        monday = today - timedelta(days=today.weekday())
        return monday + timedelta(days=7 * _REL[pre.rstrip("个")] + wd), False
    if kind == "ymd":
        return _ymd(int(g("ymd_y")), int(g("ymd_m")), int(g("ymd_d"))), False
    if kind in ("cmd", "mdn"):
        if kind == "mdn":
            mo, d = int(g("mdn_m")), int(g("mdn_d"))
        else:
            mo, d = _num(g("cmd_m")), _num(g("cmd_d"))
            if g("cmd_y") or g("cmd_yr"):
                y = int(g("cmd_y")) if g("cmd_y") else today.year + "今明后".index(g("cmd_yr")[0])
                return _ymd(y, mo, d), False
        got = _ymd(ref.year, mo, d)  # no year: this year's, unless already past
        return (got if got and got >= ref else _ymd(ref.year + 1, mo, d)), False
    if kind in ("mrel", "eom"):
        y, mo = _month(today, _REL[(g("mrel_w") or "这").rstrip("个")])
        if kind == "eom" or g("mrel_end"):
            return date(*_month(date(y, mo, 1), 1), 1) - timedelta(days=1), False
        return _ymd(y, mo, _num(g("mrel_d"))), False
    d = _num(g("dom_d"))  # dom: the next such day of a month, from ref (31号 may skip one)
    days = (_ymd(*_month(ref, k), d) for k in range(3))
    return next((x for x in days if x and x >= ref), None), False


def _clock(m: re.Match[str], has_context: bool) -> tuple[int, int, bool] | None:
    """(hour, minute, literal) of a clock token; literal means no 12-hour reading applies."""
    g = m.group
    if m.lastgroup == "hm":
        h, mi = int(g("hm_h")), int(g("hm_m"))
        literal = g("hm_h").startswith("0") or h == 0 or h > 12
    else:
        raw, word = g("clk_h") or g("hr_h"), g("clk_m")
        h = _num(raw)
        mi = _QUARTER.get(word) if word in _QUARTER else _num(word.rstrip("分")) if word else 0
        if m.lastgroup == "clk" and not (has_context or word or "钟" in g("clk_u")):
            if raw == "一" or m.string[m.end() : m.end() + 1] in _NOT_A_TIME:
                return None  # 快一点, 有三点建议
        literal = h is not None and (h == 0 or h > 12)
    if h is None or mi is None or h > 24 or mi > 59 or (h == 24 and mi):
        return None
    return h, mi, literal


def _with_part(rule: str, h: int) -> int | None:
    """Hour of the day (24+ is after midnight) for 下午3点 and the like; None if absurd."""
    if rule == "am":
        return h if h <= 12 else None
    if rule == "noon":
        return h + 12 if 1 <= h <= 3 else h if 11 <= h <= 15 else None
    if rule == "pm":
        return h + 12 if 1 <= h <= 11 else h if 12 <= h <= 23 else None
    if rule in ("eve", "night"):  # 晚上1点 and 半夜2点 are after midnight
        if h in (0, 12, 24):
            return 24
        if h <= (4 if rule == "eve" else 6):
            return h + 24
        return h + 12 if h < 12 else h if h >= 17 else None
    return 0 if h == 12 else h if h <= 6 else None  # dawn


def _readings(clock: tuple[int, int, bool], part: str | None) -> list[int]:
    """Candidate minutes after midnight, earliest first."""
    h, mi, literal = clock
    if part:
        hour = _with_part(_PARTS[part][0], h)
        return [] if hour is None else [hour * 60 + mi]
    if literal or h == 24:
        return [h * 60 + mi]
    return [x * 60 + mi for x in (h, h + 12) if 7 <= x <= 22]


def _at(day: date, minutes: int) -> datetime:
    """Naive Shanghai wall time: China has no DST, so naive arithmetic is exact (and fast)."""
    days, minutes = divmod(minutes, 1440)  # 晚上12点 is minute 1440: midnight after ``day``
    at = datetime(day.year, day.month, day.day, minutes // 60, minutes % 60)
    return at + timedelta(days=days) if days else at


@dataclass(slots=True)
class _Expr:
    first: int  # index of the first character
    last: int  # index after the last character
    date: re.Match[str] | None = None
    part: str | None = None
    clock: re.Match[str] | None = None
    after: re.Match[str] | None = None  # 半小时后


def _take(toks: list[re.Match[str]], i: int, text: str) -> tuple[_Expr | None, int]:
    """Longest expression date? (weekday note)? part? clock? at token ``i``; next index."""
    first = toks[i]
    if first.lastgroup == "dur" and first.group("dur_u") in _TIME_UNITS:
        return _Expr(first.start(), first.end(), after=first), i + 1
    e = _Expr(first.start(), first.start())
    for slot in ("date", "note", "part", "clock"):
        if i == len(toks) or not (
            toks[i].start() == e.last or _GAP.fullmatch(text, e.last, toks[i].start())
        ):
            break
        tok, kind = toks[i], toks[i].lastgroup
        if slot == "date" and kind in _DATE_KINDS:
            e.date, e.part = tok, _RDAY_PART.get(tok.group()[1:2]) if kind == "rday" else None
        elif slot == "note" and kind == "wd" and e.date and e.date.lastgroup in _NOTED:
            pass  # 11月28日(周六): the weekday only restates the date
        elif slot == "part" and kind == "part" and e.part is None:
            e.part = tok.group()
        elif slot == "clock" and kind in _CLOCK_KINDS:
            e.clock = tok
        else:
            continue
        e.last, i = tok.end(), i + 1
    return (e, i) if e.last > e.first else (None, i + 1)


def _resolve(e: _Expr, now: datetime, ref: date | None = None) -> tuple[datetime, Precision] | None:
    """Start of an expression; ``ref`` (a range's start day) replaces today for rolling dates."""
    today = now.date()
    if e.after is not None:  # 半小时后, 一个半小时后, 10分钟后
        g = e.after.group
        n = _num(g("dur_n")) if g("dur_n") else 0
        if n is None:
            return None
        n += 0.5 if g("dur_half") or not g("dur_n") else 0
        return now + timedelta(minutes=n if g("dur_u") == "分钟" else 60 * n), Precision.EXACT
    days, roll = [today, today + timedelta(days=1)], True  # no date: today, else tomorrow
    if e.date is not None:
        day, roll = _date(e.date, today, ref or today)
        if day is None:
            return None
        days = [day, day + timedelta(days=7)] if roll else [day]
    if e.clock is None and e.part is None:
        return _at(days[roll], 0), Precision.DAY
    if e.clock is None:
        _, typical, over = _PARTS[e.part]
        return _at(days[roll and _at(days[0], 60 * over) <= now], 60 * typical), Precision.PERIOD
    clock = _clock(e.clock, e.date is not None or e.part is not None)
    readings = _readings(clock, e.part) if clock else []
    if not readings:
        return None
    times = (_at(d, r) for d in days for r in readings)
    return next((t for t in times if t >= now), _at(days[0], readings[0])), Precision.EXACT


def _resolve_end(e: _Expr, start: datetime, s: _Expr, now: datetime) -> datetime | None:
    """End of 「…到…」: inherits the start's day and part of day; None unless after start."""
    if e.date is not None:
        got = _resolve(e, now, ref=start.date())
        end = got[0] if got else None
        if end is None or end <= start or not (e.clock or e.part or end.date() > start.date()):
            return None
        return end
    clock = _clock(e.clock, True) if e.clock else None
    if clock is None:
        return None
    readings = _readings(clock, e.part or s.part) or ([] if e.part else _readings(clock, None))
    if not readings:
        return None
    # 晚上10点到12点, 晚上7点到凌晨1点: step past the start by half days (whole days when the
    # end names its own part of the day).
    end, step = _at(start.date(), readings[0] % 1440), timedelta(hours=24 if e.part else 12)
    for _ in range(2):
        end += step if end <= start else timedelta(0)
    return end if end > start else None


def iter_datetimes(text: str, now: datetime) -> Iterator[TimeParse]:
    """Every resolvable time expression in ``text``, left to right (see ``parse_datetime``)."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if not text or _GATE.search(text, 0, MAX_SCAN) is None:
        return
    source = text = text[:MAX_SCAN]
    if _WIDE_RE.search(text):
        text = text.translate(_WIDE)  # same length: spans stay valid in ``source``
    toks = list(_TOKEN.finditer(text))
    if not toks:
        return
    # Naive wall time (see _at), to the minute: 「10点」 said at 10:00:30 still means today.
    now = now.astimezone(SHANGHAI).replace(tzinfo=None, second=0, microsecond=0)
    i = 0
    while i < len(toks):
        e, i = _take(toks, i, text)
        if e is None:
            continue
        nxt, sep = None, _RANGE.match(text, e.last)
        if sep and i < len(toks) and toks[i].start() == sep.end():
            nxt, k = _take(toks, i, text)
            i = k if nxt else i
        got = _resolve(e, now)
        if got is None:
            continue  # 2月30日 (and its 「到…」): not a time; keep looking
        end = _resolve_end(nxt, got[0], e, now) if nxt and nxt.after is None else None
        last = nxt.last if end else e.last
        start, end = got[0].replace(tzinfo=SHANGHAI), end and end.replace(tzinfo=SHANGHAI)
        yield TimeParse(start, end, got[1], (e.first, last), source[e.first : last])


def parse_datetime(text: str, now: datetime) -> TimeParse | None:
    """The first date/time expression in ``text``, resolved against aware ``now``; else None.

    Impossible dates and hours (2月30日, 25点) are skipped, never raised; only a naive
    ``now`` raises ValueError (a programming error, not user input).
    """
    return next(iter_datetimes(text, now), None)
