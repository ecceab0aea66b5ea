"""Lexicon files and a fast multi-term matcher over normalized text, checked by jieba.

Terms are found by forward maximum matching (explainable: "matched: 低保, 申请"); jieba is
the word-boundary authority for short terms, which are the ones that match by accident
across words (家电 in 在家电视). Long terms and terms flagged ``substr`` in the lexicon
files match as substrings, because residents write without punctuation and jieba splits
rare compounds unpredictably (单元楼道 -> 单元楼/道).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path

from nlp.normalize import DATA_DIR, normalize

LEXICON_DIR = DATA_DIR / "lexicon"
DEFAULT_WEIGHT = 1.0
# Terms at least this long match as plain substrings; shorter ones must not straddle a
# jieba word boundary. Measured on the dev set and own samples (see tests/nlp): requiring
# alignment for longer terms too loses phrase terms (单元门, 出租屋) and fixes nothing.
LOOSE_TERM_LEN = 3
# Third column of a lexicon line: the term is substring-safe (matches across boundaries).
SUBSTRING_FLAG = "substr"


@dataclass(frozen=True)
class Match:
    """One occurrence of a lexicon term in the normalized text."""

    start: int
    end: int
    term: str


def _lexicon_lines(path: Path) -> list[list[str]]:
    """Fields of the data lines of a lexicon file (``#`` starts a comment)."""
    rows: list[list[str]] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            rows.append(line.split("\t") if "\t" in line else line.split())
    return rows


def parse_lexicon_file(path: Path) -> dict[str, float]:
    """Read ``term[<TAB>weight[<TAB>substr]]`` lines; terms are normalized."""
    terms: dict[str, float] = {}
    for parts in _lexicon_lines(path):
        term = normalize(parts[0])
        weight = DEFAULT_WEIGHT
        if len(parts) > 1:
            try:
                weight = float(parts[1])
            except ValueError:
                weight = DEFAULT_WEIGHT
        if term:
            # A term listed twice keeps its highest weight.
            terms[term] = max(weight, terms.get(term, 0.0))
    return terms


def load_substring_safe(directory: Path = LEXICON_DIR) -> frozenset[str]:
    """Terms flagged ``substr`` in any lexicon file (jieba splits them wrongly in context)."""
    return frozenset(
        normalize(parts[0])
        for path in sorted(directory.glob("*.txt"))
        for parts in _lexicon_lines(path)
        if len(parts) > 2 and parts[2].strip() == SUBSTRING_FLAG
    )


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
    """Finds lexicon terms in a text by forward maximum matching, checked against jieba.

    Terms are indexed by their first two characters with their possible lengths, longest
    first, so a scan costs one dict lookup per character, and a few set lookups of slices
    only where a term can start (most positions of a message start no term at all).

    With a ``segment`` function (``nlp.tokenizer.boundaries``), jieba is the word-boundary
    authority: a term counts only if it starts and ends on a token boundary (it is one
    token or a run of whole tokens), unless it is *loose* (long enough, or listed as
    substring-safe), because jieba splits rare long compounds unpredictably. Without
    ``segment`` every occurrence counts (plain substring matching). jieba only runs on a
    chunk where a strict term occurs and is not the whole chunk.
    """

    def __init__(
        self,
        terms: Iterable[str],
        segment: Callable[[str], AbstractSet[int]] | None = None,
        loose: Callable[[str], bool] | None = None,
    ) -> None:
        self._terms = frozenset(t for t in terms if t)
        singles = frozenset(t for t in self._terms if len(t) == 1)
        lengths: dict[str, set[int]] = {}
        for term in self._terms:
            if len(term) > 1:
                lengths.setdefault(term[:2], set()).add(len(term))
        for key, sizes in lengths.items():
            if key[0] in singles:
                sizes.add(1)
        # first two characters -> candidate term lengths, longest first
        self._by_prefix = {k: tuple(sorted(ls, reverse=True)) for k, ls in lengths.items()}
        self._singles = singles
        # first character -> lengths of the terms starting with it (see ``_scan``)
        first: dict[str, set[int]] = {}
        for term in self._terms:
            first.setdefault(term[0], set()).add(len(term))
        self._first_lengths = {ch: frozenset(ls) for ch, ls in first.items()}
        self._segment = segment
        self._strict = frozenset(t for t in self._terms if loose is None or not loose(t))

    def find(self, text: str) -> list[Match]:
        """Leftmost-longest, non-overlapping matches; terms never cross a space.

        A term nested in or overlapping an earlier longer match is dropped: 老年大学 hides
        老年. A strict term that straddles a jieba boundary is skipped (shorter terms at the
        same position are tried next): 在家电视 segments as 在家/电视, so 家电 is not there.
        """
        found: list[Match] = []
        pos = 0
        for chunk in text.split(" "):
            if chunk:
                for start, term in self._scan(chunk):
                    found.append(Match(pos + start, pos + start + len(term), term))
            pos += len(chunk) + 1
        return found

    def terms(self, text: str) -> list[str]:
        """The terms of ``find`` in text order (the classifier's fast path, no offsets)."""
        out: list[str] = []
        for chunk in text.split(" "):
            if chunk:
                out.extend(term for _, term in self._scan(chunk))
        return out

    def _scan(self, chunk: str) -> list[tuple[int, str]]:
        """(start, term) of the matches in one space-free chunk."""
        by_prefix, singles, terms = self._by_prefix, self._singles, self._terms
        strict, segment = self._strict, self._segment
        found: list[tuple[int, str]] = []
        cuts: AbstractSet[int] | None = None  # jieba boundaries, computed on first need
        i, n = 0, len(chunk)
        while i < n:
            sizes = by_prefix.get(chunk[i : i + 2])
            if sizes is None:
                if chunk[i] in singles:
                    sizes = (1,)
                else:
                    i += 1
                    continue
            for size in sizes:
                end = i + size
                if end > n:
                    continue
                term = chunk[i:end]
                if term not in terms:
                    continue
                # A term that is the whole chunk is whole tokens: no need to ask jieba.
                if size != n and segment is not None and term in strict:
                    if end == n and i and n in self._first_lengths[term[0]]:
                        # Compatibility with the former scan, which tried every length of
                        # a term starting with this character, clipped at the chunk end,
                        # and took a clipped length equal to the chunk length for "whole
                        # chunk": a term ending the chunk was then accepted unchecked.
                        found.append((i, term))
                        i = end
                        break

                    if cuts is None:
                        cuts = self._cuts(chunk)
                    if _straddles(cuts, i, end):
                        continue  # straddles a word boundary: not this word
                found.append((i, term))
                i = end
                break
            else:
                i += 1
        return found

    def _cuts(self, chunk: str) -> AbstractSet[int]:
        try:
            return self._segment(chunk)  # type: ignore[misc]
        except Exception:  # segmentation must not break routing: accept every boundary
            return range(len(chunk) + 1)


def _straddles(cuts: AbstractSet[int], start: int, end: int) -> bool:
    """True when ``start..end`` crosses a token boundary without being whole tokens.

    Whole tokens (路灯 in 路灯/坏了) and pieces inside one token (书法 in 书法课, 垃圾 in
    垃圾堆) are words of the text; 家电 in 在家/电视 starts inside one token and ends
    inside the next.
    """
    if start in cuts and end in cuts:
        return False
    return any(b in cuts for b in range(start + 1, end))
