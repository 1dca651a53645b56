"""Build Twilio webhook requests the way Twilio does, signed with twilio's own validator."""
from __future__ import annotations

import itertools
import secrets
from typing import Any

from twilio.request_validator import RequestValidator

# The fake Twilio account's credentials, re-exported for the tests that sign with them.
from tools.fake_twilio import SERVICE_NUMBER as SERVICE_NUMBER
from tools.fake_twilio import TEST_ACCOUNT_SID as TEST_ACCOUNT_SID
from tools.fake_twilio import TEST_AUTH_TOKEN as TEST_AUTH_TOKEN

_counter = itertools.count(1)


def new_message_sid() -> str:
    return f"SM{next(_counter):08d}{secrets.token_hex(12)}"


def sms_form(sender: str, body: str, **extra: str) -> dict[str, str]:
    """The form Twilio posts for an incoming SMS."""
    form = {
        "MessageSid": new_message_sid(),
        "AccountSid": TEST_ACCOUNT_SID,
        "From": sender,
        "To": SERVICE_NUMBER,
        "Body": body,
        "NumMedia": "0",
    }
    form.update(extra)
    return form


def whatsapp_form(sender: str, body: str, media: list[tuple[str, str]] | None = None) -> dict[str, str]:
    """The form Twilio posts for an incoming WhatsApp message (optionally with media)."""
    form = sms_form(f"whatsapp:{sender}", body)
    form["To"] = f"whatsapp:{SERVICE_NUMBER}"
    form["ProfileName"] = "Warga"
    form["NumMedia"] = str(len(media or []))
    for i, (url, content_type) in enumerate(media or []):
        form[f"MediaUrl{i}"] = url
        form[f"MediaContentType{i}"] = content_type
    return form


class TwilioSigner:
    def __init__(self, auth_token: str) -> None:
        self.validator = RequestValidator(auth_token)

    def headers(self, url: str, form: dict[str, Any]) -> dict[str, str]:
        return {"X-Twilio-Signature": self.validator.compute_signature(url, form)}

    def post(self, client: Any, path: str, form: dict[str, Any], base: str = "http://localhost") -> Any:
        """POST a signed form with a Flask test client (which serves http://localhost)."""
        return client.post(path, data=form, headers=self.headers(base + path, form))
