"""An in-memory fake of the resident chat HTTP API, for browser tests of the chat page.

It serves the real template (web/templates/chat.html, rendered with the real catalog's
``web.*`` texts) and the real static folder, and implements the JSON contract the page
talks to:

* ``GET  /api/chat/history``           -> ``{"messages": [...]}`` (welcome with buttons)
* ``POST /api/chat/send``              -> ``{"messages": [echo, bot reply]}``, deduped by
  ``client_msg_id``
* ``GET  /api/chat/updates?after=<id>`` -> ``{"messages": [...]}``

The bot is an echo bot whose replies carry two buttons. Tests inspect
:attr:`FakeChatState.received` and push notices with :meth:`FakeChatState.push`; the
``fail_*`` counters make the next requests fail to exercise the page's error handling.

The server runs under uvicorn on 127.0.0.1 with an ephemeral port in a background
thread (see :func:`serve_fake_chat`), so it keeps answering while the test awaits the
browser.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from community import catalog

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = REPO_ROOT / "web" / "templates"
STATIC_DIR = REPO_ROOT / "web" / "static"

WELCOME_TEXT = "您好！我是邻里小助手。\n请问您想反映什么问题？"
WELCOME_BUTTONS = [
    {"text": "确认", "payload": "cf:welcome"},
    {"text": "换一个类别", "payload": "cat:other"},
]
MAX_TEXT = 2000


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class FakeChatState:
    """Everything the fake server knows; safe to use from the test's thread."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    fail_history: int = 0  # answer the next N history requests with 503
    fail_send_after_store: int = 0  # store the next N sends, then answer 503 (lost reply)
    throttle_sends: int = 0  # answer the next N sends with 429
    _replies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not self.messages:
            self._add("bot", WELCOME_TEXT, WELCOME_BUTTONS)

    def _add(
        self, sender: str, text: str, buttons: list[dict[str, str]] | None = None
    ) -> dict[str, Any]:
        msg = {
            "id": len(self.messages) + 1,
            "from": sender,
            "text": text,
            "buttons": list(buttons or []),
            "at": _now(),
        }
        self.messages.append(msg)
        return msg

    def push(self, text: str, buttons: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """Add a bot notice that the page should pick up by polling /updates."""
        with self._lock:
            return dict(self._add("bot", text, buttons))

    def sends(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self.received]

    def count(self, prefix: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.startswith(prefix))

    # -- request handling (called from the server thread) --------------------------------
    def history(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self.messages]

    def updates(self, after: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self.messages if m["id"] > after]

    def send(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        with self._lock:
            self.received.append(dict(body))
            cid = str(body.get("client_msg_id") or "")
            if cid in self._replies:
                return self._replies[cid]
            if "button" in body:
                payload = str(body["button"])
                label = str(body.get("label") or payload)
                echo = self._add("user", label)
                reply = self._add("bot", f"您选择了：{label}（{payload}）")
            else:
                text = str(body.get("text") or "")
                echo = self._add("user", text)
                reply = self._add(
                    "bot",
                    f"收到：{text}",
                    [
                        {"text": "确认", "payload": f"cf:{echo['id']}"},
                        {"text": "换一个类别", "payload": "cat:other"},
                    ],
                )
            out = [dict(echo), dict(reply)]
            self._replies[cid] = out
            return out


def create_app(state: FakeChatState) -> FastAPI:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    def error(status: int, reason: str, message: str | None = None) -> JSONResponse:
        body: dict[str, Any] = {"error": reason}
        if message is not None:
            body["message"] = message
        return JSONResponse(body, status_code=status)

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        html = env.get_template("chat.html").render(
            t=catalog.section("web"), static_url="/static", csrf=""
        )
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @app.get("/api/chat/history")
    async def history() -> JSONResponse:
        state.requests.append("history")
        if state.fail_history > 0:
            state.fail_history -= 1
            return error(503, "unavailable")
        return JSONResponse({"messages": state.history()})

    @app.get("/api/chat/updates")
    async def updates(after: int = 0) -> JSONResponse:
        state.requests.append(f"updates:{after}")
        return JSONResponse({"messages": state.updates(after)})

    @app.post("/api/chat/send")
    async def send(request: Request) -> JSONResponse:
        state.requests.append("send")
        try:
            body = await request.json()
        except ValueError:
            return error(400, "bad_json")
        if not isinstance(body, dict) or not body.get("client_msg_id"):
            return error(400, "bad_request")
        if "text" in body and len(str(body["text"])) > MAX_TEXT:
            return error(413, "too_long", catalog.t("web.too_long"))  # raw, like web/chat.py
        if state.throttle_sends > 0:
            state.throttle_sends -= 1
            return error(429, "too_fast")
        messages = state.send(body)
        if state.fail_send_after_store > 0:
            state.fail_send_after_store -= 1
            return error(503, "unavailable")
        return JSONResponse({"messages": messages})

    return app


@contextmanager
def serve_fake_chat(state: FakeChatState | None = None) -> Iterator[tuple[str, FakeChatState]]:
    """Run the fake API in a background thread; yields ``(base_url, state)``."""
    state = state or FakeChatState()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(state),
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        http="h11",
        loop="asyncio",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="fake-chat-api", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake chat API did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}", state
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
