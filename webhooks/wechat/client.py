"""Active send for a WeChat Official Account: customer-service text messages (platforms.md §3).

Customer-service messages are allowed only within a window after the resident's own action
(48 h after a message, fewer after a menu click or follow), so a notice long after the last
message is refused with 45015: that is permanent for that message, the resident stays
reachable and gets the next one after writing again. Most answers to a resident's message do
not come through here at all: they are passive replies in the callback's HTTP response
(see ``webhooks/wechat/view.py``); this client sends the slow ones and every notice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import httpx

from linli.settings import Settings
from webhooks.wecom.client import WeixinClient

__all__ = ["WechatClient"]


class WechatClient(WeixinClient):
    """``cgi-bin/token`` and ``cgi-bin/message/custom/send`` of one Official Account."""

    channel = "wechat"
    send_path = "/cgi-bin/message/custom/send"
    # 40001 "invalid credential / not latest": also what a token replaced by a newer one gets.
    token_retry_codes = frozenset({40001, 40014, 42001})
    # 40003 invalid openid, 43004 not following any more, 43019 the resident blocked us.
    gone_codes = frozenset({40003, 43004, 43019})
    # 45009 daily API quota, 45011 API called too often. 45047 (per-resident quota) is
    # transient: it clears when the resident writes again, so back off, then give up.
    rate_codes: ClassVar[Mapping[int, float]] = {45009: 300.0, 45011: 10.0}
    transient_codes = WeixinClient.transient_codes | {45047}

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        app_id: str,
        app_secret: str,
        api_url: str = "https://api.weixin.qq.com",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(http, api_url, clock=clock)
        self.app_id = app_id
        self._secret = app_secret

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.AsyncClient) -> WechatClient:
        assert settings.wechat_enabled and settings.wechat_app_secret is not None
        return cls(
            http,
            app_id=settings.wechat_app_id,
            app_secret=settings.wechat_app_secret.get_secret_value(),
            api_url=settings.wechat_api_url,
        )

    async def _fetch_token(self) -> tuple[str, float]:
        params = {"grant_type": "client_credential", "appid": self.app_id, "secret": self._secret}
        return await self._get_token("/cgi-bin/token", params)

    def _text_payload(self, user: str, content: str) -> dict[str, Any]:
        return {"touser": user, "msgtype": "text", "text": {"content": content}}
