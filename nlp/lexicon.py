"""Lexicon files and a fast multi-term matcher over normalized text.

Why no segmentation on the hot path: residents write without punctuation and with dialect
words that jieba splits unpredictably; substring matching of curated terms is both faster
(~10x) and easier to explain ("matched: 低保, 申请").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from nlp.normalize import DATA_DIR, normalize

LEXICON_DIR = DATA_DIR / "lexicon"
DEFAULT_WEIGHT = 1.0


@dataclass(frozen=True)
class Match:
    """One occurrence of a lexicon term in the normalized text."""

    start: int
    end: int
    term: str


def parse_lexicon_file(path: Path) -> dict[str, float]:
    """Read ``term[<TAB>weight]`` lines; ``#`` starts a comment; terms are normalized."""
    terms: dict[str, float] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        term = normalize(parts[0])
        weight = DEFAULT_WEIGHT
        if len(parts) > 1:
            try:
                weight = float(parts[-1])
            except ValueError:
                weight = DEFAULT_WEIGHT
        if term:
            # A term listed twice keeps its highest weight.
            terms[term] = max(weight, terms.get(term, 0.0))
    return terms


@dataclass(frozen=True)
class PatternRule:
    """A construction a term list cannot express (陪 + 我 + 去医院), worth ``weight``."""

    category: str
    weight: float
    pattern: re.Pattern[str]


def load_patterns(path: Path = DATA_DIR / "patterns.txt") -> list[PatternRule]:
    """``category<TAB>weight<TAB>regex`` lines of the pattern file."""
    rules: list[PatternRule] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        parts = raw.split("\t")
        if len(parts) == 3:
            rules.append(PatternRule(parts[0], float(parts[1]), re.compile(parts[2])))
    return rules


def load_category_lexicons(directory: Path = LEXICON_DIR) -> dict[str, dict[str, float]]:
    """All ``<category>.txt`` files of the lexicon folder, keyed by category id."""
    return {p.stem: parse_lexicon_file(p) for p in sorted(directory.glob("*.txt"))}


def merge_staff_terms(
    lexicons: dict[str, dict[str, float]],
    extra: Mapping[str, Iterable[str]] | None,
    removed: Mapping[str, Iterable[str]] | None,
    extra_weight: float,
) -> dict[str, dict[str, float]]:
    """Apply run-time staff additions/removals (unknown categories are ignored)."""
    merged = {cat: dict(terms) for cat, terms in lexicons.items()}
    for cat, words in (extra or {}).items():
        if cat not in merged:
            continue
        for word in words:
            term = normalize(str(word))
            if term:
                merged[cat][term] = max(extra_weight, merged[cat].get(term, 0.0))
    for cat, words in (removed or {}).items():
        if cat not in merged:
            continue
        for word in words:
            merged[cat].pop(normalize(str(word)), None)
    return merged


class TermMatcher:
    """Finds every lexicon term in a text, then drops terms nested inside longer matches.

    Terms are indexed by first character with their possible lengths, longest first, so a
    scan costs one dict lookup per character plus a few set lookups of slices.
    """

    def __init__(self, terms: Iterable[str]) -> None:
        self._terms = frozenset(t for t in terms if t)
        lengths: dict[str, set[int]] = {}
        for term in self._terms:
            lengths.setdefault(term[0], set()).add(len(term))
        # first character -> candidate term lengths, longest first
        self._lengths = {ch: tuple(sorted(ls, reverse=True)) for ch, ls in lengths.items()}

    def find(self, text: str) -> list[Match]:
        """Leftmost-longest, non-overlapping matches (forward maximum matching).

        A term nested in or overlapping an earlier longer match is dropped: 老年大学 hides
        老年, and 在家电视 yields 电视 after 一个人在家 rather than a spurious 家电.
        """
        lengths, terms = self._lengths, self._terms
        found: list[Match] = []
        i, n = 0, len(text)
        while i < n:
            for size in lengths.get(text[i], ()):
                if text[i : i + size] in terms:
                    found.append(Match(i, i + size, text[i : i + size]))
                    i += size
                    break
            else:
                i += 1
        return found
