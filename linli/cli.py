"""The ``linli`` command line (interfaces.md §1)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from linli.settings import Settings

app = typer.Typer(help="Linli 邻里: community participation chat bot", no_args_is_help=True)
nlp_app = typer.Typer(help="Classifier tools")
staff_app = typer.Typer(help="Dashboard accounts")
import_app = typer.Typer(help="Bulk imports")
app.add_typer(nlp_app, name="nlp")
app.add_typer(staff_app, name="staff")
app.add_typer(import_app, name="import")


def _settings() -> Settings:
    return Settings()


async def _with_db(settings: Settings, work):  # type: ignore[no-untyped-def]
    from storage.db import create_engine, create_session_factory, transaction
    from storage.migrate import upgrade

    engine = create_engine(settings.resolved_database_url)
    try:
        await upgrade(engine)
        async with transaction(create_session_factory(engine)) as session:
            return await work(session)
    finally:
        await engine.dispose()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="load the demo data set first")] = False,
) -> None:
    """Run everything in one process: web chat, dashboard, webhooks, bot, workers."""
    import uvicorn

    from linli.logging_setup import configure_logging
    from web.app import create_app

    settings = _settings()
    configure_logging(settings.log_level, settings.log_json)
    if demo:
        _demo(settings)
    host = host or settings.host
    port = port or settings.port
    typer.echo(f"邻里 Linli: 居民聊天 http://{host}:{port}/  ·  工作台 http://{host}:{port}/staff")
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, access_log=False)


def _demo(settings: Settings) -> None:
    from community.demo import load_demo

    result = asyncio.run(_with_db(settings, load_demo))
    typer.echo(f"demo data loaded ({result.created_orgs} organizations created)")
    if result.logins:
        lines = [f"{user}\t{password}\t{what}" for user, password, what in result.logins]
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        saved = settings.data_dir / "demo-logins.txt"
        with saved.open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        saved.chmod(0o600)
        typer.echo("dashboard logins (username, one-time password, for):")
        for line in lines:
            typer.echo("  " + line)
        typer.echo(f"(also saved in {saved})")
    else:
        typer.echo(f"demo logins were created before; see {settings.data_dir / 'demo-logins.txt'}")


@app.command()
def demo() -> None:
    """Load the demo data set (running it twice changes nothing)."""
    _demo(_settings())


@app.command()
def migrate() -> None:
    """Bring the database schema to the newest revision."""
    from storage.db import create_engine
    from storage.migrate import head_revision, upgrade

    settings = _settings()
    engine = create_engine(settings.resolved_database_url)

    async def run() -> None:
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    typer.echo(f"database at revision {head_revision()}")


@app.command()
def classify(
    top: Annotated[int | None, typer.Option("--top", help="include K candidates")] = None,
) -> None:
    """Classify JSON Lines from stdin ({"id", "text"}) to stdout."""
    from nlp.commands import run_classify

    raise typer.Exit(run_classify(sys.stdin, sys.stdout, top))


@nlp_app.command("eval")
def nlp_eval(
    file: Annotated[Path | None, typer.Argument(help="labelled JSON Lines file")] = None,
    from_db: Annotated[
        bool, typer.Option("--from-db", help="score against staff category corrections")
    ] = False,
) -> None:
    """Score the classifier on a labelled file, or on the requests staff re-categorized."""
    from nlp.commands import run_eval

    if from_db:
        from community.keywords import current_classifier, reload_classifier
        from community.requests import corrected_requests
        from nlp import initialize
        from nlp.evaluate import evaluate, format_report

        async def work(session):  # type: ignore[no-untyped-def]
            await reload_classifier(session, force=True)
            return await corrected_requests(session)

        settings = _settings()
        initialize(settings.data_dir / "cache")
        records = asyncio.run(_with_db(settings, work))
        if not records:
            typer.echo("no staff corrections recorded yet")
            return
        typer.echo(f"{len(records)} request(s) re-categorized by staff")
        typer.echo(format_report(evaluate(records, current_classifier())))
        return
    if file is None:
        raise typer.BadParameter("give a FILE or --from-db")
    text, _ = run_eval(file)
    typer.echo(text)


keywords_app = typer.Typer(help="Staff changes to the classifier's keywords")
nlp_app.add_typer(keywords_app, name="keywords")


@keywords_app.command("list")
def keywords_list() -> None:
    """Show the staff additions and removals (the shipped lexicon is in nlp/data)."""
    from community.keywords import list_keywords

    rows = asyncio.run(_with_db(_settings(), list_keywords))
    for row in rows:
        typer.echo(f"{row.category}\t{row.action}\t{row.term}\t{row.created_by}")
    if not rows:
        typer.echo("no staff changes")


def _keyword_change(action: str, category: str, term: str) -> None:
    from community import keywords
    from community.audit import Actor
    from community.catalog import t
    from community.errors import DomainError

    change = {"add": keywords.add_keyword, "remove": keywords.remove_keyword}.get(action)

    async def work(session):  # type: ignore[no-untyped-def]
        if change is None:
            return await keywords.reset_keyword(session, category, term, Actor("cli"))
        await change(session, category, term, Actor("cli"))
        return True

    try:
        done = asyncio.run(_with_db(_settings(), work))
    except DomainError as exc:
        typer.echo(t(exc.key, **exc.params), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{action} {category} {term}: {'ok' if done else 'nothing to reset'}")


@keywords_app.command("add")
def keywords_add(category: str, term: str) -> None:
    """Make TERM count for CATEGORY (running services pick it up within 15 s)."""
    _keyword_change("add", category, term)


@keywords_app.command("remove")
def keywords_remove(category: str, term: str) -> None:
    """Stop a shipped TERM from counting for CATEGORY."""
    _keyword_change("remove", category, term)


@keywords_app.command("reset")
def keywords_reset(category: str, term: str) -> None:
    """Undo a staff change to TERM in CATEGORY."""
    _keyword_change("reset", category, term)


@staff_app.command("add")
def staff_add(
    name: str,
    role: Annotated[str, typer.Option(help="admin | staff | org")],
    community: Annotated[str | None, typer.Option(help="community name (staff)")] = None,
    org: Annotated[str | None, typer.Option(help="organization name (org)")] = None,
) -> None:
    """Create a dashboard login and print its one-time password."""
    from community.audit import Actor
    from community.errors import DomainError
    from community.orgs import community_id_by_name, organization_id_by_name
    from community.staff import create_staff

    async def work(session):  # type: ignore[no-untyped-def]
        community_id = org_id = None
        if community:
            community_id = await community_id_by_name(session, community)
            if community_id is None:
                raise typer.BadParameter(f"unknown community {community!r}")
        if org:
            org_id = await organization_id_by_name(session, org)
            if org_id is None:
                raise typer.BadParameter(f"unknown organization {org!r}")
        return await create_staff(
            session, name, role, community_id=community_id, org_id=org_id, actor=Actor("cli")
        )

    try:
        account, password = asyncio.run(_with_db(_settings(), work))
    except DomainError as exc:
        from community.catalog import t

        typer.echo(t(exc.key, **exc.params), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"created {account.username} ({account.role}); one-time password: {password}")


@import_app.command("orgs")
def import_orgs(file: Path) -> None:
    """Import organizations from CSV or XLSX; any bad row → nothing is imported."""
    from tqdm import tqdm

    from community.audit import Actor
    from community.org_import import ImportFileError, import_organizations, read_rows

    try:
        rows = read_rows(file)
    except (ImportFileError, OSError) as exc:
        typer.echo(f"cannot read {file}: {exc}", err=True)
        raise typer.Exit(2) from None

    async def work(session):  # type: ignore[no-untyped-def]
        with tqdm(
            total=len(rows), desc="importing", unit="org", disable=not sys.stderr.isatty()
        ) as bar:
            # Nothing is written unless every row is valid (see import_organizations).
            return await import_organizations(session, rows, Actor("cli", "import"), bar.update)

    report = asyncio.run(_with_db(_settings(), work))
    if report.errors:
        for line, problem in report.errors:
            typer.echo(f"line {line}: {problem}", err=True)
        typer.echo(f"nothing imported: {len(report.errors)} problem(s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"imported {report.imported} organization(s)")


def main() -> None:
    app()
