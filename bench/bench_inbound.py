"""Inbound acknowledgment throughput: closed loop, 40 connections, one server worker.

Two targets, each on SQLite (temp file) and PostgreSQL (throw-away database):

* ``ack``: bench/ack_app.py, the acknowledging path alone (size limit, Standard Webhooks
  verify, ``storage.inbox.store_event``, 200), each request a unique signed webhook-id;
* ``telegram``: the full app's POST /webhooks/telegram (secret token, durable insert, 200,
  then the update is processed in the background against a fake Bot API in this process),
  updates from 500 distinct chats.

Run: ``python bench/bench_inbound.py [--quick] [--backend sqlite|postgres|both]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable
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
    signed_headers,
    start_linli_serve,
    start_uvicorn,
    temp_database,
    wait_ready,
    workdir,
)

TARGET_ACKS_PER_S = 1000
RequestMaker = Callable[[int], tuple[bytes, dict[str, str]]]


@dataclass
class LoadResult:
    duration_s: float
    ok: int = 0
    errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    server_cpu_pct: float = 0.0
    client_cpu_pct: float = 0.0

    @property
    def rate(self) -> float:
        return self.ok / self.duration_s if self.duration_s else 0.0


async def closed_loop(
    url: str,
    make_request: RequestMaker,
    *,
    connections: int = 40,
    duration_s: float = 10.0,
    warmup_s: float = 1.0,
    server_pid: int | None = None,
) -> LoadResult:
    """``connections`` workers, each sending its next request as soon as the last returns.

    Only requests that start and finish inside the measuring window (after ``warmup_s``)
    are counted; every status other than 200 and every transport error is counted too.
    """
    result = LoadResult(duration_s=duration_s)
    counter = itertools.count()
    loop_start = time.perf_counter()
    window_start = loop_start + warmup_s
    window_end = window_start + duration_s
    cpu: dict[str, float] = {}

    async def sample_cpu() -> None:
        await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
        cpu["client0"] = time.process_time()
        if server_pid is not None:
            cpu["server0"] = cpu_seconds(server_pid)
        await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
        cpu["client1"] = time.process_time()
        if server_pid is not None:
            cpu["server1"] = cpu_seconds(server_pid)

    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            while time.perf_counter() < window_end:
                body, headers = make_request(next(counter))
                t0 = time.perf_counter()
                status = -1
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError):
                    status = -1
                t1 = time.perf_counter()
                if t0 < window_start or t1 > window_end:
                    continue
                result.statuses[status] += 1
                if status == 200:
                    result.ok += 1
                    result.latencies.append(t1 - t0)
                else:
                    result.errors += 1

        await asyncio.gather(sample_cpu(), *(worker() for _ in range(connections)))
    if "client1" in cpu:
        result.client_cpu_pct = 100 * (cpu["client1"] - cpu["client0"]) / duration_s
    if "server1" in cpu:
        result.server_cpu_pct = 100 * (cpu["server1"] - cpu["server0"]) / duration_s
    return result


def _ack_requests() -> RequestMaker:
    prefix = "msg_" + secrets.token_hex(4)

    def make(i: int) -> tuple[bytes, dict[str, str]]:
        body = generic_body(f"user-{i % 500}", text="楼道里的灯坏了好几天了")
        return body, signed_headers(BENCH_SECRET, body, msg_id=f"{prefix}_{i}")

    return make


def _telegram_requests(secret_token: str) -> RequestMaker:
    import json

    base = secrets.randbelow(10**8)
    headers = {"content-type": "application/json", "x-telegram-bot-api-secret-token": secret_token}

    def make(i: int) -> tuple[bytes, dict[str, str]]:
        chat = 10_000 + i % 500
        update = {
            "update_id": base + i,
            "message": {
                "message_id": i + 1,
                "date": int(time.time()),
                "chat": {"id": chat, "type": "private", "first_name": "王"},
                "from": {"id": chat, "is_bot": False, "first_name": "王"},
                "text": "你好",
            },
        }
        return json.dumps(update, ensure_ascii=False).encode(), headers

    return make


async def run_ack(
    backend: str, *, duration_s: float, warmup_s: float, connections: int = 40
) -> dict[str, Any]:
    """The ack path in isolation (bench/ack_app.py under uvicorn)."""
    with workdir("linli-bench-ack-") as tmp:
        async with temp_database(backend, tmp) as url:
            env = linli_env(url, tmp, BENCH_SECRET=BENCH_SECRET)
            server = start_uvicorn("bench.ack_app:create_app", env, tmp / "server.log")
            try:
                await wait_ready(server)
                load = await closed_loop(
                    f"{server.base_url}/ack/bench",
                    _ack_requests(),
                    connections=connections,
                    duration_s=duration_s,
                    warmup_s=warmup_s,
                    server_pid=server.pid,
                )
            finally:
                server.stop()
    return _row("ack path (bench/ack_app.py)", backend, load)


async def run_telegram(
    backend: str,
    *,
    duration_s: float,
    warmup_s: float,
    connections: int = 40,
    drain_timeout_s: float = 10.0,
) -> dict[str, Any]:
    """The full app's /webhooks/telegram, with a fake Bot API for the replies.

    Acknowledged updates are processed in the background; on SIGTERM the app drains that
    backlog, for up to ``drain_timeout_s`` before it is killed.
    """
    from linli.settings import Settings
    from tests.support.fake_telegram import FakeTelegram

    secret_key = secrets.token_urlsafe(32)
    secret_token = Settings(secret_key=secret_key).telegram_webhook_secret()
    with workdir("linli-bench-tg-") as tmp:
        async with temp_database(backend, tmp) as url, FakeTelegram() as fake:
            env = linli_env(
                url,
                tmp,
                LINLI_SECRET_KEY=secret_key,
                LINLI_TELEGRAM_TOKEN="42:TEST",
                LINLI_TELEGRAM_API_URL=fake.base_url,
                LINLI_TELEGRAM_MODE="webhook",
                LINLI_RUN_BACKGROUND="false",
            )
            server = start_linli_serve(env, tmp / "server.log")
            try:
                await wait_ready(server)
                load = await closed_loop(
                    f"{server.base_url}/webhooks/telegram",
                    _telegram_requests(secret_token),
                    connections=connections,
                    duration_s=duration_s,
                    warmup_s=warmup_s,
                    server_pid=server.pid,
                )
            finally:
                server.stop(drain_timeout_s)
            sent = sum(1 for call in fake.calls if call.method == "sendMessage")
    row = _row("full app /webhooks/telegram", backend, load)
    row["background_sends"] = sent
    return row


def _row(what: str, backend: str, load: LoadResult) -> dict[str, Any]:
    return {
        "what": what,
        "backend": backend,
        "requests": load.ok + load.errors,
        "ok": load.ok,
        "errors": load.errors,
        "statuses": dict(load.statuses),
        "acks_per_s": load.rate,
        **latency_summary(load.latencies),
        "server_cpu_pct": load.server_cpu_pct,
        "client_cpu_pct": load.client_cpu_pct,
    }


async def run(backends: list[str], *, quick: bool = False) -> list[dict[str, Any]]:
    duration, warmup = (2.0, 0.5) if quick else (10.0, 1.0)
    rows = []
    for backend in backends:
        rows.append(await run_ack(backend, duration_s=duration, warmup_s=warmup))
        rows.append(await run_telegram(backend, duration_s=duration, warmup_s=warmup))
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    headers = [
        "endpoint",
        "backend",
        "acks/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "server CPU %",
        "client CPU %",
        f"≥ {TARGET_ACKS_PER_S}/s",
    ]
    return markdown_table(
        headers,
        [
            [
                r["what"],
                r["backend"],
                r["acks_per_s"],
                r["p50_ms"],
                r["p99_ms"],
                r["errors"],
                r["server_cpu_pct"],
                r["client_cpu_pct"],
                "yes" if r["acks_per_s"] >= TARGET_ACKS_PER_S and not r["errors"] else "**no**",
            ]
            for r in rows
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 s runs (smoke test)")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    rows = asyncio.run(run(parse_backends(args.backend), quick=args.quick))
    print("Inbound acknowledgment, closed loop, 40 connections, 1 worker")
    print(table(rows))
    for r in rows:
        if "background_sends" in r:
            print(
                f"({r['backend']}: the Telegram front sent {r['background_sends']} replies "
                "to the fake Bot API while being loaded)"
            )


if __name__ == "__main__":
    main()
