"""Literal prefilters for cue regexes: skip a regex when none of its required strings occurs.

``required_literals(pattern)`` derives, from the parsed regex, a set of plain strings such
that every match contains at least one of them (着火|失火 -> {着火, 失火};
(煤气|燃气)(味|泄漏) -> {煤气, 燃气}), or None when no such set is known. ``str.__contains__``
on a 100-character message is far cheaper than an unanchored search whose pattern starts
with an alternation, so most searches that would fail are never run. The derivation is
conservative (anything it does not understand gives None: always search).
"""

from __future__ import annotations

import re

try:  # Python 3.11+
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older Pythons
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _p  # type: ignore[no-redef]

_MAX_LITERALS = 64


def required_literals(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """Strings one of which every match of ``pattern`` contains, or None if unknown."""
    if pattern.flags & (re.IGNORECASE | re.VERBOSE):
        return None
    try:
        parsed = _p.parse(pattern.pattern, pattern.flags)
    except Exception:  # pragma: no cover - compiled already, so parsable
        return None
    found = _sequence(list(parsed))
    if not found or "" in found:
        return None
    return frozenset(found)


def _sequence(items: list) -> set[str] | None:
    """Best necessary set of a sequence: runs of literals glued into strings."""
    best: set[str] | None = None
    run: list[str] = []

    def consider(cand: set[str] | None) -> None:
        nonlocal best
        if cand and "" not in cand and len(cand) <= _MAX_LITERALS:
            if best is None or _better(cand, best):
                best = cand

    for op, av in items:
        if op is _c.LITERAL:
            run.append(chr(av))
            continue
        if run:
            consider({"".join(run)})
            run = []
        if op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
            continue  # zero-width: needs nothing, breaks nothing
        consider(_item(op, av))
    if run:
        consider({"".join(run)})
    return best


def _better(a: set[str], b: set[str]) -> bool:
    """Prefer sets whose shortest string is longer, then fewer strings."""
    return (min(map(len, a)), -len(a)) > (min(map(len, b)), -len(b))


def _item(op, av) -> set[str] | None:
    if op is _c.SUBPATTERN:
        return _sequence(list(av[-1]))
    if op is _c.BRANCH:
        out: set[str] = set()
        for alt in av[1]:
            got = _sequence(list(alt))
            if not got:
                return None
            out |= got
        return out
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
        low, _high, sub = av
        return _sequence(list(sub)) if low >= 1 else None
    if op is _c.IN:
        chars: set[str] = set()
        for kind, val in av:
            if kind is not _c.LITERAL:
                return None
            chars.add(chr(val))
        return chars
    return None


def may_match(literals: frozenset[str] | None, text: str) -> bool:
    """False only when ``pattern`` certainly finds nothing in ``text``."""
    if literals is None:
        return True
    return any(s in text for s in literals)


class LiteralGate:
    """One pass over a message that tells which of many regexes may match it.

    Built from one literal set per regex (None = always run). Instead of testing every
    regex's literals one by one, the gate intersects the message's characters with the
    literals' first characters and tests only the literals that can start there; a regex
    is a candidate when any of its literals occurs. Exactly equivalent to calling
    ``may_match`` per regex, and ``candidates`` keeps the regexes' original order.
    """

    __slots__ = ("_always", "_first", "_heads", "_single")

    def __init__(self, literal_sets: list[frozenset[str] | tuple[str, ...] | None]) -> None:
        always: set[int] = set()
        single: dict[str, set[int]] = {}  # one-character literal -> regex indices
        longer: dict[str, dict[str, set[int]]] = {}  # first char -> literal -> indices
        for i, lits in enumerate(literal_sets):
            if lits is None:
                always.add(i)
                continue
            for lit in lits:
                if len(lit) == 1:
                    single.setdefault(lit, set()).add(i)
                else:
                    longer.setdefault(lit[0], {}).setdefault(lit, set()).add(i)
        self._always = frozenset(always)
        self._single = {ch: frozenset(ids) for ch, ids in single.items()}
        self._first = {
            ch: tuple((lit, frozenset(ids)) for lit, ids in sorted(d.items()))
            for ch, d in longer.items()
        }
        self._heads = frozenset(single) | frozenset(self._first)

    def candidates(self, text: str) -> list[int]:
        """Indices (ascending) of the regexes that may match ``text``."""
        found = set(self._always)
        single, first = self._single, self._first
        for ch in self._heads.intersection(text):
            ids = single.get(ch)
            if ids is not None:
                found |= ids
            for lit, ids in first.get(ch, ()):
                if lit in text:
                    found |= ids
        return sorted(found)
