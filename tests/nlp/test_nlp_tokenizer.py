import subprocess
import sys
from pathlib import Path

import pytest

from nlp import tokenizer
from nlp.lexicon import TermMatcher, load_substring_safe

ROOT = Path(__file__).resolve().parents[2]


def test_tokens_use_user_dictionary(tmp_path):
    tokenizer.initialize(tmp_path)
    tokenizer.initialize(tmp_path)  # idempotent
    assert tokenizer.is_initialized()
    toks = tokenizer.tokens("我想报名时间银行 找网格员问问老娘舅的事")
    assert "时间银行" in toks and "网格员" in toks and "老娘舅" in toks


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("楼里总有人电动车进楼道充电", "电动车进楼道"),
        ("小区能不能搞潮汐停车", "潮汐停车"),
        ("有人飞线充电太危险", "飞线充电"),
    ],
)
def test_user_dictionary_terms_are_one_token(text, word):
    assert word in tokenizer.tokens(text)


def test_short_lexicon_terms_are_jieba_words():
    words = tokenizer.domain_words()
    assert "低保" in words and "家电" in words
    assert all(len(w) < 3 for w in words)  # longer phrases would steal boundaries
    toks = tokenizer.tokens("想申请低保")
    assert "低保" in toks


def test_tokens_empty():
    assert tokenizer.tokens("") == []


def test_boundaries_cover_the_chunk():
    cuts = tokenizer.boundaries("在家电视坏了")
    assert {0, 2, 4, 6} <= cuts  # 在家/电视/坏了
    assert 3 not in cuts


def test_matcher_rejects_straddling_short_terms():
    matcher = TermMatcher(["家电", "电视"], tokenizer.boundaries, lambda t: False)
    assert [m.term for m in matcher.find("在家电视")] == ["电视"]
    plain = TermMatcher(["家电", "电视"])
    assert [m.term for m in plain.find("在家电视")] == ["家电"]


def test_substring_safe_flags_are_loaded():
    assert {"楼道", "国画"} <= load_substring_safe()


def test_initialize_writes_jieba_cache_and_snapshot_in_cache_dir(tmp_path):
    code = (
        "import sys, nlp, jieba; nlp.initialize(sys.argv[1]); "
        "from nlp.tokenizer import tokens; "
        "print('/'.join(tokens('楼里总有人电动车进楼道充电')), jieba.dt.total, len(jieba.dt.FREQ))"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        for _ in range(2)  # the first run builds the caches, the second loads the snapshot
    ]
    assert runs[0] == runs[1]
    assert "电动车进楼道" in runs[0][0].split("/")
    assert (tmp_path / tokenizer.CACHE_FILE_NAME).is_file()
    assert (tmp_path / tokenizer.SNAPSHOT_NAME).is_file()


def test_stale_or_damaged_snapshot_is_ignored(tmp_path):
    import jieba

    tokenizer.initialize()
    path = tmp_path / tokenizer.SNAPSHOT_NAME
    tokenizer._save_snapshot(jieba.dt, path, b"a" * 32)
    other = jieba.Tokenizer()
    assert not tokenizer._load_snapshot(other, path, b"b" * 32)  # data files changed
    path.write_bytes(path.read_bytes()[:100])
    assert not tokenizer._load_snapshot(other, path, b"a" * 32)  # truncated
    assert not other.initialized


@pytest.mark.parametrize(
    "chunk",
    [
        "在家电视坏了",
        "3号楼401室wifi坏了!!",
        "ab,cd。e",
        "a1b2中文c3",
        "我们单元楼道的小广告清一清",
        "...",
        "##测试",
        "楼里总有人电动车进楼道充电",
    ],
)
def test_boundaries_are_jiebas_cuts(chunk):
    import jieba

    tokenizer.initialize()
    expected, pos = {0}, 0
    for tok in jieba.cut(chunk, HMM=False):
        pos += len(tok)
        expected.add(pos)
    assert tokenizer.boundaries(chunk) == frozenset(expected)
