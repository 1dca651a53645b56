"""The media part of the local fake Twilio (tools/fake_twilio.py).

As Twilio does, it serves an inbound message's media at its MediaUrl only with the
account's HTTP Basic credentials (401 otherwise), by a redirect to a short-lived
link that needs none; and it deletes media on `DELETE .../Media/{ME}.json` (204),
after which the URL answers 404. Tests put media in with `add`, read `deleted`, and
make downloads fail with `errors` (one HTTP status per download, answered in turn).
"""
from __future__ import annotations

import base64
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tools.http_stub import RawReply

MEDIA_PATH = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Messages/(?P<message>\w+)/Media/(?P<media>ME\w+)(?P<json>\.json)?$"
)
CDN_PATH = re.compile(r"^/cdn/(?P<token>\w+)$")
_UNAUTHORIZED = {"code": 20003, "message": "Authenticate", "status": 401}
_NOT_FOUND = {"code": 20404, "message": "The requested resource was not found", "status": 404}


@dataclass
class FakeMediaApi:
    account_sid: str
    auth_token: str
    items: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)
    # Serve files without Content-Length, as a server that does not say the size up front.
    hide_length: bool = False
    _links: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, content: bytes, content_type: str) -> str:
        """Hold a media item of a new inbound message; its path (the MediaUrl without the host)."""
        media_sid = "ME" + secrets.token_hex(16)
        message_sid = "MM" + secrets.token_hex(16)
        with self._lock:
            self.items[media_sid] = (content, content_type)
        return f"/2010-04-01/Accounts/{self.account_sid}/Messages/{message_sid}/Media/{media_sid}"

    def handles(self, path: str) -> bool:
        return bool(MEDIA_PATH.match(path) or CDN_PATH.match(path))

    def respond(self, method: str, path: str, headers: Mapping[str, str]) -> tuple[int, Any]:
        cdn = CDN_PATH.match(path)
        if cdn is not None:
            return self._from_cdn(cdn["token"])
        found = MEDIA_PATH.match(path)
        assert found is not None
        if found["account"] != self.account_sid or not self._authorised(headers):
            return 401, _UNAUTHORIZED
        media_sid = found["media"]
        with self._lock:
            if media_sid not in self.items:
                return 404, _NOT_FOUND
            if method == "DELETE" and found["json"]:
                del self.items[media_sid]
                self.deleted.append(media_sid)
                return 204, RawReply()
            if method != "GET" or found["json"]:
                return 405, {"code": 20004, "message": "Method not allowed", "status": 405}
            if self.errors:
                status = self.errors.pop(0)
                return status, {"code": 20500, "message": "fake error", "status": status}
            token = secrets.token_hex(8)
            self._links[token] = media_sid
        return 307, RawReply(headers={"Location": f"/cdn/{token}"})

    def _authorised(self, headers: Mapping[str, str]) -> bool:
        given = next((value for name, value in headers.items() if name.lower() == "authorization"), "")
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return given == f"Basic {expected}"

    def _from_cdn(self, token: str) -> tuple[int, Any]:
        with self._lock:
            media_sid = self._links.pop(token, None)
            item = self.items.get(media_sid or "")
        if item is None:
            return 404, _NOT_FOUND
        content, content_type = item
        return 200, RawReply(content, content_type, send_length=not self.hide_length)
