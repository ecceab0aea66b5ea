"""Browser tests of the resident chat page (web/templates/chat.html + web/static/chat.js).

Headless Chromium (Debian's ``chromium``) drives the real page served by an in-memory
fake of the chat API (tests/web/fake_chat_api.py) at a phone viewport.

Set ``LINLI_SCREENSHOT_DIR`` to keep the screenshots somewhere you can look at them.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # run from anywhere, without an installed package
    sys.path.insert(0, str(_ROOT))

from community import catalog  # noqa: E402
from tests.support.browser import SKIP_REASON, chromium_path, launch_browser  # noqa: E402
from tests.web.fake_chat_api import (  # noqa: E402
    WELCOME_BUTTONS,
    FakeChatState,
    serve_fake_chat,
)

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
NARROW = {"width": 320, "height": 640}
TEXTS = catalog.section("web")


# ------------------------------------------------------------------ fixtures
@pytest.fixture
def fake_chat() -> Iterator[tuple[str, FakeChatState]]:
    with serve_fake_chat() as served:
        yield served


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if chromium_path() is None:
        pytest.skip(SKIP_REASON)
    async with launch_browser() as b:
        yield b


class Phone:
    """A page at a phone viewport plus what the page logged."""

    def __init__(self, page: Any, base_url: str, state: FakeChatState) -> None:
        self.page = page
        self.base_url = base_url
        self.state = state
        self.js_errors: list[str] = []
        page.on("pageerror", lambda exc: self.js_errors.append(str(exc)))

    async def open(self) -> None:
        await self.page.goto(self.base_url + "/")

    def user_bubbles(self) -> Any:
        return self.page.locator("li.msg--user .bubble-text")

    def bot_bubbles(self) -> Any:
        return self.page.locator("li.msg--bot .bubble-text")


async def _phone(browser: Any, fake_chat: tuple[str, FakeChatState], viewport: dict) -> Phone:
    context = await browser.new_context(
        viewport=viewport,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
    )
    context.set_default_timeout(10_000)
    page = await context.new_page()
    base_url, state = fake_chat
    return Phone(page, base_url, state)


@pytest.fixture
async def phone(browser: Any, fake_chat: tuple[str, FakeChatState]) -> AsyncIterator[Phone]:
    p = await _phone(browser, fake_chat, PHONE)
    yield p
    await p.page.context.close()
    assert p.js_errors == []


def _expect() -> Any:
    from playwright.async_api import expect

    return expect


def _screenshot_dir(tmp_path: Path) -> Path:
    wanted = os.environ.get("LINLI_SCREENSHOT_DIR")
    folder = Path(wanted) if wanted else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def _settle(p: Phone) -> None:
    """Wait until smooth auto-scrolling has finished (for screenshots)."""
    await p.page.wait_for_function(
        """() => new Promise((resolve) => {
            const y = window.scrollY;
            setTimeout(() => {
                const y2 = window.scrollY;
                setTimeout(() => resolve(y === y2 && y2 === window.scrollY), 200);
            }, 200);
        })""",
        polling=300,
    )


async def _send_text(p: Phone, text: str) -> None:
    box = p.page.get_by_label(TEXTS["input_label"])
    await box.fill(text)
    await box.press("Enter")


# ------------------------------------------------------------------ tests
async def test_page_loads_with_welcome_and_numbered_buttons(phone: Phone) -> None:
    expect = _expect()
    await phone.open()
    await expect(phone.page).to_have_title(TEXTS["title"])
    welcome = phone.bot_bubbles().first
    await expect(welcome).to_have_text(phone.state.messages[0]["text"])
    # Line breaks of server text are kept.
    assert "\n" in await welcome.inner_text()
    choices = phone.page.locator("li.msg--bot button.choice")
    await expect(choices).to_have_count(2)
    await expect(choices.nth(0)).to_have_text("1确认")
    await expect(choices.nth(0)).to_have_accessible_name("1 确认")
    await expect(choices.nth(1)).to_have_accessible_name("2 换一个类别")
    await expect(phone.page.locator("#linli-loading")).to_have_count(0)
    # Big text and big buttons for elderly residents.
    base = await phone.page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert base >= 20
    for locator in (
        choices.nth(0),
        phone.page.locator("#linli-send"),
        phone.page.locator("#linli-menu"),
    ):
        box = await locator.bounding_box()
        assert box is not None and box["height"] >= 56
    # Texts for the script come from the catalog.
    blob = await phone.page.locator("#linli-texts").text_content()
    assert json.loads(blob or "{}")["send"] == TEXTS["send"]


async def test_enter_sends_and_shows_both_bubbles(phone: Phone) -> None:
    expect = _expect()
    await phone.open()
    await expect(phone.bot_bubbles().first).to_be_visible()
    await _send_text(phone, "楼道的灯坏了")
    await expect(phone.user_bubbles().last).to_have_text("楼道的灯坏了")
    await expect(phone.bot_bubbles().last).to_have_text("收到：楼道的灯坏了")
    await expect(phone.page.get_by_label(TEXTS["input_label"])).to_have_value("")
    sent = phone.state.sends()
    assert len(sent) == 1
    assert sent[0]["text"] == "楼道的灯坏了"
    assert len(sent[0]["client_msg_id"]) == 36

    # Shift+Enter makes a new line instead of sending.
    box = phone.page.get_by_label(TEXTS["input_label"])
    await box.type("第一行")
    await box.press("Shift+Enter")
    await box.type("第二行")
    assert len(phone.state.sends()) == 1
    await box.press("Enter")
    await expect(phone.user_bubbles().last).to_have_text("第一行\n第二行")
    await expect(phone.bot_bubbles().last).to_have_text("收到：第一行\n第二行")  # answered
    assert phone.state.sends()[-1]["text"] == "第一行\n第二行"
    # Each message is shown once even though /updates may return it again.
    await phone.page.wait_for_timeout(4500)
    await expect(phone.user_bubbles()).to_have_count(2)


async def test_tapping_numbered_button_sends_its_payload(phone: Phone) -> None:
    expect = _expect()
    await phone.open()
    await phone.page.get_by_role("button", name="1 确认").first.click()
    await expect(phone.user_bubbles().last).to_have_text("确认")
    await expect(phone.bot_bubbles().last).to_contain_text("您选择了：确认")
    sent = phone.state.sends()
    assert sent[-1]["button"] == WELCOME_BUTTONS[0]["payload"]
    assert sent[-1]["label"] == "确认"
    assert "text" not in sent[-1]

    # Typing the number picks the button of the newest message that has buttons.
    await _send_text(phone, "停车位")
    await expect(phone.bot_bubbles().last).to_have_text("收到：停车位")
    await _send_text(phone, "２")
    await expect(phone.user_bubbles().last).to_have_text("换一个类别")
    await expect(phone.bot_bubbles().last).to_contain_text("您选择了：换一个类别")  # answered
    assert phone.state.sends()[-1]["button"] == "cat:other"

    # Buttons of older messages stay clickable.
    await phone.page.locator("li.msg--bot").first.get_by_role("button", name="1 确认").click()
    await expect(phone.user_bubbles()).to_have_count(4)
    await expect(phone.bot_bubbles()).to_have_count(5)  # the server answered the old button
    assert phone.state.sends()[-1]["button"] == "cf:welcome"


async def test_menu_button_sends_menu_text(phone: Phone) -> None:
    expect = _expect()
    await phone.open()
    await expect(phone.bot_bubbles().first).to_be_visible()
    await phone.page.locator("#linli-menu").click()
    await expect(phone.user_bubbles().last).to_have_text("菜单")
    await expect(phone.bot_bubbles().last).to_have_text("收到：菜单")  # answered
    assert phone.state.sends()[-1]["text"] == "菜单"


async def test_pushed_update_appears_by_polling(phone: Phone) -> None:
    expect = _expect()
    await phone.open()
    await expect(phone.bot_bubbles().first).to_be_visible()
    phone.state.push("好消息：幸福社区居委会已受理您的诉求。")
    notice = phone.page.locator("li.msg--bot .bubble-text", has_text="已受理")
    await expect(notice).to_be_visible(timeout=10_000)
    await expect(notice).to_have_count(1)
    await expect(phone.page.locator("#linli-announce")).to_contain_text("已受理")
    assert phone.state.count("updates:1") >= 1


async def test_font_toggle_persists_across_reload(phone: Phone) -> None:
    expect = _expect()
    await phone.open()
    await expect(phone.bot_bubbles().first).to_be_visible()
    size = "parseFloat(getComputedStyle(document.body).fontSize)"
    assert await phone.page.evaluate(size) == 20
    large = phone.page.get_by_role("button", name=TEXTS["font_large"])
    await large.click()
    await expect(large).to_have_attribute("aria-pressed", "true")
    assert await phone.page.evaluate(size) >= 24
    await phone.page.reload()
    await expect(phone.bot_bubbles().first).to_be_visible()
    await expect(phone.page.locator("html")).to_have_attribute("data-font", "large")
    await expect(large).to_have_attribute("aria-pressed", "true")
    assert await phone.page.evaluate(size) >= 24
    normal = phone.page.get_by_role("button", name=TEXTS["font_normal"])
    await normal.click()
    await phone.page.reload()
    await expect(phone.page.locator("html")).to_have_attribute("data-font", "normal")


@pytest.mark.parametrize("font", ["normal", "large"])
async def test_no_horizontal_overflow_at_320px(
    browser: Any, fake_chat: tuple[str, FakeChatState], tmp_path: Path, font: str
) -> None:
    expect = _expect()
    p = await _phone(browser, fake_chat, NARROW)
    try:
        await p.open()
        await expect(p.bot_bubbles().first).to_be_visible()
        await p.page.emulate_media(reduced_motion="reduce")
        if font == "large":
            await p.page.get_by_role("button", name=TEXTS["font_large"]).click()
        await _send_text(p, "https://example.com/" + "x" * 150 + " 长长的中文" * 30)
        await expect(p.bot_bubbles()).to_have_count(2)
        p.state.push("通知：" + "很长的一句话没有空格" * 20, WELCOME_BUTTONS)
        await expect(p.bot_bubbles()).to_have_count(3, timeout=10_000)
        overflow = await p.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        for b in await p.page.locator("button:visible").all():
            box = await b.bounding_box()
            assert box is not None
            assert box["x"] >= 0 and box["x"] + box["width"] <= 320.5
            assert box["height"] >= 56
        await _settle(p)
        await p.page.screenshot(path=str(_screenshot_dir(tmp_path) / f"chat-320-{font}.png"))
        assert p.js_errors == []
    finally:
        await p.page.context.close()


async def test_server_text_is_shown_not_executed(phone: Phone) -> None:
    expect = _expect()
    evil = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
    await phone.open()
    await expect(phone.bot_bubbles().first).to_be_visible()
    phone.state.push(evil, [{"text": "<b>按钮</b>", "payload": "<i>x</i>"}])
    await _send_text(phone, evil)
    await expect(phone.user_bubbles().last).to_have_text(evil)
    # The pushed notice (stored before the send) still arrives by polling.
    await expect(phone.page.locator("li.msg--bot .bubble-text", has_text="<script>")).to_have_count(
        2, timeout=10_000
    )
    await expect(phone.bot_bubbles().nth(1)).to_have_text(evil)
    await expect(phone.page.get_by_role("button", name="1 <b>按钮</b>")).to_be_visible()
    assert await phone.page.evaluate("window.__pwned === undefined")
    assert await phone.page.locator("#linli-messages img, #linli-messages script").count() == 0


async def test_lost_reply_shows_notice_and_retry_uses_same_id(phone: Phone) -> None:
    expect = _expect()
    await phone.open()
    await expect(phone.bot_bubbles().first).to_be_visible()
    phone.state.fail_send_after_store = 1
    await _send_text(phone, "垃圾没人收")
    notice = phone.page.locator("#linli-notice")
    await expect(notice).to_be_visible()
    await expect(notice).to_contain_text(TEXTS["generic_error"])
    await expect(phone.page.locator("li.msg--failed")).to_contain_text(TEXTS["send_failed"])
    await phone.page.get_by_role("button", name=TEXTS["retry"]).click()
    await expect(phone.bot_bubbles().last).to_have_text("收到：垃圾没人收")
    await expect(notice).to_be_hidden()
    await expect(phone.page.locator("li.msg--failed")).to_have_count(0)
    await expect(phone.user_bubbles().filter(has_text="垃圾没人收")).to_have_count(1)
    sent = phone.state.sends()
    assert len(sent) == 2
    assert sent[0]["client_msg_id"] == sent[1]["client_msg_id"]


async def test_offline_send_keeps_text_and_recovers(phone: Phone) -> None:
    expect = _expect()
    await phone.open()
    await expect(phone.bot_bubbles().first).to_be_visible()
    await phone.page.route("**/api/chat/send", lambda route: route.abort())
    await _send_text(phone, "网断了也别丢")
    await expect(phone.page.locator("#linli-notice")).to_contain_text(TEXTS["network_error"])
    await expect(phone.page.locator("li.msg--failed")).to_have_count(1)
    await phone.page.unroute("**/api/chat/send")
    await phone.page.get_by_role("button", name=TEXTS["resend"]).click()
    await expect(phone.bot_bubbles().last).to_have_text("收到：网断了也别丢")
    assert [s["text"] for s in phone.state.sends()] == ["网断了也别丢"]


async def test_too_fast_shows_polite_wait_notice(phone: Phone) -> None:
    expect = _expect()
    await phone.open()
    await expect(phone.bot_bubbles().first).to_be_visible()
    phone.state.throttle_sends = 1
    await _send_text(phone, "你好")
    await expect(phone.page.locator("#linli-notice")).to_contain_text(TEXTS["too_fast"])
    await phone.page.get_by_role("button", name=TEXTS["resend"]).click()
    await expect(phone.bot_bubbles().last).to_have_text("收到：你好")


async def test_history_failure_shows_notice_with_retry(phone: Phone) -> None:
    expect = _expect()
    phone.state.fail_history = 1
    await phone.open()
    notice = phone.page.locator("#linli-notice")
    await expect(notice).to_be_visible()
    await expect(notice).to_contain_text(TEXTS["generic_error"])
    retry = phone.page.get_by_role("button", name=TEXTS["retry"])
    await expect(retry).to_be_focused()
    await retry.click()
    await expect(phone.bot_bubbles().first).to_have_text(phone.state.messages[0]["text"])
    await expect(notice).to_be_hidden()


async def test_refused_text_comes_back_for_editing(phone: Phone) -> None:
    expect = _expect()
    await phone.open()
    await expect(phone.bot_bubbles().first).to_be_visible()
    # Bypass the client-side limit (maxlength) to see the server's 413 handled politely.
    too_long = "长" * 2001
    await phone.page.evaluate(
        """(text) => {
            const box = document.getElementById("linli-input");
            box.removeAttribute("maxlength");
            box.value = text;
        }""",
        too_long,
    )
    # The page itself refuses before sending and keeps the text.
    await phone.page.locator("#linli-send").click()
    notice = phone.page.locator("#linli-notice")
    await expect(notice).to_contain_text(TEXTS["too_long"].replace("{max}", "2000"))
    assert phone.state.count("send") == 0
    await expect(phone.page.get_by_label(TEXTS["input_label"])).to_have_value(too_long)
    # A refusal by the server gives the text back too, with {max} filled in.
    await phone.page.evaluate(
        """() => { window.__origFetch = window.fetch;
            window.fetch = (url, init) => window.__origFetch(url, url.endsWith("/send")
                ? {...init, body: JSON.stringify({client_msg_id: "y", text: "长".repeat(2001)})}
                : init); }"""
    )
    box = phone.page.get_by_label(TEXTS["input_label"])
    await box.fill("短消息")
    await box.press("Enter")
    await expect(notice).to_contain_text("最多只能输入 2000 个字")
    await expect(box).to_have_value("短消息")
    await expect(phone.page.locator("li.msg--pending")).to_have_count(0)


async def test_counter_near_limit(phone: Phone) -> None:
    expect = _expect()
    await phone.open()
    box = phone.page.get_by_label(TEXTS["input_label"])
    await expect(box).to_have_attribute("maxlength", "2000")
    counter = phone.page.locator("#linli-counter")
    await box.fill("好" * 100)
    await expect(counter).to_be_hidden()
    await box.fill("好" * 1990)
    await expect(counter).to_have_text(TEXTS["chars_left"].replace("{left}", "10"))


async def test_phone_screenshot(phone: Phone, tmp_path: Path) -> None:
    expect = _expect()
    await phone.open()
    await expect(phone.bot_bubbles().first).to_be_visible()
    await phone.page.get_by_role("button", name="1 确认").first.click()
    await expect(phone.bot_bubbles()).to_have_count(2)
    await _send_text(phone, "我家楼下的路灯坏了三天了，晚上出门很不方便。")
    await expect(phone.bot_bubbles()).to_have_count(3)
    await phone.page.get_by_label(TEXTS["input_label"]).blur()
    await _settle(phone)
    # The newest message is scrolled into view above the composer.
    last = await phone.bot_bubbles().last.bounding_box()
    composer = await phone.page.locator(".composer-wrap").bounding_box()
    assert last is not None and composer is not None
    assert last["y"] + last["height"] <= composer["y"] + 1
    folder = _screenshot_dir(tmp_path)
    await phone.page.screenshot(path=str(folder / "chat-390.png"))
    assert (folder / "chat-390.png").stat().st_size > 10_000
