"""Shared helpers for the HTTP benchmarks: throw-away databases, server subprocesses,
signed Standard Webhooks requests, latency statistics and CPU/RSS readings from /proc.

Every server runs in its own subprocess (one uvicorn worker on 127.0.0.1, a free port),
so the load generator in this process does not share its event loop or its core.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from webhooks.generic.crypto import make_headers

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
PG_ADMIN_URL = os.environ.get("LINLI_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
BENCH_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BACKENDS = ("sqlite", "postgres")
# `linli serve` without relying on the console script being installed.
LINLI = [PYTHON, "-c", "from linli.cli import main; main()"]


# ---- statistics ------------------------------------------------------------------------------
def percentile(values: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max in milliseconds."""
    return {
        "p50_ms": percentile(seconds, 50) * 1000,
        "p90_ms": percentile(seconds, 90) * 1000,
        "p99_ms": percentile(seconds, 99) * 1000,
        "max_ms": (max(seconds) * 1000) if seconds else math.nan,
    }


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            if math.isnan(value):
                return "–"
            if abs(value) < 10:
                return f"{value:.2f}"
            return f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def parse_backends(choice: str) -> list[str]:
    return list(BACKENDS) if choice == "both" else [choice]


# ---- signed requests -------------------------------------------------------------------------
def generic_body(user_id: str, *, text: str | None = None, button: str | None = None) -> bytes:
    message: dict[str, Any] = {"text": text} if text is not None else {"button": button}
    return json.dumps(
        {"user": {"id": user_id, "name": "王阿姨"}, "message": message}, ensure_ascii=False
    ).encode()


def signed_headers(secret: str, body: bytes, msg_id: str | None = None) -> dict[str, str]:
    """Standard Webhooks headers (fresh webhook-id unless given) plus the JSON content type."""
    headers = make_headers(secret, body, msg_id=msg_id)
    headers["content-type"] = "application/json"
    return headers


# ---- databases -------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def temp_database(backend: str, workdir: Path) -> AsyncIterator[str]:
    """An empty database for one run: a SQLite file in ``workdir`` or a fresh PG database."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
        return
    if backend != "postgres":
        raise ValueError(f"unknown backend {backend!r}")
    import asyncpg

    name = "linli_bench_" + secrets.token_hex(5)
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def linli_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a Linli process: only our LINLI_* values, nothing inherited from ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINLI_")}
    env.update(
        {
            "LINLI_DATABASE_URL": database_url,
            "LINLI_DATA_DIR": str(data_dir),
            "LINLI_LOG_LEVEL": "WARNING",
            "LINLI_THROTTLE_PER_MINUTE": "1000000",
            "PYTHONPATH": str(REPO),
        }
    )
    env.update(extra)
    return env


def run_demo(env: dict[str, str]) -> None:
    """`linli demo`: migrate and seed (streets, communities, organizations)."""
    subprocess.run(
        [*LINLI, "demo"], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, timeout=120
    )


# ---- server subprocesses ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A server subprocess we started; stopped by its own pid only."""

    proc: subprocess.Popen[bytes]
    port: int
    started_at: float
    log_path: Path
    ready_after_s: float = math.nan
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (graceful: the app drains its work), SIGKILL after ``timeout_s``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start_server(args: Sequence[str], env: dict[str, str], log_path: Path) -> Server:
    """Start ``args`` (which must listen on env["BENCH_PORT"] or the --port in args)."""
    port = int(env["BENCH_PORT"])
    log = log_path.open("wb")
    started = time.perf_counter()
    proc = subprocess.Popen(list(args), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return Server(proc=proc, port=port, started_at=started, log_path=log_path)


def start_linli_serve(env: dict[str, str], log_path: Path) -> Server:
    port = free_port()
    env = {**env, "BENCH_PORT": str(port)}
    return start_server(
        [*LINLI, "serve", "--host", "127.0.0.1", "--port", str(port)], env, log_path
    )


def start_uvicorn(app: str, env: dict[str, str], log_path: Path, *, factory: bool = True) -> Server:
    port = free_port()
    env = {**env, "BENCH_PORT": str(port)}
    args = [PYTHON, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    args += ["--workers", "1", "--no-access-log", "--log-level", "warning"]
    if factory:
        args.append("--factory")
    return start_server(args, env, log_path)


async def wait_ready(server: Server, timeout_s: float = 60.0, interval_s: float = 0.01) -> float:
    """Poll /readyz until 200; return seconds since the process was started."""
    deadline = time.perf_counter() + timeout_s
    async with httpx.AsyncClient(timeout=2.0) as http:
        while time.perf_counter() < deadline:
            if server.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited ({server.proc.returncode}):\n{server.log_tail()}"
                )
            try:
                response = await http.get(server.base_url + "/readyz")
                if response.status_code == 200:
                    server.ready_after_s = time.perf_counter() - server.started_at
                    return server.ready_after_s
            except httpx.TransportError:
                pass
            await asyncio.sleep(interval_s)
    server.stop()
    raise TimeoutError(f"/readyz not 200 after {timeout_s} s:\n{server.log_tail()}")


# ---- /proc readings --------------------------------------------------------------------------
_TICKS = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident set size in MiB (psutil when installed, else /proc/<pid>/status VmRSS)."""
    try:
        import psutil  # type: ignore[import-untyped]

        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except ImportError:
        pass
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS
