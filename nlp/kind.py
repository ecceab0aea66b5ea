"""Kind of a message (wish / need / suggestion / query / chitchat) from weighted cue regexes.

Cues live in ``nlp/data/kind.txt``. The decision is a simple argmax with a fixed tie order,
because the kinds overlap in form (a wish often ends with 吗) and explicit markers such as
微心愿 or 建议 should beat generic question particles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from nlp.normalize import DATA_DIR

# Tie order: more specific intents first.
KIND_PRIORITY: tuple[str, ...] = ("suggestion", "wish", "query", "need", "chitchat")
# Pictographs residents use to cheer or thank (checked on the raw text, emoji are
# stripped from the normalized text).
_POSITIVE_EMOJI = re.compile(
    "[\U0001f44d\U0001f44f\U0001f60a\U0001f604\U0001f603\U0001f601"
    "\U0001f389\U0001f38a\U0001f3b5\U0001f3b6\U0001f4aa\U0001f64f"
    "\U0001f339\U0001f338\u2764\U0001f31e\u2600\U0001f60d\U0001f917]"
)
_SHORT_CHITCHAT_LEN = 15
# Long messages that tell a personal situation are requests for help even when they end
# with a question (…怎么申请): a small bonus for need per this many characters.
_NARRATIVE_CHARS = 25


@dataclass(frozen=True)
class KindCue:
    """A weighted regex pointing at one kind."""

    kind: str
    weight: float
    pattern: re.Pattern[str]


@lru_cache(maxsize=1)
def load_cues() -> tuple[KindCue, ...]:
    """Parse ``kind.txt`` once per process."""
    cues: list[KindCue] = []
    for raw in (DATA_DIR / "kind.txt").read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        parts = raw.split("\t")
        if len(parts) == 3:
            cues.append(KindCue(parts[0], float(parts[1]), re.compile(parts[2])))
    return tuple(cues)


def kind_scores(norm_text: str, raw_text: str = "") -> dict[str, float]:
    """Summed cue weights per kind (each cue line counts once)."""
    scores = dict.fromkeys(KIND_PRIORITY, 0.0)
    for cue in load_cues():
        if cue.pattern.search(norm_text):
            scores[cue.kind] += cue.weight
    if raw_text and _POSITIVE_EMOJI.search(raw_text):
        scores["chitchat"] += 2.0
    scores["need"] += min(2, len(norm_text) // _NARRATIVE_CHARS)
    return scores


def decide_kind(norm_text: str, raw_text: str, category: str, emergency: bool) -> str:
    """Pick the kind; routable content without cues is a need, empty small talk is chitchat."""
    if emergency:
        return "need"
    scores = kind_scores(norm_text, raw_text)
    best = max(KIND_PRIORITY, key=lambda k: (scores[k], -KIND_PRIORITY.index(k)))
    if scores[best] > 0:
        return best
    if category == "other" and len(norm_text) <= _SHORT_CHITCHAT_LEN:
        return "chitchat"
    return "need"
