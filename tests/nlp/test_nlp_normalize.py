from nlp.normalize import (
    collapse_spaces,
    fix_typos,
    normalize,
    strip_emoji,
    to_halfwidth,
    trad_to_simp,
)


def test_halfwidth():
    assert to_halfwidth("ABC123 !") == "ABC123 !"


def test_trad_to_simp_common_characters():
    assert trad_to_simp("電梯壞了 請幫忙") == "电梯坏了 请帮忙"
    assert trad_to_simp("甚至") == "甚至"  # ambiguous characters are left alone


def test_lowercase_and_spaces():
    assert normalize("  Hello   WORLD \t ok ") == "hello world ok"
    assert collapse_spaces("a \n\t b") == "a b"


def test_typo_fixes():
    assert fix_typos("我妈己经90了") == "我妈已经90了"
    assert fix_typos("以经交了材料") == "已经交了材料"
    assert normalize("想办底保") == "想办低保"


def test_emoji_stripped():
    assert strip_emoji("修好了👍👍").strip() == "修好了"
    assert normalize("😊😊") == ""


def test_fullwidth_through_normalize():
    assert normalize("X号楼101") == "x号楼101"


def test_empty():
    assert normalize("") == ""
