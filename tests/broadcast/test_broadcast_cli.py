"""``linli broadcast status`` and ``list`` as staff use them (Typer's CliRunner)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from community.broadcasts import Audience, BroadcastFanout, start_broadcast
from community.catalog import t
from linli import cli_broadcast
from linli.cli_broadcast import broadcast_app
from storage.db import create_engine, create_session_factory, transaction
from storage.migrate import upgrade
from storage.models import OutboxMessage
from tests.broadcast.conftest import DAYTIME, add_communities, add_resident


async def _prepare(url: str, residents: int) -> int:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        factory = create_session_factory(engine)
        [home] = await add_communities(factory, "桂花社区")
        for _ in range(residents):
            await add_resident(factory, community_id=home)
        async with transaction(factory) as session:
            broadcast = await start_broadcast(
                session,
                kind="activity_published",
                text="【桂花社区】周六上午九点，社区广场义诊。",
                buttons=[],
                audience=Audience(community_ids=frozenset({home})),
                created_by="staff:7",
            )
        await BroadcastFanout(factory, clock=lambda: DAYTIME).run_once()
        return broadcast.id
    finally:
        await engine.dispose()


async def _mark(url: str, status: str, limit: int | None = None) -> None:
    engine = create_engine(url)
    try:
        table = OutboxMessage.__table__
        async with engine.begin() as conn:
            ids = (await conn.execute(select(table.c.id).order_by(table.c.id))).scalars()
            chosen = list(ids)[:limit]
            await conn.execute(update(table).where(table.c.id.in_(chosen)).values(status=status))
    finally:
        await engine.dispose()


@pytest.fixture
def runner(database_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("LINLI_DATABASE_URL", database_url)
    monkeypatch.setenv("LINLI_DATA_DIR", str(tmp_path / "data"))
    return CliRunner()


def test_status_list_and_follow(runner: CliRunner, database_url: str, monkeypatch) -> None:
    empty = runner.invoke(broadcast_app, ["list"])
    assert empty.exit_code == 0, empty.output
    assert t("broadcast.cli.none") in empty.stdout

    broadcast_id = asyncio.run(_prepare(database_url, 5))
    asyncio.run(_mark(database_url, "sent", limit=2))
    asyncio.run(_mark(database_url, "failed", limit=1))  # the first row again: 1 sent, 1 failed

    once = runner.invoke(broadcast_app, ["status", str(broadcast_id), "--no-follow"])
    assert once.exit_code == 0, once.output
    assert "共 5 人，已发送 1，待发送 3，失败 1" in once.stdout
    assert t("broadcast.status.sending") in once.stdout

    listed = runner.invoke(broadcast_app, ["list"])
    assert listed.exit_code == 0, listed.output
    assert f"#{broadcast_id}" in listed.stdout and "活动发布" in listed.stdout
    assert "5 人" in listed.stdout

    # Following: the bar is redrawn until nothing is pending any more.
    readings: list[int] = []
    real_read = cli_broadcast._read

    async def read(engine: Any, wanted: int | None) -> Any:
        readings.append(1)
        if len(readings) == 3:  # meanwhile the sender finishes the rest
            async with engine.begin() as conn:
                await conn.execute(
                    update(OutboxMessage.__table__)
                    .where(OutboxMessage.__table__.c.status == "pending")
                    .values(status="sent")
                )
        return await real_read(engine, wanted)

    monkeypatch.setattr(cli_broadcast, "_read", read)
    followed = runner.invoke(broadcast_app, ["status", "--interval", "0"])  # the newest
    assert followed.exit_code == 0, followed.output
    assert len(readings) == 3
    assert "共 5 人，已发送 4，待发送 0，失败 1" in followed.stdout
    assert f"群发 #{broadcast_id}" in followed.stderr  # the progress bar
    assert "5/5" in followed.stderr


def test_unknown_broadcast_is_a_clear_error(runner: CliRunner) -> None:
    result = runner.invoke(broadcast_app, ["status", "42"])
    assert result.exit_code == 1
    assert t("broadcast.error.not_found", id=42) in result.stderr
