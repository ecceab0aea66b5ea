"""Time-bank ledger throughput: postings per second through ``community.timebank``.

In-process, closed loop: ``workers`` tasks, each running its next posting (one
``storage.db.transaction``: savepoint, transaction row, entries, audit row, conditional
balance UPDATEs, commit) as soon as the last one committed. Scenarios, each on SQLite (temp
file) and PostgreSQL (throw-away database):

* ``mix``: half ``earn_points`` (community pool → a random resident of 200), half
  ``transfer_points`` of 1 point between random linked family members;
* ``hot``: every posting is ``earn_points`` into the *same* resident, so every transaction
  updates the same two rows (the community pool and that resident) — the contention case.

The daily transfer limit is lifted for the run (this measures postings, not refusals).
After each run the ledger is checked: zero-sum, cached balances equal the sums of entries.

Run: ``python bench/bench_ledger.py [--quick] [--backend sqlite|postgres|both]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker  # noqa: E402

from bench.common import (  # noqa: E402
    latency_summary,
    markdown_table,
    parse_backends,
    temp_database,
    workdir,
)
from community.timebank import earn_points, transfer_points  # noqa: E402
from storage.db import create_engine, create_session_factory, transaction  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import (  # noqa: E402
    Community,
    FamilyLink,
    LedgerAccount,
    LedgerEntry,
    Street,
    User,
)

RESIDENTS = 200
NO_LIMIT = 10**12


async def seed(factory: async_sessionmaker[AsyncSession]) -> list[int]:
    """One community, RESIDENTS residents linked in family pairs, each with 1,000 points."""
    async with transaction(factory) as session:
        street = Street(name="梅园街道")
        session.add(street)
        await session.flush()
        community = Community(street_id=street.id, name="桂花社区")
        session.add(community)
        await session.flush()
        users = [User(display_name=f"居民{i}", community_id=community.id) for i in range(RESIDENTS)]
        session.add_all(users)
        await session.flush()
        ids = [u.id for u in users]
        for a, b in zip(ids[::2], ids[1::2], strict=True):
            session.add_all(
                [FamilyLink(user_id=a, relative_id=b), FamilyLink(user_id=b, relative_id=a)]
            )
        for uid in ids:
            await earn_points(
                session, user_id=uid, amount=1000, key=f"seed:{uid}", reason="初始", actor="bench"
            )
    return ids


async def check_books(factory: async_sessionmaker[AsyncSession]) -> bool:
    async with factory() as session:
        total = await session.scalar(select(func.sum(LedgerAccount.balance)))
        drift = await session.scalar(
            select(func.count()).select_from(
                select(LedgerAccount.id)
                .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
                .group_by(LedgerAccount.id, LedgerAccount.balance)
                .having(func.sum(LedgerEntry.amount) != LedgerAccount.balance)
                .subquery()
            )
        )
    return total == 0 and drift == 0


async def closed_loop(
    factory: async_sessionmaker[AsyncSession],
    ids: list[int],
    scenario: str,
    *,
    workers: int,
    duration_s: float,
    warmup_s: float,
) -> dict[str, Any]:
    counter = itertools.count()
    rng = random.Random(7)
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()
    window_start, window_end = start + warmup_s, start + warmup_s + duration_s
    hot_user = ids[0]

    async def posting(session: AsyncSession, n: int) -> None:
        if scenario == "hot":
            user = hot_user
        elif n % 2:
            pair = rng.randrange(RESIDENTS // 2) * 2
            a, b = (ids[pair], ids[pair + 1]) if rng.random() < 0.5 else (ids[pair + 1], ids[pair])
            await transfer_points(
                session, from_user_id=a, to_user_id=b, amount=1, key=f"t:{n}", daily_limit=NO_LIMIT
            )
            return
        else:
            user = rng.choice(ids)
        await earn_points(
            session, user_id=user, amount=1, key=f"{scenario}:{n}", reason="志愿服务", actor="bench"
        )

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < window_end:
            n = next(counter)
            t0 = time.perf_counter()
            try:
                async with transaction(factory) as session:
                    await posting(session, n)
            except Exception:
                errors += 1
                continue
            t1 = time.perf_counter()
            if t0 >= window_start and t1 <= window_end:
                latencies.append(t1 - t0)

    async def sample_cpu() -> None:
        await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
        cpu.append(time.process_time())
        await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
        cpu.append(time.process_time())

    cpu: list[float] = []
    await asyncio.gather(sample_cpu(), *(worker() for _ in range(workers)))
    done = max(1, len(latencies))
    return {
        "postings_per_s": len(latencies) / duration_s,
        "cpu_ms": 1000 * (cpu[1] - cpu[0]) / done,
        "errors": errors,
        **latency_summary(latencies),
    }


async def run_backend(
    backend: str, scenarios: list[tuple[str, int]], *, duration_s: float, warmup_s: float
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with workdir("linli-bench-ledger-") as tmp:
        for scenario, workers in scenarios:
            async with temp_database(backend, tmp / scenario / str(workers)) as url:
                engine = create_engine(url)
                try:
                    await upgrade(engine)
                    factory = create_session_factory(engine)
                    ids = await seed(factory)
                    result = await closed_loop(
                        factory,
                        ids,
                        scenario,
                        workers=workers,
                        duration_s=duration_s,
                        warmup_s=warmup_s,
                    )
                    result["books_ok"] = await check_books(factory)
                finally:
                    await engine.dispose()
            rows.append({"backend": backend, "scenario": scenario, "workers": workers, **result})
    return rows


async def run(backends: list[str], *, quick: bool = False) -> list[dict[str, Any]]:
    scenarios = [("mix", 1), ("mix", 8), ("hot", 8)]
    duration_s, warmup_s = (1.0, 0.2) if quick else (8.0, 1.0)
    rows: list[dict[str, Any]] = []
    for backend in backends:
        rows += await run_backend(backend, scenarios, duration_s=duration_s, warmup_s=warmup_s)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    return markdown_table(
        [
            "scenario",
            "backend",
            "workers",
            "postings/s",
            "p50 ms",
            "p99 ms",
            "client CPU ms/posting",
            "errors",
            "books",
        ],
        [
            [
                r["scenario"],
                r["backend"],
                r["workers"],
                r["postings_per_s"],
                r["p50_ms"],
                r["p99_ms"],
                r["cpu_ms"],
                r["errors"],
                "ok" if r["books_ok"] else "**WRONG**",
            ]
            for r in rows
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    rows = asyncio.run(run(parse_backends(args.backend), quick=args.quick))
    print("## Time-bank ledger postings (in process, closed loop)\n")
    print(table(rows))


if __name__ == "__main__":
    main()
