"""An organizer in a real browser: log in, create and publish an activity through the form,
open the full-screen check-in display and see a 6-digit code (which the page keeps fresh).

Runs the real app under uvicorn on loopback and drives Debian's headless Chromium.
Set ``LINLI_SHOTS`` to keep the screenshots.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from community.catalog import t
from community.clock import FrozenClock
from linli.settings import Settings
from tests.support.browser import SKIP_REASON, chromium_path, launch_browser
from tests.web.test_dashboard_activities_support import START, Seed, seed_world
from web.app import create_app

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def live(sqlite_url: str, tmp_path: Path) -> AsyncIterator[tuple[Any, str, Seed]]:
    settings = Settings(
        env="test", data_dir=tmp_path, database_url=sqlite_url, run_background=False
    )
    app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.05)
    seed = await seed_world(app, FrozenClock(START))  # the real clock runs: times are "明天"
    try:
        yield app, f"http://127.0.0.1:{port}", seed
    finally:
        server.should_exit = True
        await task


async def test_organizer_creates_publishes_and_opens_the_checkin_display(
    live: tuple[Any, str, Seed], tmp_path: Path
) -> None:
    if chromium_path() is None:
        if os.environ.get("LINLI_REQUIRE_BROWSER") == "1":
            pytest.fail(SKIP_REASON)
        pytest.skip(SKIP_REASON)
    _, base, s = live
    shots = tmp_path / "shots"
    shots.mkdir()
    async with launch_browser() as browser:
        page = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        await page.goto(base + "/staff/login")
        await page.fill("#username", "org-a")
        await page.fill("#password", s.passwords["org-a"])
        await page.click("button[type=submit]")
        await page.click(f"nav a:has-text('{t('dacts.nav.activities')}')")
        await page.click(f"a:has-text('{t('dacts.list.new')}')")
        await page.fill("#f-title", "重阳节敬老包饺子")
        await page.fill("#f-place", "东区活动室")
        await page.select_option("#f-community", label="东区社区")
        await page.select_option("#f-category", value="elderly")
        await page.fill("#f-starts-text", "明天上午9点到11点")
        await page.fill("#f-capacity", "20")
        await page.fill("#f-rate", "2")
        await page.screenshot(path=str(shots / "1-form.png"), full_page=True)
        await page.click("form.activity-form button[type=submit]")
        await page.get_by_text(t("dacts.flash.created")).wait_for(timeout=10_000)
        assert "重阳节敬老包饺子" in await page.locator("h1").inner_text()
        await page.click("form[action$='/publish'] button")
        await page.get_by_text(t("dacts.flash.published")).wait_for(timeout=10_000)
        await page.screenshot(path=str(shots / "2-published.png"), full_page=True)

        async with page.expect_response(lambda r: r.url.endswith("checkin.json")) as polled:
            await page.click("#open-checkin")
            code = page.locator("#checkin-code")
            await code.wait_for(timeout=10_000)
            assert re.fullmatch(r"\d{6}", (await code.inner_text()).strip())
        response = await polled.value
        assert response.ok
        assert (await response.json())["code"] == (await code.inner_text()).strip()
        qr_loaded = await page.eval_on_selector("#checkin-qr", "img => img.naturalWidth > 0")
        assert qr_loaded
        assert "checkin--offline" not in (await page.get_attribute("#checkin", "class") or "")
        size = await page.eval_on_selector(
            "#checkin-code", "el => parseFloat(getComputedStyle(el).fontSize)"
        )
        assert size >= 72  # readable from across the room
        await page.screenshot(path=str(shots / "3-checkin-display.png"), full_page=True)
        assert errors == []
    if os.environ.get("LINLI_SHOTS"):
        shutil.copytree(shots, os.environ["LINLI_SHOTS"], dirs_exist_ok=True)
