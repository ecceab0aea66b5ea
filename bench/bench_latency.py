"""End-to-end latency of one generic-channel message at a fixed arrival rate (open loop).

Against the real app (`linli serve` in a subprocess, after `linli demo` seeded the data):
500 distinct residents first onboard through the signed generic webhook (consent, street,
community: buttons read from the replies), then messages arrive on a fixed schedule,
100/s for 20 s, round-robin over the residents: a need text (one of tests/nlp/own_samples),
and, when the last reply proposed a category, the 确认 tap. Each latency is measured from
the message's *scheduled* time to the end of its 200 (verify, store, classify, dialog
step, reply), so a stalled server cannot hide queueing (no coordinated omission).

Run: ``python bench/bench_latency.py [--quick] [--backend sqlite|postgres|both]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bench.common import (  # noqa: E402
    BENCH_SECRET,
    cpu_seconds,
    generic_body,
    latency_summary,
    linli_env,
    markdown_table,
    parse_backends,
    run_demo,
    signed_headers,
    start_linli_serve,
    temp_database,
    wait_ready,
    workdir,
)

TARGET_P99_MS = 50.0
CHANNEL = "bench"
SAMPLES = ROOT / "tests" / "nlp" / "own_samples.jsonl"
FALLBACK_TEXTS = (
    "楼道里的灯坏了好几天了，晚上黑漆漆的",
    "我家老人腿脚不方便，想请人每周来陪他聊聊天",
    "小区垃圾桶满了没人清",
    "想给楼下留守的小朋友要一个新书包",
    "建议在小区门口装个休息的长椅",
)


def need_texts() -> list[str]:
    """Realistic resident texts, emergencies left out (they alert duty staff)."""
    texts = []
    if SAMPLES.exists():
        for line in SAMPLES.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                if not item.get("emergency"):
                    texts.append(item["text"])
    return texts or list(FALLBACK_TEXTS)


@dataclass
class Resident:
    user_id: str
    pending_confirm: str | None = None  # the 确认 payload of the last proposal
    busy: bool = False


@dataclass
class Sample:
    kind: str
    latency_s: float
    status: int


@dataclass
class LatencyResult:
    samples: list[Sample] = field(default_factory=list)
    onboarding: list[float] = field(default_factory=list)
    late_sends: int = 0
    server_cpu_pct: float = 0.0

    def statuses(self) -> Counter[int]:
        return Counter(s.status for s in self.samples)


class Bridge:
    """Plays a messenger bridge on the generic channel: signs every message."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.url = f"{base_url}/webhooks/generic/{CHANNEL}"

    async def send(
        self, user: str, *, text: str | None = None, button: str | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        body = generic_body(user, text=text, button=button)
        async with self.session.post(
            self.url, data=body, headers=signed_headers(BENCH_SECRET, body)
        ) as response:
            raw = await response.read()
            if response.status != 200:
                return response.status, []
            return 200, json.loads(raw).get("replies", [])


def _buttons(replies: list[dict[str, Any]], prefix: str) -> list[dict[str, str]]:
    return [b for r in replies for b in r.get("buttons", []) if b["payload"].startswith(prefix)]


def _confirm_payload(replies: list[dict[str, Any]]) -> str | None:
    for reply in reversed(replies):
        for button in reply.get("buttons", []):
            if button["text"] == "确认":
                return button["payload"]
    return None


async def onboard(bridge: Bridge, resident: Resident, rng: random.Random) -> float:
    """Hello → consent → a street → a community, reading each button from the replies."""
    t0 = time.perf_counter()
    status, replies = await bridge.send(resident.user_id, text="你好")
    consent = [b for b in _buttons(replies, "ok") if b["payload"] == "ok"]
    if status != 200 or not consent:
        raise RuntimeError(f"onboarding: no consent button ({status}): {replies!r}")
    status, replies = await bridge.send(resident.user_id, button="ok")
    streets = _buttons(replies, "st.")
    if streets:
        status, replies = await bridge.send(resident.user_id, button=rng.choice(streets)["payload"])
    communities = _buttons(replies, "cm.")
    if status != 200 or not communities:
        raise RuntimeError(f"onboarding: no community button ({status}): {replies!r}")
    status, replies = await bridge.send(resident.user_id, button=rng.choice(communities)["payload"])
    if status != 200:
        raise RuntimeError(f"onboarding: community choice answered {status}")
    return time.perf_counter() - t0


async def open_loop(
    base_url: str,
    *,
    users: int,
    rate: float,
    duration_s: float,
    onboarding_concurrency: int = 20,
    server_pid: int | None = None,
    seed: int = 7,
) -> LatencyResult:
    rng = random.Random(seed)
    texts = need_texts()
    residents = [Resident(f"bench-{seed}-{i}") for i in range(users)]
    result = LatencyResult()
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        bridge = Bridge(session, base_url)

        gate = asyncio.Semaphore(onboarding_concurrency)

        async def onboard_one(resident: Resident) -> None:
            async with gate:
                result.onboarding.append(await onboard(bridge, resident, rng))

        await asyncio.gather(*(onboard_one(r) for r in residents))

        async def one(resident: Resident, scheduled: float) -> None:
            if resident.pending_confirm is not None:
                kind, kwargs = "confirm", {"button": resident.pending_confirm}
                resident.pending_confirm = None
            else:
                kind, kwargs = "need text", {"text": rng.choice(texts)}
            resident.busy = True
            try:
                status, replies = await bridge.send(resident.user_id, **kwargs)
            except (aiohttp.ClientError, TimeoutError):
                status, replies = -1, []
            finally:
                resident.busy = False
            result.samples.append(Sample(kind, time.perf_counter() - scheduled, status))
            if kind == "need text":
                resident.pending_confirm = _confirm_payload(replies)

        total = int(rate * duration_s)
        cpu0 = cpu_seconds(server_pid) if server_pid else 0.0
        start = time.perf_counter() + 0.05
        tasks = []
        for i in range(total):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.005:
                result.late_sends += 1
            resident = residents[i % users]
            if resident.busy:  # still waiting for this resident's last answer: next one
                resident = next((r for r in residents if not r.busy), resident)
            tasks.append(asyncio.create_task(one(resident, scheduled)))
        await asyncio.gather(*tasks)
        if server_pid:
            elapsed = time.perf_counter() - start
            result.server_cpu_pct = 100 * (cpu_seconds(server_pid) - cpu0) / elapsed
    return result


async def run_latency(
    backend: str, *, users: int = 500, rate: float = 100.0, duration_s: float = 20.0
) -> dict[str, Any]:
    channels = json.dumps({CHANNEL: {"secret": BENCH_SECRET, "push_url": None}})
    with workdir("linli-bench-lat-") as tmp:
        async with temp_database(backend, tmp) as url:
            env = linli_env(url, tmp, LINLI_GENERIC_CHANNELS=channels)
            await asyncio.to_thread(run_demo, env)
            server = start_linli_serve(env, tmp / "server.log")
            try:
                await wait_ready(server)
                res = await open_loop(
                    server.base_url,
                    users=users,
                    rate=rate,
                    duration_s=duration_s,
                    server_pid=server.pid,
                )
            finally:
                server.stop()
                if os.environ.get("BENCH_KEEP_LOG"):
                    shutil.copy(tmp / "server.log", os.environ["BENCH_KEEP_LOG"])
    statuses = res.statuses()
    lat = [s.latency_s for s in res.samples if s.status == 200]
    by_kind = {
        kind: latency_summary(
            [s.latency_s for s in res.samples if s.kind == kind and s.status == 200]
        )
        for kind in ("need text", "confirm")
    }
    return {
        "backend": backend,
        "users": users,
        "rate": rate,
        "duration_s": duration_s,
        "messages": len(res.samples),
        "ok": statuses.get(200, 0),
        "errors": len(res.samples) - statuses.get(200, 0),
        "statuses": dict(statuses),
        **latency_summary(lat),
        "by_kind": by_kind,
        "onboarding": latency_summary(res.onboarding),
        "late_sends": res.late_sends,
        "server_cpu_pct": res.server_cpu_pct,
    }


async def run(backends: list[str], *, quick: bool = False) -> list[dict[str, Any]]:
    params = {"users": 20, "rate": 20.0, "duration_s": 2.0} if quick else {}
    return [await run_latency(backend, **params) for backend in backends]


def table(rows: list[dict[str, Any]]) -> str:
    headers = [
        "backend",
        "messages",
        "errors",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "p99 need text",
        "p99 confirm",
        "server CPU %",
        f"p99 ≤ {TARGET_P99_MS:.0f} ms",
    ]
    return markdown_table(
        headers,
        [
            [
                r["backend"],
                r["messages"],
                r["errors"],
                r["p50_ms"],
                r["p90_ms"],
                r["p99_ms"],
                r["max_ms"],
                r["by_kind"]["need text"]["p99_ms"],
                r["by_kind"]["confirm"]["p99_ms"],
                r["server_cpu_pct"],
                "yes" if r["p99_ms"] <= TARGET_P99_MS and not r["errors"] else "**no**",
            ]
            for r in rows
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 users, 20/s for 2 s")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    rows = asyncio.run(run(parse_backends(args.backend), quick=args.quick))
    r0 = rows[0]
    print(
        f"Generic-channel message end to end, open loop {r0['rate']:.0f}/s for "
        f"{r0['duration_s']:.0f} s, {r0['users']} residents"
    )
    print(table(rows))
    for r in rows:
        print(
            f"({r['backend']}: onboarding, 4 messages, p50 {r['onboarding']['p50_ms']:.0f} ms; "
            f"{r['late_sends']} sends left late by the client)"
        )


if __name__ == "__main__":
    main()
