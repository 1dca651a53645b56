"""A local stand-in for Twilio's REST API that the real twilio client talks to.

Point the client at it with TWILIO_API_BASE (the app sets `client.api.base_url`). It
answers `Messages.json` like Twilio does and can be told to fail for chosen numbers.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from tests.support.http_stub import StubServer

_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC\w+)/Messages\.json$")


@dataclass
class FakeTwilioApi:
    """Records sent messages; `failures[to] = (http_status, twilio_error_code)` makes one fail."""

    failures: dict[str, tuple[int, int]] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)

    def respond(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        match = _MESSAGES_PATH.match(path.split("?")[0])
        if method != "POST" or not match:
            return 404, {"code": 20404, "message": "not found", "status": 404}
        to = body.get("To", "")
        if to in self.failures:
            status, code = self.failures[to]
            return status, {"code": code, "message": f"fake error {code}", "status": status}
        message = {
            "sid": "SM" + secrets.token_hex(16),
            "account_sid": match.group("sid"),
            "to": to,
            "from": body.get("From"),
            "messaging_service_sid": body.get("MessagingServiceSid"),
            "body": body.get("Body"),
            "status": "queued",
            "content_sid": body.get("ContentSid"),
        }
        self.sent.append(message)
        return 201, message

    def serve(self) -> StubServer:
        return StubServer(self.respond)
