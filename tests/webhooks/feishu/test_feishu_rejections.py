"""Hostile and broken Feishu pushes (Encrypt Key configured): each is refused with its status
before anything is stored or sent, and the channel keeps working afterwards."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.support.fake_feishu import FeishuCallbacks
from tests.webhooks.feishu.feishu_support import ENCRYPT_KEY, User, feishu_world, message_event
from tests.webhooks.wecom.wecom_support import counts
from webhooks.feishu.crypto import encrypt


def _bad_padding(plaintext: bytes) -> str:
    """AES-CBC with our key over bytes whose last block is not PKCS#7."""
    key = hashlib.sha256(ENCRYPT_KEY.encode()).digest()
    data = plaintext + b"\x00" * (16 - len(plaintext) % 16)
    iv = bytes(range(16))
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(data) + encryptor.finalize()).decode()


def hostile_cases(platform: FeishuCallbacks) -> list[tuple[str, bytes, dict[str, str], int]]:
    event = message_event(open_id="ou_mallory", text="你好")
    plain = json.dumps(event, ensure_ascii=False)
    body = platform.body(plain)
    good = platform.headers(body)
    sig = good["X-Lark-Signature"]
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")

    def signed(raw: bytes) -> tuple[bytes, dict[str, str]]:
        return raw, platform.headers(raw)

    def envelope(ciphertext: str) -> tuple[bytes, dict[str, str]]:
        return signed(json.dumps({"encrypt": ciphertext}).encode())

    wrong_token = json.loads(plain)
    wrong_token["header"]["token"] = "xxxxxx"
    old_schema = {"uuid": "u1", "token": "xxxxxx", "type": "event_callback", "event": {}}
    truncated = base64.b64encode(base64.b64decode(json.loads(body)["encrypt"])[:-16]).decode()
    other_key = encrypt("another key", plain, iv=bytes(16))
    return [
        ("signature off by one hex digit", body, good | {"X-Lark-Signature": flipped}, 403),
        ("signature of another body", platform.body(plain), good, 403),
        ("an event without signature headers", body, {"content-type": "application/json"}, 403),
        ("signature without nonce", body, good | {"X-Lark-Request-Nonce": ""}, 403),
        ("another verification token", *signed(platform.body(json.dumps(wrong_token))), 403),
        ("schema 1.0 with another token", *signed(platform.body(json.dumps(old_schema))), 403),
        ("truncated ciphertext", *envelope(truncated), 403),
        ("ciphertext not base64", *envelope("%%%not*base64%%%"), 403),
        ("encrypted with another key", *envelope(other_key), 403),
        ("wrong padding", *envelope(_bad_padding(plain.encode())), 403),
        ("decrypts to something not JSON", *envelope(encrypt(ENCRYPT_KEY, "hello")), 400),
        ("plaintext event to an encrypted app", *signed(plain.encode()), 400),
        ("body not JSON", *signed(b"{not json"), 400),
        ("encrypt is not a string", *signed(b'{"encrypt": 42}'), 400),
        ("over 64 KiB", *signed(b'{"encrypt": "' + b"A" * (64 * 1024) + b'"}'), 413),
    ]


async def test_hostile_pushes_store_nothing(database_url: str, tmp_path: Path) -> None:
    async with feishu_world(database_url, tmp_path) as world:
        for name, body, headers, status in hostile_cases(world.platform):
            response = await world.platform.post_raw(body, headers)
            assert response.status_code == status, (name, response.status_code, response.text)
        await world.deliver()
        assert await counts(world.app) == (0, 0, 0)
        assert world.fake.sent == [] and world.fake.token_calls == 0
        texts = await User(world, "ou_zhang").say("你好")  # still works after all that
        assert "同意" in texts[0]


async def test_encrypted_body_without_a_configured_key(sqlite_url: str, tmp_path: Path) -> None:
    async with feishu_world(sqlite_url, tmp_path, encrypted=False) as world:
        body = json.dumps({"encrypt": encrypt(ENCRYPT_KEY, "{}")}).encode()
        response = await world.platform.post_raw(body, {"content-type": "application/json"})
        assert response.status_code == 400
        assert await counts(world.app) == (0, 0, 0)
