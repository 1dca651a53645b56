"""A local stand-in for Twilio's REST API that the real twilio client talks to.

Point the client at it with TWILIO_API_BASE (the app sets `client.api.base_url`). It
answers `Messages.json` like Twilio does (POST creates, GET lists a number's messages,
newest first) and can be told to fail for chosen numbers, for good or a few times.
"""
from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tools.fake_twilio_content import (
    CONTENT_PATH,
    ERROR_INVALID_CONTENT,
    ERROR_UNKNOWN_CONTENT,
    ContentRefused,
    FakeContentApi,
)
from tools.fake_twilio_media import FakeMediaApi
from tools.http_stub import StubServer

# The fake account's credentials and our service number, as tests and benchmarks use them.
TEST_AUTH_TOKEN = "test-auth-token-0123456789abcdef"
TEST_ACCOUNT_SID = "AC" + "0" * 32
SERVICE_NUMBER = "+6281100000000"

_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC\w+)/Messages\.json$")


@dataclass
class FakeTwilioApi:
    """Records sent messages; `failures[to] = (http_status, twilio_error_code)` makes one fail.

    `transient[to]` is a list of such failures answered one per request before the
    number works; `on_create(message)` runs after a message is accepted and before
    the answer goes out (a test can kill the sender there); `arrivals` holds the
    monotonic time each message was accepted; `now` dates messages (a test's clock).
    A template message (ContentSid) gets a body as Twilio renders one: here, simply
    the values of its ContentVariables, one a line. `content` is the Content API
    (`/v1/Content`, tools/fake_twilio_content.py): a message naming one of its
    contents is checked against Twilio's limits and shows the content's body; with
    `strict_content` a ContentSid it does not hold is refused (21655, as Twilio does
    for a deleted content).
    `media` holds inbound messages' media (tools/fake_twilio_media.py): served with
    the account's credentials only, deleted on DELETE.
    """

    failures: dict[str, tuple[int, int]] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    transient: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    on_create: Callable[[dict[str, Any]], None] | None = None
    arrivals: list[float] = field(default_factory=list)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    content: FakeContentApi = field(default_factory=FakeContentApi)
    strict_content: bool = False
    media: FakeMediaApi = field(default_factory=lambda: FakeMediaApi(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def respond(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if CONTENT_PATH.match(path.split("?")[0]) and method in ("POST", "GET"):
            return self.content.respond(method, TEST_ACCOUNT_SID, body)
        match = _MESSAGES_PATH.match(path.split("?")[0])
        if not match or method not in ("POST", "GET"):
            return 404, {"code": 20404, "message": "not found", "status": 404}
        if method == "GET":
            return self._list(path)
        to = body.get("To", "")
        failure = self._failure_for(to)
        if failure is not None:
            status, code = failure
            return status, {"code": code, "message": f"fake error {code}", "status": status}
        content_sid = body.get("ContentSid")
        shown = None
        if content_sid and self.strict_content and content_sid not in self.content.contents:
            return 400, {"code": ERROR_UNKNOWN_CONTENT, "message": "The ContentSid is Invalid", "status": 400}
        if content_sid and (self.strict_content or content_sid in self.content.contents):
            try:
                shown = self.content.render(content_sid, body.get("ContentVariables"))
            except ContentRefused as exc:
                return 400, {"code": ERROR_INVALID_CONTENT, "message": str(exc), "status": 400}
        message = {
            "sid": "SM" + secrets.token_hex(16),
            "account_sid": match.group("sid"),
            "to": to,
            "from": body.get("From"),
            "messaging_service_sid": body.get("MessagingServiceSid"),
            "body": body.get("Body") or shown or _rendered(body.get("ContentVariables")),
            "status": "queued",
            "content_sid": body.get("ContentSid"),
            "content_variables": body.get("ContentVariables"),
            "date_created": format_datetime(self.now(), usegmt=True),
        }
        with self._lock:
            self.sent.append(message)
            self.arrivals.append(time.monotonic())
        if self.on_create is not None:
            self.on_create(message)
        return 201, message

    def _failure_for(self, to: str) -> tuple[int, int] | None:
        with self._lock:
            queued = self.transient.get(to)
            if queued:
                return queued.pop(0)
        return self.failures.get(to)

    def _list(self, path: str) -> tuple[int, Any]:
        query = parse_qs(urlsplit(path).query)
        to = (query.get("To") or [""])[0]
        with self._lock:
            found = [message for message in self.sent if not to or message["to"] == to]
        return 200, {
            "messages": list(reversed(found)),
            "next_page_uri": None,
            "page": 0,
            "page_size": len(found),
            "uri": path,
        }

    def serve(self, keep_alive: bool = False) -> StubServer:
        return StubServer(self._respond_with_headers, with_headers=True, keep_alive=keep_alive)

    def _respond_with_headers(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        """Media need the request's credentials (tools/fake_twilio_media.py); the rest do not."""
        if self.media.handles(path.split("?")[0]):
            return self.media.respond(method, path.split("?")[0], headers)
        return self.respond(method, path, body)


def _rendered(variables: str | None) -> str | None:
    return "\n".join(json.loads(variables).values()) if variables else None
