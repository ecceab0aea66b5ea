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


def test_initialize_writes_jieba_cache_in_cache_dir(tmp_path):
    code = (
        "import sys, nlp; nlp.initialize(sys.argv[1]); "
        "from nlp.tokenizer import tokens; print('/'.join(tokens('潮汐停车')))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert res.stdout.strip() == "潮汐停车"
    assert (tmp_path / tokenizer.CACHE_FILE_NAME).is_file()
