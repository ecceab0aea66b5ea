"""Smoke tests of the HTTP benchmarks: tiny runs on SQLite, sane numbers, no speed claims.

The figures themselves come from ``python bench/run_all.py`` and go into the README.
"""

from __future__ import annotations

import math

from bench import bench_coldstart, bench_inbound, bench_latency
from bench.common import latency_summary, markdown_table, percentile


def test_percentile_and_table() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([0.0, 10.0], 99) == 9.9
    assert math.isnan(percentile([], 50))
    summary = latency_summary([0.001, 0.002, 0.003])
    assert summary["p50_ms"] == 2.0 and summary["max_ms"] == 3.0
    assert markdown_table(["a", "b"], [[1, 2.5]]).splitlines()[-1] == "| 1 | 2.50 |"


def _all_ok(row: dict) -> None:
    assert row["ok"] > 0
    assert row["errors"] == 0
    assert set(row["statuses"]) == {200}
    assert 0 < row["p50_ms"] <= row["p99_ms"]


async def test_inbound_ack_path() -> None:
    row = await bench_inbound.run_ack("sqlite", duration_s=1.0, warmup_s=0.2, connections=8)
    _all_ok(row)
    assert row["acks_per_s"] > 0


async def test_inbound_telegram_webhook() -> None:
    row = await bench_inbound.run_telegram(
        "sqlite", duration_s=1.0, warmup_s=0.2, connections=4, drain_timeout_s=1.0
    )
    _all_ok(row)
    assert row["background_sends"] > 0  # updates were processed and answered, not only stored


async def test_latency_open_loop() -> None:
    row = await bench_latency.run_latency("sqlite", users=5, rate=10.0, duration_s=1.0)
    assert row["messages"] == 10
    _all_ok(row)
    assert row["onboarding"]["p50_ms"] > 0
    assert row["by_kind"]["confirm"]["p50_ms"] > 0  # proposals were read and confirmed


async def test_coldstart_and_rss() -> None:
    row = await bench_coldstart.run_coldstart("sqlite", runs=1, warm_users=2)
    assert 0 < row["ready_s"] < 60
    assert 10 < row["rss_mb"] < 10_000
    assert row["warm_requests_ok"] == row["warm_requests"]
