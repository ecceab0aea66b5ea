"""Routing classifier: category, kind and emergency flag for one resident message.

Explainable by construction: the score of a category is the sum of the weights of the
lexicon terms found in the normalized text, and ``matched`` lists those terms. jieba is the
word-boundary authority: a short term that only occurs across two jieba words (家电 in
在家/电视) is not found (see ``nlp.lexicon.TermMatcher``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from nlp import tokenizer
from nlp.emergency import EmergencyResult, detect_normalized
from nlp.kind import decide_kind
from nlp.lexicon import (
    LOOSE_TERM_LEN,
    TermMatcher,
    load_category_lexicons,
    load_patterns,
    load_substring_safe,
    merge_staff_terms,
)
from nlp.normalize import normalize
from nlp.prefilter import LiteralGate, required_literals
from nlp.taxonomy import CATEGORIES, OTHER

log = logging.getLogger(__name__)

# A category needs at least this much evidence, otherwise the message goes to staff (other).
MIN_SCORE = 2.0
# Staff-added keywords are deliberate and specific: treat them as strong terms.
STAFF_WEIGHT = 4.0
# The category an emergency type points at gets this bonus (a gas leak is safety).
EMERGENCY_HINT_BONUS = 3.0
# Messages are clipped for matching: routing never needs more, and it bounds the cost.
MAX_CHARS = 2000
MIN_CANDIDATES = 3


@dataclass(frozen=True)
class Classification:
    """Result of classifying one message."""

    category: str
    kind: str
    emergency: bool
    emergency_services: tuple[str, ...]  # subset of ("110", "119", "120") fitting the danger
    confidence: float  # 0..1
    matched: tuple[str, ...]
    candidates: tuple[tuple[str, float], ...]  # categories with score > 0, best first


EMPTY = Classification(OTHER, "chitchat", False, (), 0.0, (), ())


class Classifier:
    """Lexicon classifier; immutable after construction, so safe to share across threads."""

    def __init__(
        self,
        extra_keywords: Mapping[str, Iterable[str]] | None = None,
        removed_keywords: Mapping[str, Iterable[str]] | None = None,
        *,
        segmenter: bool = True,
        loose_term_len: int | None = LOOSE_TERM_LEN,
        substring_safe: Iterable[str] | None = None,
    ) -> None:
        lexicons = merge_staff_terms(
            load_category_lexicons(), extra_keywords, removed_keywords, STAFF_WEIGHT
        )
        self._weights: dict[str, tuple[tuple[str, float], ...]] = {}
        by_term: dict[str, list[tuple[str, float]]] = {}
        for cat, terms in lexicons.items():
            if cat not in CATEGORIES:
                log.warning("lexicon file for unknown category %r ignored", cat)
                continue
            for term, weight in terms.items():
                by_term.setdefault(term, []).append((cat, weight))
        self._weights = {t: tuple(v) for t, v in by_term.items()}
        segment = None
        if segmenter:
            tokenizer.initialize()  # no-op after nlp.initialize(cache_dir)
            # Short staff keywords are arbitrated by jieba, so jieba must keep them whole.
            staff = [w for ws in (extra_keywords or {}).values() for w in ws if w is not None]
            staff = [w for w in map(str, staff) if len(w.strip()) < LOOSE_TERM_LEN]
            if staff:
                tokenizer.add_words(staff)
            segment = tokenizer.boundaries
        safe = load_substring_safe() if substring_safe is None else frozenset(substring_safe)
        max_strict = loose_term_len or MAX_CHARS + 1

        def loose(term: str) -> bool:
            return len(term) >= max_strict or term in safe

        self._matcher = TermMatcher(self._weights, segment, loose)
        self._patterns = tuple(p for p in load_patterns() if p.category in CATEGORIES)
        # each pattern with the strings one of which any of its matches contains
        self._filtered_patterns = tuple(
            (p, None if (lits := required_literals(p.pattern)) is None else tuple(sorted(lits)))
            for p in self._patterns
        )
        self._pattern_gate = LiteralGate([lits for _, lits in self._filtered_patterns])

    def scores(self, norm_text: str) -> tuple[dict[str, float], list[str]]:
        """Category scores and matched terms (text order, unique) for normalized text."""
        # Terms never cross a space (spaces separate clauses in chat: 没回家 电话 is not 家电);
        # the construction patterns run on the compact text, where voice input has
        # scattered spaces inside phrases (陪我 去医院).
        compact = norm_text.replace(" ", "")
        scores: dict[str, float] = {}
        matched: list[str] = []
        seen: set[str] = set()
        patterns = self._patterns
        for index in self._pattern_gate.candidates(compact):  # others cannot match
            rule = patterns[index]
            hit = rule.pattern.search(compact)
            if hit:
                scores[rule.category] = scores.get(rule.category, 0.0) + rule.weight
                matched.append(hit.group(0))
        weights = self._weights
        for term in self._matcher.terms(norm_text):
            if term in seen:
                continue  # repeating a word is not more evidence
            seen.add(term)
            matched.append(term)
            for cat, weight in weights[term]:
                scores[cat] = scores.get(cat, 0.0) + weight
        return scores, matched

    def classify(self, text: str) -> Classification:
        """Classify one message; never raises (falls back to ``other``/``chitchat``)."""
        try:
            return self._classify(text)
        except Exception:  # a router must answer even on a bug; log it for us
            log.exception("classification failed")
            return EMPTY

    def _classify(self, text: str) -> Classification:
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        raw = text[:MAX_CHARS]
        norm = normalize(raw)
        if not norm:
            return EMPTY
        scores, matched = self.scores(norm)
        alarm = detect_normalized(norm)
        if alarm.emergency and alarm.category_hint:
            hint = alarm.category_hint
            scores[hint] = scores.get(hint, 0.0) + EMERGENCY_HINT_BONUS
        ranked = sorted(
            ((c, s) for c, s in scores.items() if s > 0),
            key=lambda cs: (-cs[1], list(CATEGORIES).index(cs[0])),
        )
        category, confidence = _decide_category(ranked)
        kind = decide_kind(norm, raw, category, alarm.emergency)
        return Classification(
            category=category,
            kind=kind,
            emergency=alarm.emergency,
            emergency_services=alarm.services,
            confidence=confidence,
            matched=_merge_matched(matched, alarm),
            candidates=tuple((c, round(s, 3)) for c, s in ranked),
        )


def _decide_category(ranked: list[tuple[str, float]]) -> tuple[str, float]:
    """Top category and a confidence from its margin and absolute evidence."""
    if not ranked or ranked[0][1] < MIN_SCORE:
        return OTHER, 0.0
    top_cat, top = ranked[0]
    second = ranked[1][1] if len(ranked) > 1 else 0.0
    margin = top / (top + second)  # 0.5 .. 1
    evidence = min(1.0, top / 8.0)
    return top_cat, round(max(0.0, min(1.0, margin * (0.5 + 0.5 * evidence))), 3)


def _merge_matched(matched: list[str], alarm: EmergencyResult) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*matched, *alarm.matched]))


_default: Classifier | None = None
_default_lock = threading.Lock()


def get_classifier() -> Classifier:
    """Process-wide default classifier (built on first use; ``nlp.initialize`` warms it)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Classifier()
    return _default


def classify(text: str) -> Classification:
    """Classify with the process-wide default classifier."""
    return get_classifier().classify(text)
