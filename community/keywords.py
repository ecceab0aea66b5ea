"""Staff changes to the classifier's lexicon, effective without a restart.

The shipped lexicon stays in versioned files in ``nlp/data``; staff additions and removals
live in ``nlp_keywords`` and are passed to ``nlp.Classifier`` when it is (re)built. Every
change bumps the ``nlp_keywords`` counter, which each process polls, so all processes pick
a change up within one polling interval; the process that made the change rebuilds at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from community.audit import Actor, record_audit
from community.errors import DomainError
from community.numbering import next_value
from nlp.classifier import Classifier, get_classifier
from nlp.taxonomy import CATEGORIES
from storage.models import Counter, NlpKeyword

log = logging.getLogger(__name__)
VERSION_COUNTER = "nlp_keywords"
MAX_TERM = 32

_current: Classifier | None = None
_current_version: int = -1


def current_classifier() -> Classifier:
    """The classifier with the staff changes applied (the shipped one until loaded)."""
    return _current or get_classifier()


def _validate(category: str, term: str) -> str:
    term = (term or "").strip()
    if category not in CATEGORIES:
        raise DomainError("keywords.bad_category", category=category)
    if not term or len(term) > MAX_TERM or any(ch.isspace() for ch in term):
        raise DomainError("keywords.bad_term", limit=MAX_TERM)
    return term


async def list_keywords(session: AsyncSession) -> list[NlpKeyword]:
    return list(
        await session.scalars(
            select(NlpKeyword).order_by(NlpKeyword.category, NlpKeyword.action, NlpKeyword.term)
        )
    )


async def _set(session: AsyncSession, category: str, term: str, action: str, actor: Actor) -> None:
    term = _validate(category, term)
    row = await session.scalar(
        select(NlpKeyword).where(NlpKeyword.category == category, NlpKeyword.term == term)
    )
    if row is None:
        session.add(NlpKeyword(category=category, term=term, action=action, created_by=actor.label))
    else:
        row.action, row.created_by = action, actor.label
    record_audit(session, actor, f"keyword_{action}", f"{category}:{term}")
    await next_value(session, VERSION_COUNTER)


async def add_keyword(session: AsyncSession, category: str, term: str, actor: Actor) -> None:
    """Make ``term`` count for ``category`` (on top of the shipped lexicon)."""
    await _set(session, category, term, "add", actor)


async def remove_keyword(session: AsyncSession, category: str, term: str, actor: Actor) -> None:
    """Stop a shipped ``term`` from counting for ``category``."""
    await _set(session, category, term, "remove", actor)


async def reset_keyword(session: AsyncSession, category: str, term: str, actor: Actor) -> bool:
    """Forget a staff change: the shipped lexicon decides again. False if there was none."""
    term = _validate(category, term)
    result = await session.execute(
        delete(NlpKeyword).where(NlpKeyword.category == category, NlpKeyword.term == term)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    record_audit(session, actor, "keyword_reset", f"{category}:{term}")
    await next_value(session, VERSION_COUNTER)
    return True


async def overrides(session: AsyncSession) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    added: dict[str, list[str]] = defaultdict(list)
    removed: dict[str, list[str]] = defaultdict(list)
    for row in await list_keywords(session):
        (added if row.action == "add" else removed)[row.category].append(row.term)
    return dict(added), dict(removed)


async def keywords_version(session: AsyncSession) -> int:
    value = await session.scalar(select(Counter.value).where(Counter.name == VERSION_COUNTER))
    return int(value or 0)


async def reload_classifier(session: AsyncSession, *, force: bool = False) -> bool:
    """Rebuild the process's classifier when the staff changes moved on; True if rebuilt."""
    global _current, _current_version
    version = await keywords_version(session)
    if version == _current_version and not force:
        return False
    added, removed = await overrides(session)
    classifier = await asyncio.to_thread(Classifier, added or None, removed or None)
    _current, _current_version = classifier, version
    log.info("classifier rebuilt", extra={"keywords_version": version})
    return True
