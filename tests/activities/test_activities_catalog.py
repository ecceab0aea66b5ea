"""Every catalog key the activity code can raise or render exists (a typo is a crash)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from community.catalog import has, section, t

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    *sorted((ROOT / "community" / "activities").glob("*.py")),
    ROOT / "community" / "checkin.py",
    ROOT / "community" / "interests.py",
]
LITERAL = re.compile(r"""["'](activities\.[a-z0-9_]+(?:\.[a-z0-9_]+)+)["']""")


def _literal_keys() -> set[str]:
    return {key for path in SOURCES for key in LITERAL.findall(path.read_text(encoding="utf-8"))}


def test_sources_name_keys() -> None:
    keys = _literal_keys()
    assert "activities.error.bad_code" in keys and len(keys) > 40  # the scan itself works


@pytest.mark.parametrize("key", sorted(_literal_keys()))
def test_literal_key_exists(key: str) -> None:
    assert has(key), key


def test_key_families_built_at_run_time_exist() -> None:
    assert sorted(section("activities.weekday")) == [str(n) for n in range(7)]
    for mode in ("hourly", "fixed"):
        assert "5" in t(f"activities.points.{mode}", rate=5)
    for kind in ("24h", "1h"):
        assert "活动室" in t(
            f"activities.notice.remind_{kind}", title="x", when="y", place="活动室"
        )
