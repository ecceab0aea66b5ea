"""Emergency detection: is life or property in immediate danger, and whom to call.

Rules live in ``nlp/data/emergency.txt``: weighted trigger regexes per danger type, plus
suppressors for negation (没着火), hypotheticals (万一着火), past or habitual events
(上次, 三天两头), drills and talks (消防演练, 防诈骗讲座) and resolved situations (火早灭了).
A type fires when its unsuppressed weight reaches ``FIRE_THRESHOLD``; a single strong
trigger is enough, weak ones need company (胸口疼 + 冷汗). Recall matters more than
precision here, so urgency words add weight to any type that already has a hit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from nlp.normalize import DATA_DIR, normalize
from nlp.prefilter import LiteralGate, required_literals

FIRE_THRESHOLD = 2.0
_CLAUSE_SPLIT = re.compile(r"[\s,.!?;:、,。!?;:…~]+")
_NEGATION_WINDOW = 3
_MAX_HITS_PER_LINE = 3


@dataclass(frozen=True)
class Trigger:
    """One weighted trigger regex of a danger type."""

    kind: str
    weight: float
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class Suppressor:
    """A context regex that cancels triggers of some types ("*" = all)."""

    kinds: frozenset[str]
    pattern: re.Pattern[str]

    def applies(self, kind: str) -> bool:
        return "*" in self.kinds or kind in self.kinds


@dataclass(frozen=True)
class EmergencyRules:
    """Parsed ``emergency.txt``."""

    triggers: tuple[Trigger, ...]
    urgency: re.Pattern[str] | None
    services: dict[str, tuple[str, ...]]
    category_hint: dict[str, str]
    negation: re.Pattern[str] | None
    message: tuple[Suppressor, ...]
    clause: tuple[Suppressor, ...]


@dataclass(frozen=True)
class EmergencyResult:
    """Outcome of detection: which danger types fired and which numbers fit them."""

    emergency: bool
    services: tuple[str, ...]
    kinds: tuple[str, ...]
    matched: tuple[str, ...]
    category_hint: str | None


NO_EMERGENCY = EmergencyResult(False, (), (), (), None)


def _alternation(patterns: list[str]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None


@lru_cache(maxsize=1)
def load_rules() -> EmergencyRules:
    """Parse the shipped rule file once per process."""
    section = ""
    triggers: list[Trigger] = []
    urgency: list[str] = []
    services: dict[str, tuple[str, ...]] = {}
    hints: dict[str, str] = {}
    negation: list[str] = []
    message: list[Suppressor] = []
    clause: list[Suppressor] = []
    text = (DATA_DIR / "emergency.txt").read_text(encoding="utf-8")
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or line.lstrip().startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        parts = line.split("\t")
        if section == "trigger" and len(parts) == 3:
            triggers.append(Trigger(parts[0], float(parts[1]), re.compile(parts[2])))
        elif section == "urgency":
            urgency.append(line)
        elif section == "services" and len(parts) == 3:
            services[parts[0]] = tuple(parts[1].split(","))
            hints[parts[0]] = parts[2]
        elif section == "negation":
            negation.append(line)
        elif section in ("message", "clause") and len(parts) == 2:
            sup = Suppressor(frozenset(parts[0].split(",")), re.compile(parts[1]))
            (message if section == "message" else clause).append(sup)
    return EmergencyRules(
        triggers=tuple(triggers),
        urgency=_alternation(urgency),
        services=services,
        category_hint=hints,
        negation=_alternation(negation),
        message=tuple(message),
        clause=tuple(clause),
    )


def _clause_start(text: str, pos: int) -> int:
    """Index where the clause containing ``pos`` begins."""
    start = 0
    for m in _CLAUSE_SPLIT.finditer(text, 0, pos):
        start = m.end()
    return start


def _suppressed(
    rules: EmergencyRules, kind: str, text: str, start: int, cache: dict[str, bool]
) -> bool:
    """True when the trigger at ``start`` is negated, hypothetical, past or a drill."""
    if rules.negation is not None:
        before = text[max(0, start - _NEGATION_WINDOW) : start]
        if rules.negation.search(before):
            return True
    if kind not in cache:  # message-wide context is the same for every hit of a type
        cache[kind] = any(s.applies(kind) and s.pattern.search(text) for s in rules.message)
    if cache[kind]:
        return True
    clause_text = text[_clause_start(text, start) : start]
    return any(sup.applies(kind) and sup.pattern.search(clause_text) for sup in rules.clause)


@lru_cache(maxsize=1)
def _filtered_triggers() -> tuple[tuple[Trigger, tuple[str, ...] | None], ...]:
    """Each trigger with the strings one of which any of its matches contains."""
    out = []
    for trig in load_rules().triggers:
        lits = required_literals(trig.pattern)
        out.append((trig, None if lits is None else tuple(sorted(lits))))
    return tuple(out)


@lru_cache(maxsize=1)
def _trigger_gate() -> tuple[tuple[Trigger, ...], LiteralGate]:
    """The triggers and one gate over all their literal prefilters."""
    filtered = _filtered_triggers()
    return tuple(t for t, _ in filtered), LiteralGate([lits for _, lits in filtered])


def detect_normalized(text: str) -> EmergencyResult:
    """Detect on already-normalized text (the classifier normalizes once)."""
    if not text:
        return NO_EMERGENCY
    rules = load_rules()
    scores: dict[str, float] = {}
    matched: dict[str, list[str]] = {}
    message_context: dict[str, bool] = {}
    triggers, gate = _trigger_gate()
    for index in gate.candidates(text):  # the others cannot match: skip their searches
        trig = triggers[index]
        seen: set[str] = set()
        for m in trig.pattern.finditer(text):
            hit = m.group(0)
            if hit in seen or _suppressed(rules, trig.kind, text, m.start(), message_context):
                continue
            # Distinct pieces of evidence add up (没回家 + 电话打不通 + 到处找).
            seen.add(hit)
            scores[trig.kind] = scores.get(trig.kind, 0.0) + trig.weight
            matched.setdefault(trig.kind, []).append(hit)
            if len(seen) >= _MAX_HITS_PER_LINE:
                break
    if not scores:
        return NO_EMERGENCY
    if rules.urgency is not None and rules.urgency.search(text):
        for kind in scores:
            scores[kind] += 1.0
    fired = sorted((k for k, s in scores.items() if s >= FIRE_THRESHOLD), key=lambda k: -scores[k])
    if not fired:
        return NO_EMERGENCY
    numbers = {n for k in fired for n in rules.services.get(k, ())}
    terms = [t for k in fired for t in matched[k]]
    return EmergencyResult(
        emergency=True,
        services=tuple(n for n in ("110", "119", "120") if n in numbers),
        kinds=tuple(fired),
        matched=tuple(dict.fromkeys(terms)),
        category_hint=rules.category_hint.get(fired[0]),
    )


def detect(text: str) -> EmergencyResult:
    """Detect an emergency in raw resident text."""
    return detect_normalized(normalize(text))
