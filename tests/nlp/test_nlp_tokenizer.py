from nlp import tokenizer


def test_tokens_use_user_dictionary(tmp_path):
    tokenizer.initialize(tmp_path)
    tokenizer.initialize(tmp_path)  # idempotent
    assert tokenizer.is_initialized()
    toks = tokenizer.tokens("我想报名时间银行 找网格员问问老娘舅的事")
    assert "时间银行" in toks and "网格员" in toks and "老娘舅" in toks


def test_tokens_empty():
    assert tokenizer.tokens("") == []
