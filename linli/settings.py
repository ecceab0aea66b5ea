"""One settings object, read once from ``LINLI_*`` environment variables.

Secrets are ``SecretStr`` so they never end up in logs or reprs. In production the
service refuses to start with the development cookie secret.
"""

from __future__ import annotations

import json
import re
import secrets
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "linli-development-secret-change-me"


class GenericChannel(BaseModel):
    """One bridge speaking the generic signed-JSON protocol (interfaces.md §2)."""

    secret: SecretStr
    push_url: str | None = None

    @field_validator("secret")
    @classmethod
    def _whsec(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("whsec_"):
            raise ValueError("generic channel secret must start with 'whsec_'")
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINLI_", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path("data")
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""  # e.g. https://linli.example.org; enables Telegram webhook mode
    secret_key: SecretStr = SecretStr(DEV_SECRET)
    log_level: str = "INFO"
    log_json: bool = False

    # Conversation and routing.
    review_threshold: float = Field(0.35, ge=0.0, le=1.0)
    max_message_chars: int = 2000
    throttle_per_minute: int = 30
    request_number_prefix: str = "R"

    # Telegram (off when no token).
    telegram_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_secret_token: SecretStr | None = None
    telegram_mode: Literal["auto", "webhook", "polling", "off"] = "auto"

    # Generic signed webhook channels: JSON object {"name": {"secret": "whsec_…", "push_url": …}}
    generic_channels: dict[str, GenericChannel] = Field(default_factory=dict)

    # WeCom self-built app (interfaces.md §4): off unless every credential is set.
    wecom_corp_id: str = ""
    wecom_agent_id: int | None = None
    wecom_secret: SecretStr | None = None
    wecom_token: SecretStr | None = None
    wecom_aes_key: SecretStr | None = None
    wecom_api_url: str = "https://qyapi.weixin.qq.com"

    # WeChat Official Account (interfaces.md §4): no AES key = plaintext mode.
    wechat_app_id: str = ""
    wechat_app_secret: SecretStr | None = None
    wechat_token: SecretStr | None = None
    wechat_aes_key: SecretStr | None = None
    wechat_api_url: str = "https://api.weixin.qq.com"
    # A dialog step finished within this many seconds is answered in the HTTP response
    # (passive reply, no customer-service quota used); 0 = always the customer-service API.
    wechat_passive_reply_s: float = Field(3.0, ge=0.0, le=4.0)

    # DingTalk enterprise internal robot, HTTP mode (interfaces.md §4): off unless both are set.
    dingtalk_app_key: str = ""  # also the robotCode of the app's robot
    dingtalk_app_secret: SecretStr | None = None
    dingtalk_api_url: str = "https://api.dingtalk.com"  # OpenAPI: token, robot send
    # Old-style host: custom group robots (robot/send) and the sessionWebhook replies; a
    # sessionWebhook on any other origin is never called.
    dingtalk_oapi_url: str = "https://oapi.dingtalk.com"

    # Feishu/Lark app bot (interfaces.md §4): no encrypt key = plaintext events, no signature.
    feishu_app_id: str = ""
    feishu_app_secret: SecretStr | None = None
    feishu_verification_token: SecretStr | None = None
    feishu_encrypt_key: SecretStr | None = None
    feishu_api_url: str = "https://open.feishu.cn"  # also the custom bots' host

    # Background work.
    outbox_poll_seconds: float = 0.5
    inbox_recovery_seconds: float = 30.0
    run_background: bool = True

    @field_validator("generic_channels", mode="before")
    @classmethod
    def _parse_channels(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("wecom_agent_id", mode="before")
    @classmethod
    def _blank_agent_id(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("wecom_aes_key", "wechat_aes_key")
    @classmethod
    def _aes_key(cls, value: SecretStr | None) -> SecretStr | None:
        # A mistyped EncodingAESKey must stop the start, not fail every message later.
        if value is None or not value.get_secret_value():
            return None
        if not re.fullmatch(r"[A-Za-z0-9]{43}", value.get_secret_value(), re.ASCII):
            raise ValueError("EncodingAESKey must be exactly 43 characters of [A-Za-z0-9]")
        return value

    @model_validator(mode="after")
    def _production_guard(self) -> Settings:
        if self.env == "production" and self.secret_key.get_secret_value() == DEV_SECRET:
            raise ValueError("LINLI_SECRET_KEY must be set to a random value in production")
        return self

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'linli.db').resolve()}"

    @property
    def telegram_enabled(self) -> bool:
        return self.telegram_token is not None and self.telegram_mode != "off"

    @property
    def wecom_enabled(self) -> bool:
        return bool(
            self.wecom_corp_id
            and self.wecom_agent_id is not None
            and _set(self.wecom_secret)
            and _set(self.wecom_token)
            and _set(self.wecom_aes_key)
        )

    @property
    def wechat_enabled(self) -> bool:
        return bool(self.wechat_app_id and _set(self.wechat_app_secret) and _set(self.wechat_token))

    @property
    def dingtalk_enabled(self) -> bool:
        return bool(self.dingtalk_app_key and _set(self.dingtalk_app_secret))

    @property
    def feishu_enabled(self) -> bool:
        return bool(
            self.feishu_app_id
            and _set(self.feishu_app_secret)
            and _set(self.feishu_verification_token)
        )

    def telegram_webhook_secret(self) -> str:
        """The secret Telegram echoes in X-Telegram-Bot-Api-Secret-Token."""
        if self.telegram_secret_token is not None:
            return self.telegram_secret_token.get_secret_value()
        # Derived, stable per deployment, and within Telegram's allowed alphabet.
        import hashlib

        seed = (self.secret_key.get_secret_value() + "telegram").encode()
        return hashlib.sha256(seed).hexdigest()


def _set(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value())


def random_secret() -> str:
    return secrets.token_urlsafe(32)
