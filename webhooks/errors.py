"""Typed failures of the platform verification layer (WeCom, WeChat, DingTalk, Feishu).

Every check in ``webhooks/<platform>/crypto.py`` and ``webhooks/xmlsafe.py`` raises one of these
and nothing else on hostile input, so a view can map the class to the status its platform
expects (platforms.md §0.2: 401/403 for authentication failures) with one ``except WebhookError``
and never answer a 500. ``reason`` is a short ASCII code, safe to log and to put in a response:
it never contains the secret, the expected value or the request's payload.

Configuration mistakes (an EncodingAESKey that is not 43 characters, an empty secret) are not
the sender's fault and raise ``ValueError`` at construction time instead.
"""

from __future__ import annotations

__all__ = [
    "BadBase64",
    "BadPadding",
    "BadPlaintext",
    "BadSignature",
    "BadTimestamp",
    "BadToken",
    "BadXml",
    "StaleTimestamp",
    "TruncatedCiphertext",
    "WebhookError",
    "WrongReceiveId",
]


class WebhookError(Exception):
    """Base of every rejection of an inbound delivery; catch this one in views."""

    default_reason = "rejected"

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason or self.default_reason
        super().__init__(self.reason)


class BadSignature(WebhookError):
    """A signature is missing, malformed or does not match (wrong token, key or body)."""

    default_reason = "bad_signature"


class BadToken(WebhookError):
    """Feishu's verification token in the payload is missing or not ours."""

    default_reason = "bad_token"


class BadTimestamp(WebhookError):
    """A timestamp header is missing or not plain ASCII digits."""

    default_reason = "bad_timestamp"


class StaleTimestamp(BadTimestamp):
    """A well-formed timestamp outside the platform's window (a replay or a skewed clock)."""

    default_reason = "stale_timestamp"


class BadBase64(WebhookError):
    """A ciphertext or signature that should be base64 is not (strictly) base64."""

    default_reason = "bad_base64"


class TruncatedCiphertext(WebhookError):
    """The decoded ciphertext is too short or not a whole number of blocks."""

    default_reason = "truncated_ciphertext"


class BadPadding(WebhookError):
    """PKCS#7 padding after decryption is wrong: wrong key or a tampered ciphertext."""

    default_reason = "bad_padding"


class BadPlaintext(WebhookError):
    """The decrypted bytes do not have the platform's layout or are not UTF-8."""

    default_reason = "bad_plaintext"


class WrongReceiveId(WebhookError):
    """WeCom/WeChat: the message decrypts but was meant for another CorpID/AppID."""

    default_reason = "wrong_receive_id"


class BadXml(WebhookError):
    """XML input is oversize, declares a DTD/entities, is malformed or has an unexpected shape."""

    default_reason = "bad_xml"
