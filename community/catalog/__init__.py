"""The one message catalog: every text a resident, organizer or staff member reads.

Texts live in TOML files beside this module (one per feature area, merged at import);
code refers to them by key. A duplicate key across files is a packaging error, caught at
load time rather than silently shadowing a text.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any


class CatalogError(RuntimeError):
    """Raised when the shipped catalog is inconsistent (duplicate or missing key)."""


@cache
def _texts() -> dict[str, str]:
    merged: dict[str, str] = {}
    folder = resources.files(__package__)
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".toml"):
            continue
        data = tomllib.loads(entry.read_text(encoding="utf-8"))
        for key, value in _flatten(data):
            if key in merged:
                raise CatalogError(f"duplicate catalog key {key!r} in {entry.name}")
            merged[key] = value
    return merged


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            out.extend(_flatten(value, full + "."))
        else:
            out.append((full, str(value)))
    return out


def t(key: str, /, **kwargs: object) -> str:
    """Return the catalog text for ``key``, formatted with ``kwargs``."""
    try:
        template = _texts()[key]
    except KeyError as exc:
        raise CatalogError(f"missing catalog key {key!r}") from exc
    return template.format(**kwargs) if kwargs else template


def has(key: str) -> bool:
    return key in _texts()


def section(prefix: str) -> dict[str, str]:
    """All texts under ``prefix.`` keyed by the rest of the key (for templates)."""
    cut = len(prefix) + 1
    return {k[cut:]: v for k, v in _texts().items() if k.startswith(prefix + ".")}
