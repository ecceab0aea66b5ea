import pytest

from nlp.classifier import Classification, Classifier, get_classifier
from nlp.taxonomy import CATEGORIES, KINDS

WEIRD = [
    "",
    " ",
    "😀😀😀",
    "\x00\x01",
    "a" * 5000,
    "漏水" * 2500,
    "?!。,",
    "\ud800",  # lone surrogate
    "1234567890",
    "<script>alert(1)</script>",
]


@pytest.mark.parametrize("text", WEIRD)
def test_never_raises(classifier, text):
    res = classifier.classify(text)
    assert isinstance(res, Classification)
    assert res.category in CATEGORIES
    assert res.kind in KINDS
    assert 0.0 <= res.confidence <= 1.0


def test_empty_is_other_chitchat(classifier):
    for text in ("", "😀", "   "):
        res = classifier.classify(text)
        assert (res.category, res.kind, res.confidence) == ("other", "chitchat", 0.0)


def test_non_str_input_does_not_raise(classifier):
    assert classifier.classify(None).category == "other"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("楼道灯不亮了 晚上黑乎乎的", "environment"),
        ("我爸腿脚不便 一个人在家没人做饭", "elderly"),
        ("卫生间一开灯就跳闸", "housekeeping"),
        ("想申请低保 家里实在困难", "assistance"),
        ("想学书法 有没有老师", "culture"),
        ("老板欠了两个月工资不给", "legal"),
    ],
)
def test_categories(classifier, text, category):
    assert classifier.classify(text).category == category


def test_matched_and_candidates(classifier):
    res = classifier.classify("想申请低保 家里实在困难 孩子还要上学")
    assert "低保" in res.matched
    scores = [s for _, s in res.candidates]
    assert scores == sorted(scores, reverse=True)
    assert res.candidates[0][0] == res.category
    assert all(s > 0 for s in scores)


def test_emergency_services_in_result(classifier):
    res = classifier.classify("着火了 6楼冒黑烟")
    assert res.emergency and res.emergency_services == ("119",)
    assert res.category == "safety"
    assert res.kind == "need"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("微心愿:想要一个书包", "wish"),
        ("建议小区多装几个垃圾桶", "suggestion"),
        ("义诊几点开始", "query"),
        ("谢谢你们 辛苦了", "chitchat"),
        ("你好", "chitchat"),
        ("下水道堵了 臭得不行", "need"),
    ],
)
def test_kinds(classifier, text, kind):
    assert classifier.classify(text).kind == kind


def test_staff_keywords():
    base = Classifier()
    assert base.classify("想办个老年助浴卡").category == "elderly"
    extra = Classifier(extra_keywords={"culture": ["非遗扎染"]})
    assert extra.classify("非遗扎染什么时候开课").category == "culture"
    removed = Classifier(removed_keywords={"elderly": ["助浴"]})
    assert "助浴" not in removed.classify("想办个老年助浴卡").matched


def test_unknown_staff_category_ignored():
    clf = Classifier(extra_keywords={"nope": ["xyz"]})
    assert clf.classify("xyz").category == "other"


def test_default_classifier_is_shared():
    assert get_classifier() is get_classifier()


# --- jieba as the word-boundary authority -------------------------------------------------


def test_term_straddling_a_jieba_boundary_does_not_count(classifier):
    # 在家电视坏了 segments as 在家/电视/坏了: 家电 would only match across two words.
    res = classifier.classify("一个人在家电视坏了")
    assert "家电" not in res.matched
    assert "电视" in res.matched
    # Plain substring matching (no jieba) would have taken it.
    assert "家电" in Classifier(segmenter=False).classify("在家电视坏了").matched


@pytest.mark.parametrize(
    ("text", "wrong", "right"),
    [
        ("马路灯光太刺眼", "路灯", None),  # 马路/灯光
        ("好几家电动车电瓶被偷了", "家电", "电动车"),  # 好几家/电动车
        ("别再让停电动车了", "停电", "电动车"),  # 停/电动车
    ],
)
def test_boundary_fixes_false_substring_matches(classifier, text, wrong, right):
    matched = classifier.classify(text).matched
    assert wrong not in matched
    if right:
        assert right in matched


def test_whole_tokens_and_pieces_of_one_token_still_match(classifier):
    assert "路灯" in classifier.classify("小区路灯坏了").matched  # 路灯 is a token
    assert "书法" in classifier.classify("下周有没有书法课").matched  # inside 书法课
    assert "垃圾" in classifier.classify("门口垃圾堆成山了").matched  # inside 垃圾堆


def test_long_and_substring_safe_terms_match_across_boundaries(classifier):
    # jieba: 单元楼/道 — 楼道 is flagged substr in environment.txt.
    assert "楼道" in classifier.classify("我们单元楼道的小广告清一清").matched
    # 报国/画 — 国画 is flagged substr in culture.txt.
    assert "国画" in classifier.classify("想报国画班").matched
    strict = Classifier(substring_safe=())
    assert "楼道" not in strict.classify("我们单元楼道的小广告清一清").matched


def test_staff_short_keyword_is_kept_whole_by_jieba():
    from nlp import tokenizer

    clf = Classifier(extra_keywords={"culture": ["扎染"]})
    assert "扎染" in tokenizer.tokens("我想学扎染")
    assert clf.classify("我想学扎染 有没有课").category == "culture"


def test_segmentation_failure_falls_back_to_substrings():
    from nlp.lexicon import TermMatcher

    def broken(chunk: str) -> frozenset[int]:
        raise RuntimeError("boom")

    matcher = TermMatcher(["家电"], broken)
    assert [m.term for m in matcher.find("在家电视")] == ["家电"]
