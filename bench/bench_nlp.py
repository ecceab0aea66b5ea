"""Benchmark of the NLP package: cold start and classification throughput on one core.

Messages are synthesised by recombining lexicon terms with filler phrases (never dev-set
sentences), 20-150 characters long. Run: ``python bench/bench_nlp.py``.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FILLERS = (
    "你好",
    "我想问一下",
    "麻烦看看",
    "最近",
    "我们家",
    "楼下",
    "社区",
    "谢谢",
    "能不能",
    "有没有人",
    "怎么办",
    "好几天了",
    "X号楼的",
    "一直没人管",
    "希望",
    "建议",
    "啥时候",
)


def synth_messages(n: int, seed: int = 7) -> list[str]:
    """Random messages built from lexicon terms and fillers."""
    from nlp.lexicon import load_category_lexicons

    terms = [t for lex in load_category_lexicons().values() for t in lex]
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        target = rng.randint(20, 150)
        parts: list[str] = []
        while sum(map(len, parts)) < target:
            parts.append(rng.choice(terms) if rng.random() < 0.4 else rng.choice(FILLERS))
        out.append(" ".join(parts)[:150])
    return out


def cold_start(cache_dir: str) -> float:
    """Seconds for a fresh interpreter to import nlp and run initialize(cache_dir)."""
    code = (
        "import sys, time; t=time.perf_counter(); import nlp; "
        "nlp.initialize(sys.argv[1]); print(time.perf_counter()-t)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, cache_dir],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(res.stdout.strip().splitlines()[-1])


def throughput(clf, messages: list[str]) -> float:
    """Messages per second of ``clf.classify`` over ``messages`` (after a warm-up)."""
    for m in messages[:200]:
        clf.classify(m)  # warm caches
    started = time.perf_counter()
    for m in messages:
        clf.classify(m)
    return len(messages) / (time.perf_counter() - started)


def main() -> None:
    import nlp
    from nlp.classifier import Classifier, get_classifier

    with tempfile.TemporaryDirectory() as tmp:
        first = cold_start(tmp)  # builds jieba's dictionary cache in tmp
        warm = min(cold_start(tmp) for _ in range(3))
    nlp.initialize()
    messages = synth_messages(20_000)
    avg_len = sum(map(len, messages)) / len(messages)
    rate = throughput(get_classifier(), messages)
    plain = throughput(Classifier(segmenter=False), messages)
    print(
        f"throughput: {rate:,.0f} msgs/s "
        f"({len(messages)} messages, avg {avg_len:.0f} chars, one core)"
    )
    print(f"throughput without jieba boundaries: {plain:,.0f} msgs/s")
    print(f"cold start (import + initialize), jieba cache present: {warm:.3f} s")
    print(f"cold start, first run (jieba builds its cache):       {first:.3f} s")


if __name__ == "__main__":
    main()
