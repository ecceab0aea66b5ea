"""A messenger bridge that signs like a real Standard Webhooks sender, for e2e tests."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.e2e.harness import TEST_SECRET, find_button
from webhooks.generic.crypto import make_headers

PATH = "/webhooks/generic/bridge"


class Bridge:
    """Plays the messenger bridge: signs every message like a real Standard Webhooks sender."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.count = 0

    async def send(
        self,
        user: str,
        *,
        text: str | None = None,
        button: str | None = None,
        msg_id: str | None = None,
    ) -> httpx.Response:
        self.count += 1
        message: dict[str, Any] = {"text": text} if text is not None else {"button": button}
        body = json.dumps(
            {"user": {"id": user, "name": "王阿姨"}, "message": message}, ensure_ascii=False
        ).encode()
        headers = make_headers(TEST_SECRET, body, msg_id=msg_id or f"msg_{user}_{self.count}")
        headers["content-type"] = "application/json"
        return await self.http.post(PATH, content=body, headers=headers)

    async def say(self, user: str, **kwargs: Any) -> list[dict[str, Any]]:
        response = await self.send(user, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()["replies"]


async def onboard(bridge: Bridge, user: str) -> None:
    replies = await bridge.say(user, text="你好")
    assert "同意" in [b["text"] for b in replies[-1]["buttons"]]
    replies = await bridge.say(user, button=find_button(replies, "同意"))
    replies = await bridge.say(user, button=find_button(replies, "梅园街道"))
    replies = await bridge.say(user, button=find_button(replies, "桂花社区"))
    assert "桂花社区" in replies[0]["text"]
    # Onboarding ends with the activity-notice categories (bot/dialogs/interests.py): skip.
    replies = await bridge.say(user, button=find_button(replies, "跳过"))
    assert find_button(replies, "反映需求") == "m.need"
