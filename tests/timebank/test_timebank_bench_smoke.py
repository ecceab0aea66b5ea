"""Smoke test of bench/bench_ledger.py: a tiny run on SQLite keeps the books; no speed claims."""

from __future__ import annotations

from bench import bench_ledger


async def test_bench_ledger_runs_and_keeps_the_books() -> None:
    rows = await bench_ledger.run_backend(
        "sqlite", [("mix", 2), ("hot", 2)], duration_s=0.5, warmup_s=0.1
    )
    assert [(r["scenario"], r["workers"]) for r in rows] == [("mix", 2), ("hot", 2)]
    for row in rows:
        assert row["errors"] == 0 and row["books_ok"]
        assert row["postings_per_s"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"]
    assert "| mix | sqlite | 2 |" in bench_ledger.table(rows)
