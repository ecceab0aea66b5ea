"""WeChat Official Account callbacks: plaintext-mode signature and safe mode.

Spec: platforms.md §3, vectors in §7 ``wechat_sha1_signature`` and ``wechat_msg_crypt``.
Safe mode is exactly WeCom's WXBizMsgCrypt with ReceiveId = AppID, so it is the WeCom
implementation, imported rather than copied: one cipher to audit and to test.

Plaintext mode signs only ``token, timestamp, nonce`` — not the body — so a valid signature
proves the request came from WeChat recently enough to know the token, nothing about the body.
"""

from __future__ import annotations

import hmac

from webhooks.errors import BadSignature
from webhooks.wecom.crypto import MsgCrypt, sha1_signature

__all__ = ["MsgCrypt", "check_signature", "plain_signature", "safe_mode", "verify_url"]


def plain_signature(token: str, timestamp: str, nonce: str) -> str:
    """The ``signature`` query parameter: SHA-1 of the sorted, concatenated three values."""
    return sha1_signature(token, timestamp, nonce)


def check_signature(token: str, signature: str, timestamp: str, nonce: str) -> None:
    """Raise BadSignature unless the query's ``signature`` is valid."""
    if not token:
        raise ValueError("token must not be empty")
    if not all(isinstance(v, str) for v in (signature, timestamp, nonce)):
        raise BadSignature("missing_parameters")
    expected = plain_signature(token, timestamp, nonce).encode("ascii")
    if not hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass")):
        raise BadSignature


def verify_url(token: str, signature: str, timestamp: str, nonce: str, echostr: str) -> str:
    """URL verification (GET): ``echostr`` verbatim once the signature holds.

    Unlike WeCom, WeChat's ``echostr`` is not encrypted, in safe mode too (platforms.md §3).
    """
    check_signature(token, signature, timestamp, nonce)
    if not isinstance(echostr, str):
        raise BadSignature("missing_parameters")
    return echostr


def safe_mode(token: str, encoding_aes_key: str, app_id: str) -> MsgCrypt:
    """The safe-mode (``encrypt_type=aes``) cipher of an account: WeCom's with the AppID."""
    return MsgCrypt(token, encoding_aes_key, app_id)
