"""The optimized matcher and regex prefilters give exactly the former outputs."""

from __future__ import annotations

import itertools
import json

import pytest

from nlp import tokenizer
from nlp.emergency import detect_normalized, load_rules
from nlp.lexicon import _straddles
from nlp.normalize import normalize
from nlp.prefilter import required_literals
from tests.nlp.conftest import DEV_SET, OWN_SAMPLES


def _texts() -> list[str]:
    out = []
    for path in (DEV_SET, OWN_SAMPLES):
        if path.exists():
            out += [json.loads(x)["text"] for x in path.read_text("utf-8").splitlines() if x]
    return out


def _reference_terms(matcher, text: str) -> list[str]:
    """The former scan: lengths indexed by first character, clipped at the chunk end."""
    lengths: dict[str, set[int]] = {}
    for term in matcher._terms:
        lengths.setdefault(term[0], set()).add(len(term))
    order = {ch: sorted(ls, reverse=True) for ch, ls in lengths.items()}
    out: list[str] = []
    for chunk in text.split(" "):
        cuts, i, n = None, 0, len(chunk)
        while i < n:
            for size in order.get(chunk[i], ()):
                term = chunk[i : i + size]
                if term not in matcher._terms:
                    continue
                if size != n and term in matcher._strict:
                    cuts = cuts if cuts is not None else tokenizer.boundaries(chunk)
                    if _straddles(cuts, i, i + size):
                        continue
                out.append(term)
                i += size
                break
            else:
                i += 1
    return out


def test_matcher_equals_reference_scan(classifier):
    texts = _texts()
    if not texts:
        pytest.skip("no dev set")
    glued = [a.replace(" ", "") + b for a, b in itertools.pairwise(texts)]
    for text in texts + glued:
        norm = normalize(text)
        assert classifier._matcher.terms(norm) == _reference_terms(classifier._matcher, norm)


def test_prefilter_never_skips_a_match():
    texts = [normalize(t) for t in _texts()]
    for trig in load_rules().triggers:
        lits = required_literals(trig.pattern)
        for text in texts:
            if trig.pattern.search(text):
                assert lits is None or any(x in text for x in lits)
    assert detect_normalized(normalize("厨房着火了 快来人")).emergency


def test_literal_gate_equals_per_regex_prefilter():
    from nlp.prefilter import LiteralGate, may_match

    sets = [frozenset({"着火", "火"}), None, frozenset({"煤气", "燃气"}), frozenset({"吗"})]
    gate = LiteralGate(sets)
    texts = [normalize(t) for t in _texts()] + ["", "着火了", "燃气味 吗", "煤", "x"]
    for text in texts:
        want = [i for i, lits in enumerate(sets) if may_match(lits, text)]
        assert gate.candidates(text) == want
