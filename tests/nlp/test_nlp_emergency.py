import pytest

from nlp.emergency import detect

POSITIVES = [
    ("厨房着火了 火越来越大 快来人", {"119"}),
    ("楼道里全是烟 好像哪家烧起来了", {"119"}),
    ("闻到一股很浓的天然气味 不知道谁家的", {"119"}),
    ("楼下有个老太太晕倒了 怎么叫都没反应", {"120"}),
    ("我爷爷在卫生间摔倒了 起不来了", {"120"}),
    ("有人从楼梯上摔下来了 头上一直流血", {"120"}),
    ("我不想活了 真的撑不下去了", {"110", "120"}),
    ("两个人在小区门口打起来了 还拿着棍子", {"110"}),
    ("有人在撬隔壁家的窗户", {"110"}),
    ("我妈有点糊涂 早上出门到现在没回来 电话也打不通", {"110"}),
    ("孩子走丢了 在超市门口不见的", {"110"}),
    ("电梯突然停了 有人被困在里面", {"119"}),
]

NEGATIVES = [
    "上次燃气检查什么时候",
    "消防演练报名",
    "防诈骗讲座还有吗",
    "社区有急救培训吗 想学心肺复苏",
    "万一楼道里着火了怎么办 堆了好多纸箱",
    "去年我们楼着过一次火 现在想装个灭火器",
    "燃气灶打不着火了",
    "报警器响了 但是没着火",
    "家里失火了 火早灭了人没事 就是东西都烧没了",
    "电梯老是坏 怕哪天把人困住",
    "我爸有老年痴呆 想申请日间照料",
    "想死你们了 过年回来一起吃饭",
    "上个月摔了一跤 腿还疼",
    "孩子的钥匙不见了",
]


@pytest.mark.parametrize(("text", "services"), POSITIVES)
def test_positive(text, services):
    res = detect(text)
    assert res.emergency, text
    assert services <= set(res.services), (text, res.services)
    assert set(res.services) <= {"110", "119", "120"}


@pytest.mark.parametrize("text", NEGATIVES)
def test_negative(text):
    assert not detect(text).emergency, detect(text)


def test_empty_is_not_emergency():
    assert not detect("").emergency
