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

import array
import contextlib
import hashlib
import logging
import math
import os
import re
import struct
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nlp.normalize import DATA_DIR, normalize

USER_DICT = DATA_DIR / "userdict.txt"
CACHE_FILE_NAME = "jieba.linli.cache"  # jieba's own marshal cache of its main dictionary
SNAPSHOT_NAME = "jieba.linli.snapshot"  # our finished dictionary (main + community words)
_SNAPSHOT_FORMAT = 1
_MAGIC = b"LINLI-JIEBA\0"

log = logging.getLogger(__name__)
# Plain CJK words inside cue regexes (kind.txt, emergency triggers) that jieba should know.
# What jieba's ``re_eng`` matches: single ASCII letters and digits, glued into one token.
_ENG = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_PLAIN_WORD = re.compile(r"^[\u4e00-\u9fff]+$")

_lock = threading.Lock()
_ready = False
_jieba: Any = None  # the jieba module once started


def initialize(cache_dir: Path | None = None) -> None:
    """Start jieba with our dictionaries once per process; later calls return immediately.

    With ``cache_dir``, jieba's own dictionary cache lives there, and so does a snapshot of
    the finished dictionary (main + ours), which loads in about a quarter of the time of
    jieba's marshal cache (see ``_load_snapshot``).
    """
    global _ready, _jieba
    if _ready:
        return
    with _lock:
        if _ready:
            return
        import jieba

        jieba.setLogLevel(logging.WARNING)
        logging.getLogger("jieba").setLevel(logging.WARNING)
        snapshot: Path | None = None
        if cache_dir is not None:
            cache_dir = Path(cache_dir)
            cache_dir.mkdir(parents=True, exist_ok=True)
            jieba.dt.tmp_dir = str(cache_dir)
            jieba.dt.cache_file = CACHE_FILE_NAME
            snapshot = cache_dir / SNAPSHOT_NAME
        fingerprint = _fingerprint(jieba)
        if snapshot is None or not _load_snapshot(jieba.dt, snapshot, fingerprint):
            jieba.initialize()
            with USER_DICT.open("rb") as fh:  # jieba leaves a path it opened unclosed
                jieba.load_userdict(fh)
            _add_words(jieba.dt, domain_words())
            if snapshot is not None:
                _save_snapshot(jieba.dt, snapshot, fingerprint)
        _jieba = jieba
        _ready = True


def _fingerprint(jieba: Any) -> bytes:
    """Digest of everything the finished dictionary depends on (jieba and our data files)."""
    from nlp.lexicon import LEXICON_DIR

    digest = hashlib.sha256(f"{_SNAPSHOT_FORMAT}|{jieba.__version__}".encode())
    main = Path(jieba.__file__).resolve().parent / "dict.txt"
    with contextlib.suppress(OSError):
        st = main.stat()
        digest.update(f"|{st.st_size}|{st.st_mtime_ns}".encode())
    files = [USER_DICT, DATA_DIR / "kind.txt", DATA_DIR / "emergency.txt"]
    for path in [*files, *sorted(LEXICON_DIR.glob("*.txt"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.digest()


def _save_snapshot(dt: Any, path: Path, fingerprint: bytes) -> None:
    """Write jieba's prefix dictionary as words + int64 frequencies (no pickle, no code)."""
    try:
        words = "\n".join(dt.FREQ).encode("utf-8")
        freqs = array.array("q", dt.FREQ.values())
        head = _MAGIC + fingerprint + struct.pack("<qq", int(dt.total), len(words))
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(head + words + freqs.tobytes())
        os.replace(tmp, path)
    except (OSError, ValueError, OverflowError):
        log.warning("could not write the jieba snapshot %s", path, exc_info=True)


def _load_snapshot(dt: Any, path: Path, fingerprint: bytes) -> bool:
    """Install a snapshot written by ``_save_snapshot`` if it is current; False otherwise."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    start = len(_MAGIC) + len(fingerprint)
    if data[: len(_MAGIC)] != _MAGIC or data[len(_MAGIC) : start] != fingerprint:
        return False
    try:
        total, size = struct.unpack_from("<qq", data, start)
        body = start + 16
        words = data[body : body + size].decode("utf-8").split("\n")
        freqs = array.array("q")
        freqs.frombytes(data[body + size :])
        if len(words) != len(freqs):
            return False
        freq = dict(zip(words, freqs, strict=True))
    except (ValueError, UnicodeDecodeError, struct.error):
        return False
    with dt.lock:
        dt.FREQ, dt.total = freq, total
        dt.initialized = True
    for raw in USER_DICT.read_text(encoding="utf-8").splitlines():
        parts = raw.split()  # word freq tag, as jieba.load_userdict reads it
        if len(parts) == 3:
            dt.user_word_tag_tab[parts[0]] = parts[2]
    return True


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
    global _logp_key
    _logp_key = None  # counts change: ``boundaries`` rebuilds its log-frequency cache
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
    """Offsets in ``chunk`` where jieba puts a word boundary (0 and ``len(chunk)`` included).

    Exactly the cuts of ``jieba.cut(chunk, HMM=False)`` (a test checks it on thousands of
    chunks): jieba's blocks, its word graph over its dictionary and its best route by word
    frequency, computed in one fused pass (``_route``) instead of through the generator,
    DAG dict and regex layers of ``cut``, which cost about two thirds of the time.
    """
    initialize()
    dt = _jieba.dt
    freq, logtotal = dt.FREQ, math.log(dt.total)
    global _logp_key, _logp
    if _logp_key != (id(freq), dt.total):  # jieba's counts changed (add_word): start over
        _logp_key, _logp = (id(freq), dt.total), {}
    n = len(chunk)
    cuts = {0, n}
    pos = 0  # outside jieba's blocks every character is a token
    for block in _jieba.re_han_default.finditer(chunk):
        begin, end = block.span()
        cuts.update(range(pos, begin + 1))
        pos = end
        text = block.group()
        nxt = _route(text, freq, logtotal, _logp)
        x, size, glued = 0, end - begin, False
        while x < size:
            y = nxt[x]
            # jieba glues runs of single ASCII letters/digits into one token.
            single = y == x + 1 and text[x] in _ENG
            if not (single and glued):
                cuts.add(begin + x)
            glued = single
            x = y
    cuts.update(range(pos, n + 1))
    return frozenset(cuts)


# ln(freq) - ln(total) per dictionary fragment, filled on first use (see ``_route``);
# keyed by jieba's FREQ dict and total so that added words invalidate it.
_logp_key: tuple[int, int] | None = None
_logp: dict[str, float | None] = {}


def _route(
    text: str, freq: dict[str, int], logtotal: float, logp: dict[str, float | None] | None = None
) -> list[int]:
    """End (exclusive) of the best word starting at each offset: jieba's ``get_DAG`` and
    ``calc`` fused, with the same arithmetic and tie-break (the later end wins a tie).

    ``logp`` caches ``ln(f) - logtotal`` per fragment (None for a zero count); the sum
    ``(ln(f) - logtotal) + best`` is evaluated in the same order, so results are identical.
    """
    ln = math.log
    if logp is None:
        logp = {}
    n = len(text)
    best = [0.0] * (n + 1)
    nxt = list(range(1, n + 2))
    for idx in range(n - 1, -1, -1):
        top = None
        end = idx
        frag = text[idx]
        while end < n and frag in freq:
            try:
                lp = logp[frag]
            except KeyError:
                f = freq[frag]
                lp = logp[frag] = (ln(f) - logtotal) if f else None
            if lp is not None:
                score = lp + best[end + 1]
                if top is None or score >= top:
                    top, nxt[idx] = score, end + 1
            end += 1
            frag = text[idx : end + 1]
        if top is None:  # no dictionary word starts here: the character alone
            top = ln(freq.get(text[idx]) or 1) - logtotal + best[idx + 1]
            nxt[idx] = idx + 1
        best[idx] = top
    return nxt
