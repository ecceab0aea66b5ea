"""The one seam over jieba: start-up, our community dictionary, deterministic tokens.

The classifier does not need segmentation on its hot path (see ``nlp.lexicon``); tokens are
for features that do (keyword suggestions for staff, search). jieba's start-up costs about
a second and ``add_word`` is not thread-safe, so everything happens once, under a lock.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from nlp.normalize import DATA_DIR

USER_DICT = DATA_DIR / "userdict.txt"
CACHE_FILE_NAME = "jieba.linli.cache"

_lock = threading.Lock()
_ready = False


def initialize(cache_dir: Path | None = None) -> None:
    """Load jieba with our dictionary once per process; later calls return immediately."""
    global _ready
    if _ready:
        return
    with _lock:
        if _ready:
            return
        import jieba  # imported lazily: it costs ~0.2 s and most commands never segment

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
        _ready = True


def is_initialized() -> bool:
    """Whether ``initialize`` has completed in this process."""
    return _ready


def tokens(text: str) -> list[str]:
    """Segment text into words (HMM off, so unknown words split the same way every time)."""
    if not text:
        return []
    initialize()
    import jieba

    return [t for t in jieba.lcut(text, HMM=False) if t.strip()]
