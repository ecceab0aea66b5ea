"""The acceptance path in a real browser: a resident chats on the web page, the demo
organization accepts and resolves the request in its dashboard inbox, the resident rates.

Runs the real app under uvicorn on loopback and drives Debian's headless Chromium.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
from pathlib import Path

import pytest
import uvicorn

from tests.e2e.harness import all_requests, make_settings
from tests.support.browser import SKIP_REASON, chromium_path, launch_browser
from web.app import create_app

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def live_app(sqlite_url: str, tmp_path: Path):
    settings = make_settings(sqlite_url, tmp_path, run_background=True)
    app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.05)
    from community.demo import load_demo
    from storage.db import transaction

    async with transaction(app.state.runtime.factory) as session:
        logins = {user: password for user, password, _ in (await load_demo(session)).logins}
    try:
        yield app, f"http://127.0.0.1:{port}", logins
    finally:
        server.should_exit = True
        await task


async def test_resident_org_and_rating_in_the_browser(live_app, tmp_path: Path) -> None:
    if chromium_path() is None:
        if os.environ.get("LINLI_REQUIRE_BROWSER") == "1":
            pytest.fail(SKIP_REASON)
        pytest.skip(SKIP_REASON)
    app, base, logins = live_app
    shots = tmp_path / "shots"
    shots.mkdir()
    async with launch_browser() as browser:
        resident = await browser.new_page(viewport={"width": 390, "height": 844})
        await resident.goto(base + "/")

        def choice(label: str):  # type: ignore[no-untyped-def]
            # The button reads "<number><label>"; match the whole label ("同意" ≠ "不同意").
            return resident.locator(".choice", has_text=re.compile(rf"^\s*\d+\s*{label}\s*$")).last

        async def choose(label: str) -> None:
            button = choice(label)
            await button.wait_for(timeout=10_000)
            await button.click()

        await choose("同意")
        await choose("梅园街道")
        await choose("桂花社区")
        await resident.fill("#linli-input", "楼道里的灯坏了好几天了，晚上上下楼很危险")
        await resident.press("#linli-input", "Enter")
        await choice("确认").wait_for(timeout=10_000)
        assert "梅园物业服务中心" in await resident.locator("#linli-messages").inner_text()
        await resident.screenshot(path=str(shots / "1-proposal.png"))
        await choose("确认")
        await choose("跳过")
        [request] = await all_requests(app)
        assert request.status == "routed"

        org = await (await browser.new_context(viewport={"width": 1024, "height": 800})).new_page()
        await org.goto(base + "/staff/login")
        await org.fill("#username", "org_wuye_my")
        await org.fill("#password", logins["org_wuye_my"])
        await org.click("button[type=submit]")
        await org.click(f"a.num:has-text('{request.number}')")
        await org.screenshot(path=str(shots / "2-org-detail.png"), full_page=True)
        await org.click("form[action$='/accept'] button")
        await org.click("form[action$='/start'] button")
        await org.fill("#resolve-note", "已更换楼道灯泡")
        await org.click("form[action$='/resolve'] button")
        await org.screenshot(path=str(shots / "3-org-resolved.png"), full_page=True)
        [request] = await all_requests(app)
        assert request.status == "resolved"

        # The resident's page learns of it by polling and offers the stars.
        await choice("★★★★★ 非常满意").wait_for(timeout=15_000)
        text = await resident.locator("#linli-messages").inner_text()
        assert "接单" in text and "办理中" in text and "已更换楼道灯泡" in text
        await choose("★★★★★ 非常满意")
        await resident.get_by_text("谢谢您的评价").last.wait_for(timeout=10_000)
        await resident.screenshot(path=str(shots / "4-rated.png"))
        [request] = await all_requests(app)
        assert request.rating == 5
    if os.environ.get("LINLI_SHOTS"):
        import shutil

        shutil.copytree(shots, os.environ["LINLI_SHOTS"], dirs_exist_ok=True)
