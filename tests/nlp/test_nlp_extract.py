from nlp.extract import find_addresses, find_id_cards, find_phones, find_times, mask_phone, mask_pii


def test_phones():
    spans = find_phones("电话13812345678 或 139-1234-5678 座机010-87654321 已脱敏138****1234")
    assert [s.text for s in spans] == [
        "13812345678",
        "139-1234-5678",
        "010-87654321",
        "138****1234",
    ]


def test_phone_not_inside_id_card():
    assert find_phones("110101199003071234") == []
    assert [s.text for s in find_id_cards("身份证110101199003071234")] == ["110101199003071234"]


def test_addresses():
    texts = [s.text for s in find_addresses("我住在阳光小区5号楼2单元301 对面X号楼 还有302室")]
    assert "阳光小区5号楼2单元301" in texts
    assert "X号楼" in texts
    assert "302室" in texts


def test_times_spans():
    text = "明天下午三点来 周六上午9点半也行 10月1日"
    spans = find_times(text)
    assert [s.text for s in spans] == ["明天下午三点", "周六上午9点半", "10月1日"]
    assert all(text[s.start : s.end] == s.text for s in spans)


def test_times_ignore_building_numbers():
    assert find_times("我住5号楼") == []


def test_mask_phone():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("138 1234 5678") == "138****5678"
    assert mask_phone("010-12345678") == "010-****5678"


def test_mask_pii():
    masked = mask_pii("阳光小区5号楼2单元301 电话13812345678 身份证110101199003071234 门牌号18")
    assert "13812345678" not in masked and "138****5678" in masked
    assert "110101199003071234" not in masked and "110***********1234" in masked
    assert "阳光小区5号楼2单元" in masked and "301" not in masked
    assert "门牌号***" in masked


def test_mask_pii_empty():
    assert mask_pii("") == ""
