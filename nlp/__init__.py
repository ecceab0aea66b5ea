"""Linli NLP: routing classifier, emergency detection, extraction and PII masking.

Call ``initialize(cache_dir)`` once at start-up (before readiness turns true): it starts
jieba with our dictionaries (the classifier's word-boundary authority; its dictionary cache
is kept in ``cache_dir``) and builds the process-wide classifier, so that no request pays
for loading anything.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["initialize"]


def initialize(cache_dir: Path | None = None, *, segmenter: bool = True) -> None:
    """Start jieba (dictionary cache in ``cache_dir``) and warm the default classifier.

    ``segmenter`` is accepted for backward compatibility and ignored: classification needs
    jieba, so it is always started.
    """
    del segmenter
    from nlp import tokenizer
    from nlp.classifier import get_classifier

    tokenizer.initialize(cache_dir)
    get_classifier().classify("初始化")
