"""Schema migrations (Alembic) driven from code: ``linli migrate`` and ``serve`` start-up.

Alembic itself takes ~0.4 s to import, a fifth of the cold-start budget, so the common
case — the database is already at the newest revision — is answered with one query
against ``alembic_version`` and Alembic is imported only when there is work to do.
``SCHEMA_HEAD`` must name the newest revision (a test checks it against Alembic's view).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SCHEMA_HEAD = "0003"


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    """The newest revision according to Alembic's scripts (slow: imports Alembic)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The database's revision, or None for an empty database."""
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except DBAPIError:
        return None


async def is_current(engine: AsyncEngine) -> bool:
    return await current_revision(engine) == SCHEMA_HEAD


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the schema to head (one transaction); a no-op query when it already is."""
    if await is_current(engine):
        return
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))

    def _upgrade(connection) -> None:  # type: ignore[no-untyped-def]
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")

    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


def upgrade_sync(engine: AsyncEngine) -> None:
    asyncio.run(upgrade(engine))
