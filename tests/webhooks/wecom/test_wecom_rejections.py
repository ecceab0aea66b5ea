"""Hostile and broken WeCom callbacks: each is refused with its status, nothing is stored,
nothing is sent, and the channel keeps working. Plus URL verification with the official vector."""

from __future__ import annotations

import base64
import struct
import urllib.parse
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.support.fake_wecom import WecomCallbacks
from tests.webhooks.wecom.wecom_support import (
    AES_KEY,
    CORP_ID,
    TOKEN,
    Member,
    counts,
    fixture,
    wecom_world,
)
from webhooks.wecom.crypto import encrypt, parse_aes_key, sha1_signature
from webhooks.xmlsafe import build_xml

OTHER_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa">'
    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    "<xml><ToUserName>&c;</ToUserName><Encrypt>&c;</Encrypt></xml>"
)
XXE = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    "<xml><FromUserName>&x;</FromUserName><MsgType>text</MsgType><Content>hi</Content></xml>"
)


def _query(encrypted: str, token: str = TOKEN, ts: str = "1714037059", nonce: str = "77") -> str:
    signature = sha1_signature(token, ts, nonce, encrypted)
    return urllib.parse.urlencode({"msg_signature": signature, "timestamp": ts, "nonce": nonce})


def _signed_body(encrypted: str, token: str = TOKEN) -> tuple[str, bytes]:
    return _query(encrypted, token), build_xml(
        {"ToUserName": CORP_ID, "Encrypt": encrypted}
    ).encode()


def _raw_cipher(raw: bytes) -> str:
    """AES-CBC of ``raw`` as is (no padding added): to forge what encrypt() would refuse."""
    key = parse_aes_key(AES_KEY)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(raw) + encryptor.finalize()).decode()


def hostile_cases() -> list[tuple[str, str, bytes, int]]:
    message = fixture("text_message.xml", FromUserName="Mallory")
    key = parse_aes_key(AES_KEY)
    good = encrypt(key, message, CORP_ID)
    query, body = _signed_body(good)
    sig = urllib.parse.parse_qs(query)["msg_signature"][0]
    off_by_one = query.replace(sig, sig[:-1] + ("0" if sig[-1] != "0" else "1"))
    raw = good.encode()
    truncated = base64.b64encode(base64.b64decode(good)[:-16]).decode()
    inner = message.encode()
    layout = b"0123456789abcdef" + struct.pack(">I", len(inner)) + inner + CORP_ID.encode()
    bad_pad = _raw_cipher(layout + b"\x00" * (32 - len(layout) % 32))
    return [
        ("signature off by one hex digit", off_by_one, body, 403),
        ("signed with another token", *_signed_body(good, token="WrongToken"), 403),
        ("no signature at all", "timestamp=1&nonce=2", body, 403),
        ("signature of another body", query, body.replace(raw, raw[:-8] + b"AAAAAAA="), 403),
        ("truncated ciphertext", *_signed_body(truncated), 403),
        ("wrong padding", *_signed_body(bad_pad), 403),
        ("another CorpID inside", *_signed_body(encrypt(key, message, "ww_other_corp")), 403),
        (
            "another AES key",
            *_signed_body(encrypt(parse_aes_key(OTHER_KEY), message, CORP_ID)),
            403,
        ),
        ("not base64", *_signed_body("%%%not*base64%%%"), 403),
        ("empty Encrypt", *_signed_body(""), 403),
        ("entities in the envelope", query, BILLION_LAUGHS.encode(), 400),
        ("DTD inside the ciphertext", *_signed_body(encrypt(key, XXE, CORP_ID)), 400),
        (
            "no sender inside",
            *_signed_body(encrypt(key, "<xml><MsgType>text</MsgType></xml>", CORP_ID)),
            400,
        ),
        ("plaintext is not XML", *_signed_body(encrypt(key, "hello", CORP_ID)), 400),
        ("empty body", query, b"", 400),
        ("binary garbage", query, bytes(range(256)), 400),
        ("over 64 KiB", query, b"<xml>" + b"A" * (64 * 1024) + b"</xml>", 413),
    ]


async def test_hostile_callbacks_store_nothing(database_url: str, tmp_path: Path) -> None:
    async with wecom_world(database_url, tmp_path) as world:
        platform: WecomCallbacks = world.platform
        for name, query, body, status in hostile_cases():
            response = await platform.post_raw(query, body)
            assert response.status_code == status, (name, response.status_code, response.text)
        await world.deliver()
        assert await counts(world.app) == (0, 0, 0)
        assert world.fake.sent == [] and world.fake.token_calls["wecom"] == 0
        # The channel still works after all that.
        texts = await Member(world, "ZhangAYi").say("你好")
        assert "同意" in texts[0]


# ---- URL verification (GET), platforms.md §2.3 and §7 -----------------------------------------
OFFICIAL = {  # WeCom's own WXBizMsgCrypt sample (§7 wecom_echostr_urlencoded)
    "token": "QDG6eK",
    "aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "corp_id": "wx5823bf96d3bd56c7",
    "raw_query": (
        "msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589"
        "&nonce=263014780&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3z"
        "Ndtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D"
    ),
    "plaintext": "1616140317555161061",
}


async def test_url_verification(sqlite_url: str, tmp_path: Path) -> None:
    overrides = {
        "wecom_token": OFFICIAL["token"],
        "wecom_aes_key": OFFICIAL["aes_key"],
        "wecom_corp_id": OFFICIAL["corp_id"],
    }
    async with wecom_world(sqlite_url, tmp_path, **overrides) as world:
        raw = OFFICIAL["raw_query"]
        response = await world.http.get(f"/webhooks/wecom?{raw}")
        assert response.status_code == 200
        assert response.content == OFFICIAL["plaintext"].encode()  # no quotes, BOM, newline
        assert response.headers["content-type"].startswith("text/plain")
        # A literal "+" (a proxy that did not encode it) still means "+", never a space.
        response = await world.http.get(f"/webhooks/wecom?{raw.replace('%2B', '+')}")
        assert response.content == OFFICIAL["plaintext"].encode()
        for bad in (
            raw.replace("5c45ff", "5c45fe"),
            raw.replace("timestamp=1409659589", "timestamp=1409659590"),
            raw.split("&echostr")[0],
            "",
        ):
            response = await world.http.get(f"/webhooks/wecom?{bad}")
            assert response.status_code == 403, bad
        assert await counts(world.app) == (0, 0, 0)
