"""Shared fixtures of the NLP tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp.classifier import Classifier

# The shared folder sits beside the repository root (…/shared next to …/main).
DEV_SET = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "dev.jsonl"
OWN_SAMPLES = Path(__file__).resolve().parent / "own_samples.jsonl"


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    return Classifier()
