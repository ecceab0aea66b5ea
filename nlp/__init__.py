"""Linli NLP: routing classifier, emergency detection, extraction and PII masking.

Call ``initialize()`` once at start-up (before readiness turns true); it builds the
process-wide classifier so that no request pays for loading the lexicons.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["initialize"]


def initialize(cache_dir: Path | None = None, *, segmenter: bool = False) -> None:
    """Warm the default classifier; with ``segmenter=True`` also start jieba (~1 s).

    The classifier itself does not segment, so jieba is only started for features that
    call ``nlp.tokenizer.tokens``.
    """
    from nlp.classifier import get_classifier

    get_classifier().classify("初始化")
    if segmenter:
        from nlp import tokenizer

        tokenizer.initialize(cache_dir)
