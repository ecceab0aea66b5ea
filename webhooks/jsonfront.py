"""The inbound pipeline of the JSON platforms (DingTalk, Feishu): WeCom's front, JSON inside.

``webhooks/wecom/front.py`` already does everything after verification that these platforms
need — durable inbox before the acknowledgment, per-resident order, the dialog step after
the response, the reply through the outbox under ``reply:<channel>:<inbox id>``, duplicates
answered from the stored result, recovery of rows a crash left pending. Only two things
differ: the acknowledgment is a JSON body, and a stored payload is re-read with the
platform's own parser when it is replayed (the XML parser would mark it failed).
"""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import Response
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTasks

from storage import inbox
from webhooks.errors import WebhookError
from webhooks.wecom.front import Inbound, XmlFront

if TYPE_CHECKING:
    from linli.runtime import Runtime

__all__ = ["BadPayload", "JsonFront", "Parse", "json_front_for", "load_object"]

log = logging.getLogger(__name__)
MAX_JSON_BYTES = 64 * 1024  # the events are small; a bigger body is refused before parsing

Parse = Callable[[str], Inbound]


class BadPayload(WebhookError):
    """Authenticated, but not JSON of the shape the platform documents."""

    default_reason = "bad_payload"


def load_object(raw: bytes | str) -> dict[str, Any]:
    """A JSON object, or BadPayload (arrays, numbers, invalid UTF-8 and bad JSON alike)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise BadPayload("bad_json") from exc
    if not isinstance(data, dict):
        raise BadPayload("not_an_object")
    return data


class JsonFront(XmlFront):
    """One JSON channel of one runtime; ``parse`` turns a stored payload into an Inbound."""

    def __init__(self, runtime: Runtime, channel: str, parse: Parse, ack: dict[str, Any]) -> None:
        super().__init__(runtime, channel, ack_body="")
        self.parse = parse
        self.ack_json = ack

    def ack(self, background: BackgroundTasks | None = None) -> Response:
        return JSONResponse(self.ack_json, background=background)

    async def recover(self) -> int:
        """Replay this channel's events stored but never processed (a crash after the ack)."""
        engine = self.runtime.engine
        try:
            rows = await inbox.stale_pending(engine, self.runtime.settings.inbox_recovery_seconds)
        except Exception:
            log.exception("%s recovery failed", self.channel)
            return 0
        count = 0
        for row in rows:
            if row["source"] != self.channel or row["id"] in self._inflight:
                continue
            await inbox.mark_attempt(engine, row["id"])
            try:
                inbound = self.parse(row["payload"])
            except WebhookError as exc:
                await inbox.finish_event(engine, row["id"], error=exc.reason)
                continue
            if inbound.key is None:
                await inbox.finish_event(engine, row["id"], error="nothing_to_do")
                continue
            await self._process(row["id"], inbound)
            count += 1
        return count


_FRONTS: weakref.WeakKeyDictionary[Runtime, dict[str, JsonFront]] = weakref.WeakKeyDictionary()


def json_front_for(runtime: Runtime, channel: str, parse: Parse, ack: dict[str, Any]) -> JsonFront:
    """The one front of ``channel`` in this runtime (created on the first callback)."""
    fronts = _FRONTS.setdefault(runtime, {})
    front = fronts.get(channel)
    if front is None:
        front = fronts[channel] = JsonFront(runtime, channel, parse, ack)
    return front
