"""Text normalization so that lexicon matching sees one canonical spelling.

Residents write full-width digits, traditional characters, emoji, voice-to-text slips and
random spacing; the lexicons are written once, in simplified Chinese, lowercase ASCII.
Everything here is pure Python and table-driven (tables in ``nlp/data``).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"

# Emoji and pictographs: stripped for matching (they carry no routing signal we rely on).
_EMOJI_RE = re.compile(
    "["
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, symbols & pictographs ext.
    "\u2600-\u27bf"  # misc symbols, dingbats
    "\u2b00-\u2bff"  # arrows, stars
    "\ufe0e\ufe0f\u200d"  # variation selectors, zero-width joiner
    "\U000e0020-\U000e007f"  # tag characters (flag sequences)
    "]+"
)
_SPACE_RE = re.compile(r"\s+")


def _read_table_lines(name: str) -> list[str]:
    """Data lines of a table file, comments and blanks removed."""
    path = DATA_DIR / name
    lines: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if line.strip():
            lines.append(line)
    return lines


@lru_cache(maxsize=1)
def trad_to_simp_table() -> dict[int, str]:
    """Translation table traditional -> simplified, for ``str.translate``."""
    table: dict[int, str] = {}
    for line in _read_table_lines("trad2simp.txt"):
        for pair in line.split():
            if len(pair) == 2 and pair[0] != pair[1]:
                table[ord(pair[0])] = pair[1]
    return table


@lru_cache(maxsize=1)
def _typo_rules() -> tuple[re.Pattern[str], dict[str, str]]:
    """One alternation regex (longest first) plus the replacement map for typo fixes."""
    fixes: dict[str, str] = {}
    for line in _read_table_lines("typos.txt"):
        parts = line.split("\t")
        if len(parts) == 2 and parts[0] and parts[1]:
            fixes[parts[0]] = parts[1]
    ordered = sorted(fixes, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(w) for w in ordered)) if ordered else re.compile("$^")
    return pattern, fixes


def to_halfwidth(text: str) -> str:
    """Full-width ASCII forms and the ideographic space become their ASCII counterparts."""
    out = []
    for ch in text:
        code = ord(ch)
        if code == 0x3000:
            out.append(" ")
        elif 0xFF01 <= code <= 0xFF5E:
            out.append(chr(code - 0xFEE0))
        else:
            out.append(ch)
    return "".join(out)


def strip_emoji(text: str) -> str:
    """Remove emoji, replacing each run with a space so that words do not glue together."""
    return _EMOJI_RE.sub(" ", text)


def trad_to_simp(text: str) -> str:
    """Map common traditional characters to simplified ones."""
    return text.translate(trad_to_simp_table())


def fix_typos(text: str) -> str:
    """Fix well-known homophone slips (己经 -> 已经) listed in ``typos.txt``."""
    pattern, fixes = _typo_rules()
    return pattern.sub(lambda m: fixes[m.group(0)], text)


def collapse_spaces(text: str) -> str:
    """Any whitespace run becomes a single space; ends trimmed."""
    return _SPACE_RE.sub(" ", text).strip()


def normalize(text: str) -> str:
    """Canonical form used for all matching: half-width, simplified, lowercase, no emoji."""
    if not text:
        return ""
    # NFKC folds full-width ASCII, the ideographic space and other compatibility forms
    # (what ``to_halfwidth`` does, and more) before our own tables.
    text = unicodedata.normalize("NFKC", text)
    text = strip_emoji(text)
    text = trad_to_simp(text)
    text = text.lower()
    text = fix_typos(text)
    return collapse_spaces(text)
