"""Cold start of `linli serve` until /readyz answers 200, and its RSS after warm-up.

The database is migrated and seeded by `linli demo` first (a restart of a deployed
service, not its very first start); the first start also builds jieba's cache in the data
folder, so it is reported separately and the median is over the following ``runs``
starts. After each start, 25 residents onboard and send a need and confirm it over the
generic channel (150 signed requests) before RSS is read from /proc (or psutil).

Run: ``python bench/bench_coldstart.py [--quick] [--backend sqlite|postgres|both]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bench.bench_latency import CHANNEL, Bridge, Resident, _confirm_payload, onboard  # noqa: E402
from bench.common import (  # noqa: E402
    BENCH_SECRET,
    linli_env,
    markdown_table,
    median,
    parse_backends,
    rss_mb,
    run_demo,
    start_linli_serve,
    temp_database,
    wait_ready,
    workdir,
)

TARGET_READY_S = 2.0
TARGET_RSS_MB = 200.0


async def warm_up(base_url: str, users: int, seed: int) -> int:
    """Onboard ``users`` residents and let each send a need and confirm it; return 200s."""
    rng = random.Random(seed)
    ok = 0
    async with aiohttp.ClientSession() as session:
        bridge = Bridge(session, base_url)

        async def one(i: int) -> None:
            nonlocal ok
            resident = Resident(f"warm-{seed}-{i}")
            await onboard(bridge, resident, rng)
            status, replies = await bridge.send(resident.user_id, text="楼道里的灯坏了好几天了")
            ok += 4 + (status == 200)
            confirm = _confirm_payload(replies)
            if confirm:
                status, _ = await bridge.send(resident.user_id, button=confirm)
                ok += status == 200

        await asyncio.gather(*(one(i) for i in range(users)))
    return ok


async def run_coldstart(backend: str, *, runs: int = 3, warm_users: int = 25) -> dict[str, Any]:
    channels = json.dumps({CHANNEL: {"secret": BENCH_SECRET, "push_url": None}})
    ready: list[float] = []
    rss: list[float] = []
    rss_ready: list[float] = []
    warm_ok = 0
    with workdir("linli-bench-cold-") as tmp:
        async with temp_database(backend, tmp) as url:
            env = linli_env(url, tmp, LINLI_GENERIC_CHANNELS=channels)
            await asyncio.to_thread(run_demo, env)
            for attempt in range(runs + 1):  # attempt 0 builds the jieba cache
                server = start_linli_serve(env, tmp / f"server-{attempt}.log")
                try:
                    ready.append(await wait_ready(server))
                    rss_ready.append(rss_mb(server.pid))
                    warm_ok += await warm_up(server.base_url, warm_users, seed=attempt)
                    await asyncio.sleep(0.2)
                    rss.append(rss_mb(server.pid))
                finally:
                    server.stop()
    return {
        "backend": backend,
        "first_ready_s": ready[0],
        "ready_s": median(ready[1:]),
        "ready_all_s": ready,
        "rss_ready_mb": median(rss_ready[1:]),
        "rss_mb": median(rss[1:]),
        "rss_all_mb": rss,
        "warm_requests_ok": warm_ok,
        "warm_requests": (runs + 1) * warm_users * 6,
    }


async def run(backends: list[str], *, quick: bool = False) -> list[dict[str, Any]]:
    params = {"runs": 1, "warm_users": 3} if quick else {}
    return [await run_coldstart(backend, **params) for backend in backends]


def table(rows: list[dict[str, Any]]) -> str:
    headers = [
        "backend",
        "first start s",
        "ready s (median)",
        f"≤ {TARGET_READY_S:.0f} s",
        "RSS at ready MB",
        "RSS after warm-up MB",
        f"≤ {TARGET_RSS_MB:.0f} MB",
    ]
    return markdown_table(
        headers,
        [
            [
                r["backend"],
                round(r["first_ready_s"], 2),
                round(r["ready_s"], 2),
                "yes" if r["ready_s"] <= TARGET_READY_S else "**no**",
                r["rss_ready_mb"],
                r["rss_mb"],
                "yes" if r["rss_mb"] <= TARGET_RSS_MB else "**no**",
            ]
            for r in rows
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 start, 3 warm-up residents")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    rows = asyncio.run(run(parse_backends(args.backend), quick=args.quick))
    print("`linli serve` cold start to /readyz 200, and RSS (median of the starts after the first)")
    print(table(rows))
    for r in rows:
        print(
            f"({r['backend']}: all starts {[round(x, 2) for x in r['ready_all_s']]} s, "
            f"RSS {[round(x) for x in r['rss_all_mb']]} MB)"
        )


if __name__ == "__main__":
    main()
