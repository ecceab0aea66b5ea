"""Outbox senders for organizations' group robots (WeCom, DingTalk, Feishu custom robots).

An organization's ``notify`` column (interfaces.md §1) may name a group robot; its notices
(new request, accepted, declined, …) are posted to that group. Robots are outbound only:
they cannot carry buttons whose press comes back to us, so a notice with buttons
(接单 / 退回, 处理中 / 已办结) ends with where to act instead — the request's page in the
web dashboard (``<public_url>/staff/requests/<id>``; an organization login lands on its
inbox at ``/staff``). Without a public URL the line says to log in to the dashboard.

Rendering: plain text for WeCom and DingTalk (their markdown has no escaping, and the
notice quotes a resident's words: a 「[点此](http://…)」 typed by a resident must stay text);
a Feishu ``post`` (rich text whose ``text`` elements are literal, with a real link).
One notice is always one platform message — cut to the platform's size, never split —
because the rate limiter (community/ratelimit.py: 20/min per WeCom/DingTalk robot, 100/min
and 5/s per Feishu bot) counts outbox rows, and a second part would be a 21st message.

Answers → ``SendResult``: "too many" (WeCom 45009, DingTalk 130101/410100/660026, Feishu
9499 "too many request"/11232) → ``retry_after_s`` (DingTalk mutes a robot for 10 minutes,
so 600 s there), which pauses that robot in the limiter and keeps the row for later — never
a tight loop, and it does not use up attempts; a key, token, signature or keyword the
platform refuses → permanent (kept with its code for the staff); network errors and 5xx →
retried with backoff. The address holds a secret: it is never logged.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from community.catalog import t
from community.outbox import Sender, SendResult
from linli.settings import Settings
from storage.models import OutboxMessage
from webhooks.dingtalk.crypto import signed_query
from webhooks.feishu.crypto import bot_signed_fields

__all__ = [
    "ROBOT_CHANNELS",
    "BadAddress",
    "RobotAddress",
    "RobotNotice",
    "RobotSender",
    "parse_address",
    "render_notice",
    "robot_senders",
]

log = logging.getLogger(__name__)
ROBOT_CHANNELS = ("wecom-robot", "dingtalk-robot", "feishu-robot")
# Bytes of UTF-8 per message: WeCom text 2048 (§2.6); DingTalk and Feishu allow more, but a
# notice longer than this is better read in the dashboard (Feishu's whole body ≤ 20 KB).
LIMITS = {"wecom-robot": 2048, "dingtalk-robot": 4000, "feishu-robot": 4000}
DINGTALK_MUTED_S = 600.0  # "exceeding throttles the robot for 10 min" (§4.3)
RATE_WAIT_S = 60.0
_KEY_RE = re.compile(r"[A-Za-z0-9_-]{1,128}", re.ASCII)
_SECRET_RE = re.compile(r"[\x21-\x7e]{1,256}", re.ASCII)
_ORG_ACTION = re.compile(r"^o[adpr]\.(\d+)$")  # 接单/退回/处理中/已办结 of request <id>


class BadAddress(ValueError):
    """The notify address of a robot is not usable (no key, odd characters)."""


@dataclass(frozen=True, slots=True)
class RobotAddress:
    key: str  # WeCom key, DingTalk access_token, Feishu hook id
    secret: str | None = None  # DingTalk "SEC…" / Feishu signing secret


def _query_value(url: str, name: str) -> str:
    values = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get(name) or [""]
    return values[0]


def parse_address(channel: str, address: str) -> RobotAddress:
    """``<key>``, ``<token>#<secret>`` (interfaces.md §1) or ``<token>:<secret>``; a pasted
    webhook URL works too (``…/send?key=``, ``…?access_token=``, ``…/hook/<id>``)."""
    raw = address.strip()
    is_url = raw.lower().startswith(("http://", "https://"))
    secret: str | None = None
    if channel != "wecom-robot":
        if "#" in raw:
            raw, _, secret = raw.partition("#")
        elif not is_url and ":" in raw:
            raw, _, secret = raw.partition(":")
        secret = (secret.strip() or None) if secret is not None else None
    if channel == "wecom-robot":
        key = _query_value(raw, "key") if is_url else raw
    elif channel == "dingtalk-robot":
        key = _query_value(raw, "access_token") if is_url else raw
    elif channel == "feishu-robot":
        key = urllib.parse.urlsplit(raw).path.rsplit("/hook/", 1)[-1] if is_url else raw
    else:
        raise BadAddress("unknown robot channel")
    if not _KEY_RE.fullmatch(key.strip()):
        raise BadAddress("bad key")
    if secret is not None and not _SECRET_RE.fullmatch(secret):
        raise BadAddress("bad secret")
    return RobotAddress(key.strip(), secret)


# ---- rendering ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RobotNotice:
    """A notice as a robot shows it: body, and where to act when it asked for an answer."""

    body: str
    labels: str = ""  # the buttons' labels, 「接单、退回」; empty: nothing to do
    url: str | None = None

    @property
    def title(self) -> str:
        first = self.body.strip().split("\n", 1)[0]
        return first[:60] or "邻里"

    def action_line(self) -> str:
        if not self.labels:
            return ""
        if self.url:
            return t("robot.act", labels=self.labels, url=self.url)
        return t("robot.act_login", labels=self.labels)

    def text(self, limit: int) -> str:
        """The whole notice as plain text within ``limit`` UTF-8 bytes (the action kept)."""
        tail = self.action_line()
        return _fit(self.body.strip(), limit - len(tail.encode()) - 2) + (
            f"\n\n{tail}" if tail else ""
        )

    def feishu_post(self, limit: int) -> dict[str, Any]:
        """Feishu rich text: literal text lines, the dashboard as a real link."""
        body = _fit(self.body.strip(), limit - 512)
        lines: list[list[dict[str, str]]] = [
            [{"tag": "text", "text": line}] for line in body.split("\n")[1:] if line.strip()
        ]
        if self.labels and self.url:
            lead = t("robot.act_link", labels=self.labels)
            lines.append(
                [{"tag": "text", "text": lead}, {"tag": "a", "text": self.url, "href": self.url}]
            )
        elif self.labels:
            lines.append([{"tag": "text", "text": self.action_line()}])
        return {"post": {"zh_cn": {"title": self.title, "content": lines}}}


def _fit(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` bytes, else its longest prefix plus a 「……」 note."""
    if len(text.encode("utf-8")) <= limit:
        return text
    more = t("robot.more")
    room = max(0, limit - len(more.encode("utf-8")))
    size, cut = 0, 0
    for index, char in enumerate(text):
        size += len(char.encode("utf-8"))
        if size > room:
            break
        cut = index + 1
    return text[:cut].rstrip() + more


def _label(button: Mapping[str, Any]) -> str:
    return " ".join(str(button.get("text", "")).split())


def render_notice(text: str, buttons: Sequence[Mapping[str, Any]], public_url: str) -> RobotNotice:
    """The robot form of an outbox row: buttons become one 「到工作台处理」 line."""
    labels = "、".join(label for b in buttons if (label := _label(b)))
    if not labels:
        return RobotNotice(text)
    url = None
    if public_url:
        base = public_url.rstrip("/") + "/staff"
        ids = {m.group(1) for b in buttons if (m := _ORG_ACTION.match(str(b.get("payload", ""))))}
        url = f"{base}/requests/{ids.pop()}" if len(ids) == 1 else base
    return RobotNotice(text, labels, url)


# ---- sending --------------------------------------------------------------------------------
def _code(data: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = data.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


class RobotSender:
    """The three robot senders of one process, sharing its HTTP client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        wecom_api_url: str = "https://qyapi.weixin.qq.com",
        dingtalk_oapi_url: str = "https://oapi.dingtalk.com",
        feishu_api_url: str = "https://open.feishu.cn",
        public_url: str = "",
        now: Callable[[], float] = time.time,
    ) -> None:
        self.http = http
        self.wecom_api_url = wecom_api_url.rstrip("/")
        self.dingtalk_oapi_url = dingtalk_oapi_url.rstrip("/")
        self.feishu_api_url = feishu_api_url.rstrip("/")
        self.public_url = public_url
        self.now = now

    def senders(self) -> dict[str, Sender]:
        return {
            "wecom-robot": self.send_wecom,
            "dingtalk-robot": self.send_dingtalk,
            "feishu-robot": self.send_feishu,
        }

    def _prepare(self, message: OutboxMessage) -> tuple[RobotAddress, RobotNotice]:
        address = parse_address(message.channel, message.target)
        notice = render_notice(message.text or "", message.buttons or [], self.public_url)
        return address, notice

    async def _post(self, url: str, payload: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON object answered); status 0 when nothing usable came back."""
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {"content-type": "application/json; charset=utf-8"}
        try:
            response = await self.http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return 0, {"error": type(exc).__name__}
        try:
            data = response.json()
        except ValueError:
            data = None
        return response.status_code, data if isinstance(data, dict) else {}

    async def send_wecom(self, message: OutboxMessage) -> SendResult:
        try:
            address, notice = self._prepare(message)
        except BadAddress as exc:
            return SendResult(ok=False, permanent=True, error=f"wecom-robot: {exc}")
        url = f"{self.wecom_api_url}/cgi-bin/webhook/send?key={urllib.parse.quote(address.key)}"
        text = notice.text(LIMITS["wecom-robot"])
        status, data = await self._post(url, {"msgtype": "text", "text": {"content": text}})
        code = _code(data, "errcode")
        return _outcome("wecom-robot", status, code, data.get("errmsg"), rate={45009: RATE_WAIT_S})

    async def send_dingtalk(self, message: OutboxMessage) -> SendResult:
        try:
            address, notice = self._prepare(message)
        except BadAddress as exc:
            return SendResult(ok=False, permanent=True, error=f"dingtalk-robot: {exc}")
        url = f"{self.dingtalk_oapi_url}/robot/send?access_token={urllib.parse.quote(address.key)}"
        if address.secret:
            url += "&" + signed_query(address.secret, now_ms=int(self.now() * 1000))
        payload = {
            "msgtype": "text",
            "text": {"content": notice.text(LIMITS["dingtalk-robot"])},
            "at": {"atMobiles": [], "atUserIds": [], "isAtAll": False},
        }
        status, data = await self._post(url, payload)
        code = _code(data, "errcode")
        rate = dict.fromkeys((130101, 410100, 660026), DINGTALK_MUTED_S)
        return _outcome("dingtalk-robot", status, code, data.get("errmsg"), rate=rate)

    async def send_feishu(self, message: OutboxMessage) -> SendResult:
        try:
            address, notice = self._prepare(message)
        except BadAddress as exc:
            return SendResult(ok=False, permanent=True, error=f"feishu-robot: {exc}")
        url = f"{self.feishu_api_url}/open-apis/bot/v2/hook/{urllib.parse.quote(address.key)}"
        payload: dict[str, Any] = {}
        if address.secret:
            payload |= bot_signed_fields(address.secret, now=int(self.now()))
        payload |= {"msg_type": "post", "content": notice.feishu_post(LIMITS["feishu-robot"])}
        status, data = await self._post(url, payload)
        code = _code(data, "code", "StatusCode")  # "StatusCode": the older answer format
        text = str(data.get("msg") or data.get("StatusMessage") or "")
        rate = {11232: RATE_WAIT_S}
        if code == 9499 and "too many" in text.lower():  # 9499 is also "bad request"
            rate[9499] = RATE_WAIT_S
        return _outcome("feishu-robot", status, code, text, rate=rate)


def _outcome(
    channel: str, status: int, code: int | None, errmsg: object, *, rate: Mapping[int, float]
) -> SendResult:
    """One robot answer as the outbox's outcome (see the module docstring)."""
    error = f"{channel}: http {status} code {code} {str(errmsg or '')[:160]}".strip()
    if status == 200 and code == 0:
        return SendResult(ok=True)
    if code is not None and code in rate:
        log.warning("%s rate limited (code %s)", channel, code)
        return SendResult(ok=False, retry_after_s=rate[code], error=error)
    if status == 429:
        return SendResult(ok=False, retry_after_s=RATE_WAIT_S, error=error)
    if status == 0 or status >= 500 or code == -1:  # no answer, server trouble, "system busy"
        return SendResult(ok=False, error=error)
    log.warning("%s refused a message: http %s code %s", channel, status, code)
    return SendResult(ok=False, permanent=True, error=error)


def robot_senders(settings: Settings, http: httpx.AsyncClient) -> dict[str, Sender]:
    """The outbox senders of the three robot channels (always on: they need no app)."""
    sender = RobotSender(
        http,
        wecom_api_url=settings.wecom_api_url,
        dingtalk_oapi_url=settings.dingtalk_oapi_url,
        feishu_api_url=settings.feishu_api_url,
        public_url=settings.public_url,
    )
    return sender.senders()
