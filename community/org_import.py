"""Importing organizations from CSV or XLSX: validate every row, then all or nothing."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from community.audit import Actor
from community.orgs import OrgSpec, parse_org_row, upsert_organization
from storage.models import Community

COLUMNS = ("name", "type", "categories", "communities", "notify")


class ImportFileError(ValueError):
    """The file as a whole cannot be read (format, header)."""


@dataclass
class ImportReport:
    imported: int
    errors: list[tuple[int, str]]  # (line number, problem)


def read_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; line numbers as a person sees them (header = 1)."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        workbook = load_workbook(path, read_only=True, data_only=True)
        sheet = workbook.worksheets[0]
        raw = [
            ["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)
        ]
        workbook.close()
    elif suffix in {".csv", ".txt"}:
        text = path.read_bytes().decode("utf-8-sig")
        raw = list(csv.reader(io.StringIO(text)))
    else:
        raise ImportFileError(f"unsupported file type {suffix!r}: use .csv or .xlsx")
    if not raw:
        raise ImportFileError("the file is empty")
    header = [h.strip().lower() for h in raw[0]]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ImportFileError(f"missing columns: {', '.join(missing)}")
    rows = []
    for number, values in enumerate(raw[1:], start=2):
        if not any(v.strip() for v in values):
            continue
        rows.append(
            (number, {h: (values[i] if i < len(values) else "") for i, h in enumerate(header)})
        )
    return rows


async def import_organizations(
    session: AsyncSession, rows: list[tuple[int, dict[str, str]]], actor: Actor, progress=None
) -> ImportReport:
    """Validate all rows; import them only when none has an error (the caller commits)."""
    known = set(await session.scalars(select(Community.name)))
    specs: list[OrgSpec] = []
    errors: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        spec = parse_org_row(row, line, known)
        if spec.name in seen:
            spec.errors.append(f"duplicate name, first on line {seen[spec.name]}")
        seen.setdefault(spec.name, line)
        errors.extend((line, problem) for problem in spec.errors)
        specs.append(spec)
    if errors:
        return ImportReport(imported=0, errors=errors)
    for spec in specs:
        await upsert_organization(session, spec, actor)
        if progress is not None:
            progress(1)
    return ImportReport(imported=len(specs), errors=[])
