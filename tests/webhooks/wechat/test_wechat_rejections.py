"""Hostile and broken WeChat callbacks in plaintext and safe mode: refused with their status,
nothing stored or sent, the account keeps working. URL verification with the official vector."""

from __future__ import annotations

import base64
import struct
import urllib.parse
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.webhooks.wechat.wechat_support import AES_KEY, APP_ID, TOKEN, Follower, wechat_world
from tests.webhooks.wecom.wecom_support import counts
from webhooks.wecom.crypto import encrypt, parse_aes_key, sha1_signature
from webhooks.xmlsafe import build_xml

OTHER_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
TS, NONCE = "1714037059", "486452656"
ENTITIES = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa">'
    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    "<xml><ToUserName>gh</ToUserName><FromUserName>&b;</FromUserName>"
    "<MsgType>text</MsgType><Content>&b;</Content><MsgId>1</MsgId></xml>"
)


def _plain_query(token: str = TOKEN, **extra: str) -> str:
    params = {"signature": sha1_signature(token, TS, NONCE), "timestamp": TS, "nonce": NONCE}
    return urllib.parse.urlencode(params | extra)


def _safe(encrypted: str, token: str = TOKEN) -> tuple[str, bytes]:
    query = _plain_query(
        encrypt_type="aes", msg_signature=sha1_signature(token, TS, NONCE, encrypted)
    )
    return query, build_xml({"ToUserName": "gh_1f3a5c7e9b2d", "Encrypt": encrypted}).encode()


def _raw_cipher(raw: bytes) -> str:
    key = parse_aes_key(AES_KEY)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(raw) + encryptor.finalize()).decode()


def plaintext_cases(message: str) -> list[tuple[str, str, bytes, int]]:
    body = message.encode()
    good = _plain_query()
    sig = urllib.parse.parse_qs(good)["signature"][0]
    return [
        (
            "signature off by one",
            good.replace(sig, sig[:-1] + ("1" if sig[-1] == "0" else "0")),
            body,
            403,
        ),
        ("wrong token", _plain_query(token="nottoken"), body, 403),
        ("no signature", f"timestamp={TS}&nonce={NONCE}", body, 403),
        ("another timestamp", good.replace(TS, "1714037060"), body, 403),
        ("entities", good, ENTITIES.encode(), 400),
        (
            "not UTF-8",
            good,
            message.replace("你好", "").encode().replace(b"text]]", b"\xff\xfe]]"),
            400,
        ),
        ("no sender", good, b"<xml><MsgType>text</MsgType><Content>x</Content></xml>", 400),
        ("not XML", good, b"hello", 400),
        ("empty body", good, b"", 400),
        ("over 64 KiB", good, b"<xml>" + b"A" * (64 * 1024) + b"</xml>", 413),
    ]


def safe_cases(message: str) -> list[tuple[str, str, bytes, int]]:
    key = parse_aes_key(AES_KEY)
    good = encrypt(key, message, APP_ID)
    query, body = _safe(good)
    sig = urllib.parse.parse_qs(query)["msg_signature"][0]
    inner = message.encode()
    layout = b"0123456789abcdef" + struct.pack(">I", len(inner)) + inner + APP_ID.encode()
    bad_pad = _raw_cipher(layout + b"\x00" * (32 - len(layout) % 32))
    truncated = base64.b64encode(base64.b64decode(good)[:-16]).decode()
    return [
        (
            "msg_signature off by one",
            query.replace(sig, sig[:-1] + ("1" if sig[-1] == "0" else "0")),
            body,
            403,
        ),
        ("signed with another token", *_safe(good, token="nottoken"), 403),
        ("plaintext signature only", _plain_query(encrypt_type="aes"), body, 403),
        ("truncated ciphertext", *_safe(truncated), 403),
        ("wrong padding", *_safe(bad_pad), 403),
        ("another AppID inside", *_safe(encrypt(key, message, "wx_someone_else")), 403),
        ("another AES key", *_safe(encrypt(parse_aes_key(OTHER_KEY), message, APP_ID)), 403),
        ("not base64", *_safe("!!notbase64!!"), 403),
        ("entities in the envelope", query, ENTITIES.encode(), 400),
        ("entities inside the ciphertext", *_safe(encrypt(key, ENTITIES, APP_ID)), 400),
        ("no encrypt_type", _plain_query(), message.encode(), 403),
        ("over 64 KiB", query, b"<xml>" + b"A" * (64 * 1024) + b"</xml>", 413),
    ]


async def test_hostile_callbacks_store_nothing(database_url: str, tmp_path: Path) -> None:
    for safe in (False, True):
        data_dir = tmp_path / ("safe" if safe else "plain")
        # The same database for both modes: counts are compared with what the first left.
        async with wechat_world(database_url, data_dir, safe=safe, passive_s=0.0) as world:
            before = await counts(world.app)
            message = Follower(world).message(FromUserName="oMallory")
            cases = safe_cases(message) if safe else plaintext_cases(message)
            for name, query, body, status in cases:
                response = await world.platform.post_raw(query, body)
                assert response.status_code == status, (safe, name, response.text)
            await world.deliver()
            assert await counts(world.app) == before
            assert world.fake.sent == [] and world.fake.token_calls["wechat"] == 0
            texts = await Follower(world, "oAfter").say("你好")  # still working
            assert "同意" in texts[0]
            assert (await counts(world.app))[1] == 0  # and no request from the hostile ones


# ---- URL verification (GET), platforms.md §3 and §7 ---------------------------------------------
async def test_url_verification(sqlite_url: str, tmp_path: Path) -> None:
    """WeChat's own example: token AAAAA; echostr comes back verbatim, in safe mode too."""
    query = "signature=f464b24fc39322e44b38aa78f5edd27bd1441696&echostr=4375120948345356249"
    query += "&timestamp=1714036504&nonce=1514711492"
    for safe in (False, True):
        async with wechat_world(
            sqlite_url.replace("linli.db", f"v{safe}.db"), tmp_path, safe=safe, wechat_token="AAAAA"
        ) as world:
            response = await world.http.get(f"/webhooks/wechat?{query}")
            assert response.status_code == 200 and response.content == b"4375120948345356249"
            assert response.headers["content-type"].startswith("text/plain")
            for bad in (
                query.replace("f464b2", "f464b3"),
                query.replace("nonce=1514711492", "nonce=1514711493"),
                "echostr=4375120948345356249",
            ):
                assert (await world.http.get(f"/webhooks/wechat?{bad}")).status_code == 403
            assert await counts(world.app) == (0, 0, 0)
