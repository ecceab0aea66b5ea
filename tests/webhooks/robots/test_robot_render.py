"""Robot addresses and rendering: the forms an organization may paste, the action line that
replaces buttons, cutting to the platform's size, and resident text kept literal."""

from __future__ import annotations

import pytest

from community.catalog import t
from webhooks.robots import BadAddress, RobotAddress, parse_address, render_notice

BUTTONS = [{"text": "接单", "payload": "oa.42"}, {"text": "退回", "payload": "od.42"}]
TOKEN = "5b7c0e1f2a3d4c5b6a7f8e9d0c1b2a3f"


@pytest.mark.parametrize(
    ("channel", "address", "expected"),
    [
        (
            "wecom-robot",
            "693a91f6-7b3c-4bc4-97a0-0ec2a1f3d5e7",
            ("693a91f6-7b3c-4bc4-97a0-0ec2a1f3d5e7", None),
        ),
        (
            "wecom-robot",
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc-1",
            ("abc-1", None),
        ),
        ("dingtalk-robot", f"{TOKEN}#SECabc123", (TOKEN, "SECabc123")),  # interfaces.md §1
        ("dingtalk-robot", f"{TOKEN}:SECabc123", (TOKEN, "SECabc123")),
        ("dingtalk-robot", TOKEN, (TOKEN, None)),  # keyword-secured robot: no signing
        (
            "dingtalk-robot",
            f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}#SECabc123",
            (TOKEN, "SECabc123"),
        ),
        ("feishu-robot", "2f0e6b3a-8c1d#s3cr3t", ("2f0e6b3a-8c1d", "s3cr3t")),
        (
            "feishu-robot",
            "https://open.feishu.cn/open-apis/bot/v2/hook/2f0e6b3a-8c1d#s3cr3t",
            ("2f0e6b3a-8c1d", "s3cr3t"),
        ),
    ],
)
def test_address_forms(channel: str, address: str, expected: tuple[str, str | None]) -> None:
    assert parse_address(channel, address) == RobotAddress(*expected)


@pytest.mark.parametrize(
    ("channel", "address"),
    [
        ("wecom-robot", ""),
        ("wecom-robot", "key with spaces"),
        ("dingtalk-robot", "https://oapi.dingtalk.com/robot/send"),  # no access_token
        ("dingtalk-robot", f"{TOKEN}#SEC with space"),
        ("feishu-robot", "../../admin#x"),
        ("telegram", "123"),
    ],
)
def test_unusable_addresses(channel: str, address: str) -> None:
    with pytest.raises(BadAddress):
        parse_address(channel, address)


def test_buttons_become_a_link_to_the_request() -> None:
    notice = render_notice("【新诉求】R1\n内容：灯坏了", BUTTONS, "https://linli.example.org/")
    assert notice.url == "https://linli.example.org/staff/requests/42"
    assert notice.text(2048) == (
        "【新诉求】R1\n内容：灯坏了\n\n"
        + t("robot.act", labels="接单、退回", url="https://linli.example.org/staff/requests/42")
    )


def test_other_buttons_link_to_the_inbox_and_no_url_says_log_in() -> None:
    other = [{"text": "认领", "payload": "wc.7"}]
    assert render_notice("x", other, "https://l.example").url == "https://l.example/staff"
    notice = render_notice("x", BUTTONS, "")
    assert notice.url is None and notice.text(2048).endswith(
        t("robot.act_login", labels="接单、退回")
    )
    assert render_notice("只是告知", [], "https://l.example").text(2048) == "只是告知"


def test_long_notice_is_cut_and_keeps_its_action() -> None:
    body = "【新诉求】R1\n内容：" + "灯坏了。" * 2000
    text = render_notice(body, BUTTONS, "https://l.example").text(2048)
    assert len(text.encode()) <= 2048
    assert t("robot.more") in text and text.endswith("https://l.example/staff/requests/42")


def test_feishu_post_keeps_resident_text_literal() -> None:
    words = '内容：[点此领补贴](http://evil.example) <at user_id="all">所有人</at>'
    post = render_notice(f"【新诉求】R1\n{words}", BUTTONS, "https://l.example").feishu_post(4000)
    body = post["post"]["zh_cn"]
    assert body["title"] == "【新诉求】R1"
    assert body["content"][0] == [{"tag": "text", "text": words}]  # a text element, not markup
    assert body["content"][-1][-1] == {
        "tag": "a",
        "text": "https://l.example/staff/requests/42",
        "href": "https://l.example/staff/requests/42",
    }
    assert [e["tag"] for row in body["content"] for e in row].count("a") == 1
