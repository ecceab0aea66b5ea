"""The texts and payloads of the activity, points and notice dialogs: every key the code
names exists, every ``acts.`` text is used, and the payload prefixes are distinct."""

from __future__ import annotations

import re
from pathlib import Path

from bot import engine
from bot.dialogs import activities, interests, points
from community.catalog import has, section

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    ROOT / "bot" / "dialogs" / f"{name}.py" for name in ("activities", "points", "interests")
]
SOURCES.append(ROOT / "bot" / "dialogs" / "menu.py")
LITERAL = re.compile(r"""["']((?:acts|activities|timebank|bot)\.[a-z0-9_]+(?:\.[a-z0-9_]+)*)["']""")
BUILT = {"acts.redeem.status.": ("issued", "fulfilled", "cancelled")}  # f-string families


def _named() -> set[str]:
    return {key for path in SOURCES for key in LITERAL.findall(path.read_text(encoding="utf-8"))}


def test_named_keys_exist() -> None:
    named = _named()
    assert "acts.checkin.ask" in named and "timebank.insufficient" in named  # the scan works
    assert sorted(key for key in named if not has(key)) == []


def test_every_dialog_text_is_used() -> None:
    used = _named() | {prefix + rest for prefix, rests in BUILT.items() for rest in rests}
    unused = {f"acts.{k}" for k in section("acts")} - used
    assert not unused


def test_words_and_prefixes_do_not_collide() -> None:
    words = [activities.WORDS, points.WORDS, interests.WORDS]
    assert sum(len(w) for w in words) == len(engine.FEATURE_WORDS)  # no word taken twice
    ours = {p.partition(".")[0] for w in words for p in w.values()}
    taken_elsewhere = {"m", "rq", "rc", "ry", "ra", "rt", "oa", "od", "op", "or", "wl", "wv"}
    taken_elsewhere |= {"wk", "wf", "wc", "wn", "ww", "del", "ok", "no", "x", "back", "skip"}
    taken_elsewhere |= {"cf", "cc", "ca", "cs", "sc", "st", "cm"}
    assert not ours & taken_elsewhere
