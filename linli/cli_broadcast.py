"""``linli broadcast``: how far a broadcast got (a progress bar that follows it) and the list.

Registered in linli/cli.py with ``app.add_typer(broadcast_app, name="broadcast")``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated, Any

import typer

from linli.settings import Settings

broadcast_app = typer.Typer(help="Broadcasts: progress and history", no_args_is_help=True)


async def _open(settings: Settings) -> Any:
    from storage.db import create_engine
    from storage.migrate import upgrade

    engine = create_engine(settings.resolved_database_url)
    await upgrade(engine)
    return engine


async def _read(engine: Any, broadcast_id: int | None) -> Any:
    """Progress of ``broadcast_id`` (the newest broadcast when None; None when there is none)."""
    from community.broadcasts import broadcast_progress, list_broadcasts
    from storage.db import create_session_factory

    async with create_session_factory(engine)() as session:
        if broadcast_id is None:
            newest = await list_broadcasts(session, limit=1)
            if not newest:
                return None
            broadcast_id = newest[0].id
        return await broadcast_progress(session, broadcast_id)


def _counts_line(progress: Any) -> str:
    from community.catalog import t

    return t(
        "broadcast.cli.counts",
        id=progress.broadcast_id,
        status=t(f"broadcast.status.{progress.status}"),
        total=progress.total,
        sent=progress.sent,
        pending=progress.pending,
        failed=progress.failed,
        gone=progress.gone,
        cancelled=progress.cancelled,
    )


async def _status(broadcast_id: int | None, follow: bool, interval: float) -> int:
    from tqdm import tqdm

    from community.catalog import t
    from community.errors import DomainError

    engine = await _open(Settings())
    try:
        try:
            progress = await _read(engine, broadcast_id)
        except DomainError as exc:
            typer.echo(t(exc.key, **exc.params), err=True)
            return 1
        if progress is None:
            typer.echo(t("broadcast.cli.none"))
            return 0
        if follow and not progress.finished:
            bar = tqdm(
                total=progress.total,
                desc=t("broadcast.cli.bar", id=progress.broadcast_id),
                unit="",
                file=sys.stderr,
                dynamic_ncols=True,
            )
            with bar:
                while True:
                    bar.total = max(progress.total, 1)
                    bar.n = progress.total - progress.pending
                    bar.set_postfix(
                        sent=progress.sent, pending=progress.pending, failed=progress.failed
                    )
                    bar.refresh()
                    if progress.finished:
                        break
                    await asyncio.sleep(interval)
                    progress = await _read(engine, progress.broadcast_id)
        typer.echo(_counts_line(progress))
        return 0
    finally:
        await engine.dispose()


@broadcast_app.command("status")
def status(
    broadcast_id: Annotated[
        int | None, typer.Argument(help="broadcast number (default: the newest)")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="show a progress bar until it is done")
    ] = True,
    interval: Annotated[float, typer.Option(help="seconds between readings")] = 1.0,
) -> None:
    """Sent / pending / failed of a broadcast; follows a running one until it is done."""
    raise typer.Exit(asyncio.run(_status(broadcast_id, follow, interval)))


async def _list(limit: int) -> None:
    from community.broadcasts import list_broadcasts
    from community.catalog import t
    from community.clock import local
    from storage.db import create_session_factory

    engine = await _open(Settings())
    try:
        async with create_session_factory(engine)() as session:
            rows = await list_broadcasts(session, limit=limit)
        if not rows:
            typer.echo(t("broadcast.cli.none"))
        for row in rows:
            text = row.text.replace("\n", " ")
            typer.echo(
                t(
                    "broadcast.cli.row",
                    id=row.id,
                    created=local(row.created_at).strftime("%Y-%m-%d %H:%M"),
                    kind=t(f"broadcast.kind.{row.kind}"),
                    status=t(f"broadcast.status.{row.status}"),
                    total=row.total,
                    text=text if len(text) <= 24 else text[:23] + "…",
                )
            )
    finally:
        await engine.dispose()


@broadcast_app.command("list")
def list_(limit: Annotated[int, typer.Option(help="how many, newest first")] = 20) -> None:
    """The latest broadcasts: number, time, kind, status, recipients, text."""
    asyncio.run(_list(limit))
