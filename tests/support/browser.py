"""Headless Chromium for browser tests, through Playwright's async Python API.

Playwright's own browser download cannot run here, so we drive the distribution's
Chromium (Debian: ``apt-get install chromium``) via ``executable_path``.

Usage::

    from tests.support.browser import chromium_path, launch_browser

    if chromium_path() is None:
        pytest.skip(SKIP_REASON)
    async with launch_browser() as browser:
        page = await browser.new_page(viewport={"width": 390, "height": 844})
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.async_api import Browser

__all__ = ["CHROMIUM_ARGS", "SKIP_REASON", "chromium_path", "launch_browser"]

SKIP_REASON = "headless Chromium not installed (apt-get install chromium)"

CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_path() -> str | None:
    """Path of a usable Chromium binary, or ``None`` when absent.

    ``LINLI_CHROMIUM`` overrides the lookup (e.g. a non-standard install location).
    Returns ``None`` too when the Playwright package itself is missing.
    """
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return None
    override = os.environ.get("LINLI_CHROMIUM")
    if override:
        return override if Path(override).is_file() and os.access(override, os.X_OK) else None
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    fallback = Path("/usr/bin/chromium")
    return str(fallback) if fallback.is_file() else None


@asynccontextmanager
async def launch_browser(
    *, extra_args: Sequence[str] = (), timeout_ms: float = 30_000
) -> AsyncIterator[Browser]:
    """Start Playwright and a headless Chromium; close both on exit.

    Raises ``RuntimeError`` when no Chromium is installed (tests should check
    :func:`chromium_path` first and skip).
    """
    from playwright.async_api import async_playwright

    path = chromium_path()
    if path is None:
        raise RuntimeError(SKIP_REASON)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=path,
            headless=True,
            args=[*CHROMIUM_ARGS, *extra_args],
            timeout=timeout_ms,
        )
        try:
            yield browser
        finally:
            await browser.close()
