"""The web chat's JSON API end to end: a 微心愿 and a need from the page's point of view."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from community.audit import Actor
from community.requests import accept_request, resolve_request
from storage.db import transaction
from storage.models import RequestEvent
from tests.e2e.harness import all_requests, client, make_settings, running_app


class Page:
    """Does what chat.js does: history on load, send with a client_msg_id, poll updates."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.last_id = 0

    def _seen(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if messages:
            self.last_id = max(self.last_id, *(m["id"] for m in messages))
        return messages

    async def load(self) -> list[dict[str, Any]]:
        await self.http.get("/")
        response = await self.http.get("/api/chat/history")
        assert response.status_code == 200
        return self._seen(response.json()["messages"])

    async def send(
        self,
        *,
        text: str | None = None,
        button: str | None = None,
        client_msg_id: str | None = None,
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"client_msg_id": client_msg_id or str(uuid.uuid4())}
        body.update({"text": text} if text is not None else {"button": button, "label": "x"})
        response = await self.http.post("/api/chat/send", json=body)
        assert response.status_code == 200, response.text
        return self._seen(response.json()["messages"])

    async def poll(self) -> list[dict[str, Any]]:
        response = await self.http.get("/api/chat/updates", params={"after": self.last_id})
        return self._seen(response.json()["messages"])


def press(messages: list[dict[str, Any]], label: str) -> str:
    for message in reversed(messages):
        for b in message["buttons"]:
            if b["text"] == label:
                return b["payload"]
    raise AssertionError(f"no button {label!r}")


@pytest.mark.parametrize(
    ("text", "org_name"),
    [
        ("我的微心愿是给楼里独居的李奶奶送几顿热乎的午饭", "夕阳红居家养老服务中心"),
        ("家里水管漏水了 想找人上门修一下", "邻里帮便民服务社"),
    ],
)
async def test_web_chat_full_loop(database_url: str, tmp_path, text: str, org_name: str) -> None:
    async with running_app(make_settings(database_url, tmp_path)) as app, client(app) as http:
        page = Page(http)
        welcome = await page.load()
        assert welcome[0]["from"] == "bot" and "邻里" in welcome[0]["text"]
        assert (await page.load())[-1]["id"] == welcome[-1]["id"]  # reload: same history
        messages = await page.send(button=press(welcome, "同意"))
        assert messages[0]["from"] == "user"
        messages = await page.send(button=press(messages, "梅园街道"))
        messages = await page.send(button=press(messages, "桂花社区"))
        messages = await page.send(text=text)
        assert org_name in messages[-1]["text"]
        messages = await page.send(button=press(messages, "确认"))
        messages = await page.send(text="13900001111")
        assert "电话已记下" in messages[-2]["text"]

        [request] = await all_requests(app)
        assert request.status == "routed" and request.contact_phone == "13900001111"
        async with transaction(app.state.runtime.factory) as session:
            audit = await session.scalars(
                select(RequestEvent.action).where(RequestEvent.request_id == request.id)
            )
            assert "add_phone" in list(audit)  # the change is audited
        async with transaction(app.state.runtime.factory) as session:
            actor = Actor("org", "test")
            await accept_request(session, request.id, request.org_id, actor)
        async with transaction(app.state.runtime.factory) as session:
            await resolve_request(session, request.id, request.org_id, actor, "已安排志愿者")
        updates = await page.poll()
        assert any("接单" in m["text"] for m in updates)
        assert "已安排志愿者" in updates[-1]["text"]
        messages = await page.send(button=press(updates, "★★★★★ 非常满意"))
        assert "谢谢" in messages[-1]["text"]
        [request] = await all_requests(app)
        assert request.rating == 5


async def test_retry_with_same_client_id_acts_once(sqlite_url: str, tmp_path) -> None:
    async with running_app(make_settings(sqlite_url, tmp_path)) as app, client(app) as http:
        page = Page(http)
        messages = await page.load()
        for label in ("同意", "梅园街道", "桂花社区"):
            messages = await page.send(button=press(messages, label))
        messages = await page.send(text="楼道灯坏了")
        confirm = press(messages, "确认")
        first = await page.send(button=confirm, client_msg_id="same-id")
        again = await page.send(button=confirm, client_msg_id="same-id")
        assert [m["id"] for m in again] == [m["id"] for m in first]
        assert len(await all_requests(app)) == 1


async def test_api_rejects_bad_requests(sqlite_url: str, tmp_path) -> None:
    async with running_app(make_settings(sqlite_url, tmp_path)) as app, client(app) as http:
        body = {"client_msg_id": "a", "text": "你好"}
        assert (await http.post("/api/chat/send", json=body)).status_code == 401  # no cookie
        await http.get("/")
        assert (
            await http.post("/api/chat/send", content=b"{}", headers={"content-type": "text/plain"})
        ).status_code == 415
        bad = await http.post(
            "/api/chat/send", content=b"{oops", headers={"content-type": "application/json"}
        )
        assert bad.status_code == 422 and "error" in bad.json()
        big = await http.post(
            "/api/chat/send", content=b"x" * 20000, headers={"content-type": "application/json"}
        )
        assert big.status_code == 413
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["ready"] is True
        metrics = await http.get("/metrics")
        assert 'linli_http_requests_total{route="/api/chat/send",status="413"}' in metrics.text
