"""The one seam over jieba: start-up, our community dictionary, deterministic tokens.

jieba is the word-boundary authority of the classifier (see ``nlp.lexicon.TermMatcher``):
a short lexicon term only counts where jieba's segmentation puts word boundaries around
it, so 家电 is not found in 在家电视 (在家/电视). For that, jieba knows our community
dictionary (``data/userdict.txt``) plus the short lexicon terms and the plain words of the
kind and emergency cues, so that our terms come out as single tokens (see ``domain_words``).

Start-up costs most of a second (jieba's main dictionary, read from a pickled cache in
``cache_dir`` when one is given) and ``add_word`` is not thread-safe, so loading happens
once, under a lock; segmentation itself is read-only and safe to share across threads.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nlp.normalize import DATA_DIR, normalize

USER_DICT = DATA_DIR / "userdict.txt"
CACHE_FILE_NAME = "jieba.linli.cache"
# Plain CJK words inside cue regexes (kind.txt, emergency triggers) that jieba should know.
_PLAIN_WORD = re.compile(r"^[\u4e00-\u9fff]+$")

_lock = threading.Lock()
_ready = False
_jieba: Any = None  # the jieba module once started


def initialize(cache_dir: Path | None = None) -> None:
    """Start jieba with our dictionaries once per process; later calls return immediately."""
    global _ready, _jieba
    if _ready:
        return
    with _lock:
        if _ready:
            return
        import jieba

        jieba.setLogLevel(logging.WARNING)
        logging.getLogger("jieba").setLevel(logging.WARNING)
        if cache_dir is not None:
            cache_dir = Path(cache_dir)
            cache_dir.mkdir(parents=True, exist_ok=True)
            jieba.dt.tmp_dir = str(cache_dir)
            jieba.dt.cache_file = CACHE_FILE_NAME
        jieba.initialize()
        with USER_DICT.open("rb") as fh:  # jieba leaves a path it opened unclosed
            jieba.load_userdict(fh)
        _add_words(jieba.dt, domain_words())
        _jieba = jieba
        _ready = True


def is_initialized() -> bool:
    """Whether ``initialize`` has completed in this process."""
    return _ready


def domain_words() -> list[str]:
    """Our words jieba must keep whole: the terms it arbitrates and the short cue words.

    Those are the lexicon terms shorter than ``LOOSE_TERM_LEN`` (longer ones match as
    substrings anyway) and the two-character plain words of the kind and emergency cues.
    Longer phrases are deliberately not added: measured on the dev set, a phrase term such
    as 灯全黑 steals its first character from a neighbour (路灯全黑 -> 路/灯全黑) and hides
    a real word; community compounds that are words live in ``userdict.txt`` instead.
    """
    from nlp.emergency import load_rules
    from nlp.kind import load_cues
    from nlp.lexicon import LOOSE_TERM_LEN, load_category_lexicons

    words: dict[str, None] = {}
    for terms in load_category_lexicons().values():
        words.update(dict.fromkeys(t for t in terms if len(t) < LOOSE_TERM_LEN))
    patterns = [c.pattern.pattern for c in load_cues()]
    patterns += [t.pattern.pattern for t in load_rules().triggers]
    for pattern in patterns:
        for piece in pattern.split("|"):
            if _PLAIN_WORD.match(piece) and len(piece) < LOOSE_TERM_LEN:
                words.setdefault(piece)
    return list(words)


def _add_words(dt: Any, words: Iterable[str]) -> None:
    """Make each word an entry of jieba tokenizer ``dt`` (caller holds the lock).

    Words jieba already knows keep their frequency; new ones get jieba's suggested
    frequency, just enough to stay whole, so they disturb its other choices little.
    """
    for word in words:
        if " " in word or len(word) < 2 or dt.FREQ.get(word):
            continue  # jieba cannot hold spaces; single characters are tokens anyway
        dt.add_word(word)


def add_words(words: Iterable[str]) -> None:
    """Teach jieba more words (staff keywords); starts jieba if needed."""
    initialize()
    cleaned = [normalize(str(w)).replace(" ", "") for w in words]
    with _lock:
        _add_words(_jieba.dt, [w for w in cleaned if w])


def tokens(text: str) -> list[str]:
    """Segment text into words (HMM off, so unknown words split the same way every time)."""
    if not text:
        return []
    initialize()
    return [t for t in _jieba.lcut(text, HMM=False) if t.strip()]


def boundaries(chunk: str) -> frozenset[int]:
    """Offsets in ``chunk`` where jieba puts a word boundary (0 and ``len(chunk)`` included)."""
    initialize()
    cuts = {0}
    pos = 0
    for tok in _jieba.cut(chunk, HMM=False):
        pos += len(tok)
        cuts.add(pos)
    return frozenset(cuts)
