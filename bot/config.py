"""Settings read from the environment, in one place.

Every process (web app, action server, scheduler, CLI) builds its settings here so a
deployment is configured by environment variables alone; a `.env` file in the working
directory is read first when present, without overriding variables already set.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "instance" / "bansos.db"


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    """Runtime configuration; see the README's configuration table."""

    database_url: str = f"sqlite:///{DEFAULT_SQLITE_PATH}"
    rasa_url: str = "http://127.0.0.1:5005"
    # Twilio waits 15 s for a webhook answer; Rasa must answer well inside that.
    rasa_timeout: float = 10.0
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_sms_from: str = ""
    twilio_whatsapp_from: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_api_base: str = ""
    twilio_http_timeout: float = 10.0
    public_base_url: str = ""
    secret_key: str = "dev-only-change-me"
    default_region: str = "ID"
    max_inbound_chars: int = 1600
    # A replayed MessageSid whose first delivery is still being processed waits this
    # long for the stored reply before answering without one.
    replay_wait_seconds: float = 12.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def twilio_enabled(self) -> bool:
        """Outbound goes to Twilio only with real credentials; else to the sandbox."""
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    def with_overrides(self, overrides: dict[str, Any] | None) -> "Settings":
        """Return a copy with the given fields replaced (used by tests and the app factory)."""
        if not overrides:
            return self
        known = {k: v for k, v in overrides.items() if k in self.__dataclass_fields__}
        return replace(self, **known)


def load_settings(env_file: str | os.PathLike[str] | None = None) -> Settings:
    """Build settings from the environment (and `.env`, if present)."""
    load_dotenv(env_file or Path.cwd() / ".env", override=False)
    env = os.environ
    return Settings(
        database_url=env.get("DATABASE_URL") or Settings.database_url,
        rasa_url=(env.get("RASA_URL") or Settings.rasa_url).rstrip("/"),
        rasa_timeout=_env_float("RASA_TIMEOUT", Settings.rasa_timeout),
        twilio_account_sid=env.get("TWILIO_ACCOUNT_SID", ""),
        twilio_auth_token=env.get("TWILIO_AUTH_TOKEN", ""),
        twilio_sms_from=env.get("TWILIO_SMS_FROM", ""),
        twilio_whatsapp_from=env.get("TWILIO_WHATSAPP_FROM", ""),
        twilio_messaging_service_sid=env.get("TWILIO_MESSAGING_SERVICE_SID", ""),
        twilio_api_base=env.get("TWILIO_API_BASE", "").rstrip("/"),
        twilio_http_timeout=_env_float("TWILIO_HTTP_TIMEOUT", Settings.twilio_http_timeout),
        public_base_url=env.get("PUBLIC_BASE_URL", "").rstrip("/"),
        secret_key=env.get("SECRET_KEY") or Settings.secret_key,
        max_inbound_chars=_env_int("MAX_INBOUND_CHARS", Settings.max_inbound_chars),
    )
