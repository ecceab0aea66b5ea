"""Run every HTTP benchmark and print one markdown summary (numbers for the README).

Run: ``python bench/run_all.py [--quick] [--backend sqlite|postgres|both]``.
bench/bench_nlp.py (the classifier alone) is separate.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import bench_coldstart, bench_inbound, bench_latency  # noqa: E402
from bench.common import markdown_table, parse_backends  # noqa: E402


def summary(
    inbound: list[dict[str, Any]], latency: list[dict[str, Any]], cold: list[dict[str, Any]]
) -> str:
    rows: list[list[Any]] = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    for r in inbound:
        target = bench_inbound.TARGET_ACKS_PER_S
        rows.append(
            [
                f"inbound acks/s, {r['what']}",
                r["backend"],
                f"≥ {target:,}/s",
                f"{r['acks_per_s']:,.0f}/s (p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms)",
                verdict(r["acks_per_s"] >= target and not r["errors"]),
            ]
        )
    for r in latency:
        target = bench_latency.TARGET_P99_MS
        rows.append(
            [
                f"generic message end to end, {r['rate']:.0f}/s open loop",
                r["backend"],
                f"p99 ≤ {target:.0f} ms",
                f"p50 {r['p50_ms']:.1f} / p90 {r['p90_ms']:.1f} / p99 {r['p99_ms']:.1f} / "
                f"max {r['max_ms']:.0f} ms",
                verdict(r["p99_ms"] <= target and not r["errors"]),
            ]
        )
    for r in cold:
        rows.append(
            [
                "`linli serve` start → /readyz 200 (median)",
                r["backend"],
                f"≤ {bench_coldstart.TARGET_READY_S:.0f} s",
                f"{r['ready_s']:.2f} s",
                verdict(r["ready_s"] <= bench_coldstart.TARGET_READY_S),
            ]
        )
        rows.append(
            [
                "RSS after warm-up (median)",
                r["backend"],
                f"≤ {bench_coldstart.TARGET_RSS_MB:.0f} MB",
                f"{r['rss_mb']:.0f} MB",
                verdict(r["rss_mb"] <= bench_coldstart.TARGET_RSS_MB),
            ]
        )
    return markdown_table(["what", "backend", "target", "measured", ""], rows)


async def run(backends: list[str], quick: bool) -> str:
    started = time.perf_counter()
    inbound = await bench_inbound.run(backends, quick=quick)
    print("## Inbound acknowledgment (closed loop, 40 connections, 1 worker)\n", flush=True)
    print(bench_inbound.table(inbound) + "\n", flush=True)
    latency = await bench_latency.run(backends, quick=quick)
    print("## Generic-channel message end to end (open loop)\n", flush=True)
    print(bench_latency.table(latency) + "\n", flush=True)
    cold = await bench_coldstart.run(backends, quick=quick)
    print("## Cold start and memory\n", flush=True)
    print(bench_coldstart.table(cold) + "\n", flush=True)
    took = time.perf_counter() - started
    return (
        f"## Summary ({platform.node()}, {platform.python_version()}, "
        f"{'quick' if quick else 'full'} run, {took:.0f} s)\n\n" + summary(inbound, latency, cold)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    print(asyncio.run(run(parse_backends(args.backend), args.quick)))


if __name__ == "__main__":
    main()
