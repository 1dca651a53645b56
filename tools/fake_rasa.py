"""A scriptable stand-in for Rasa's HTTP API, for webhook tests about Rasa's failures.

End-to-end tests use the real Rasa server; this one only makes Rasa slow, silent or
chatty on demand. Like Rasa it keeps a tracker per conversation (user events with the
metadata sent, bot events after them), which the answer workers read, and with
`token` set it guards the HTTP API (not the REST channel) as `rasa run --auth-token` does.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tools.http_stub import StubServer

_TRACKER = re.compile(r"^/conversations/([^/]+)/tracker(/events)?$")


@dataclass
class FakeRasa:
    """`down` makes every request fail with 503 until it is switched back."""

    replies: list[dict[str, Any]] = field(default_factory=lambda: [{"text": "Halo, ada yang bisa dibantu?"}])
    delay: float = 0.0
    received: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False
    token: str = ""
    # The form the conversation is in, as Rasa's tracker shows it (`active_loop`).
    active_loop: str = ""
    trackers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def respond(self, method: str, target: str, body: Any) -> tuple[int, Any]:
        if self.down:
            return 503, {}
        url = urlsplit(target)
        path, query = url.path, parse_qs(url.query)
        if method == "POST" and path == "/webhooks/rest/webhook":
            self.received.append(body)
            time.sleep(self.delay)
            events = self.trackers.setdefault(body["sender"], [])
            events.append({"event": "user", "text": body["message"], "metadata": body.get("metadata") or {}})
            events += [{"event": "bot", "text": reply.get("text")} for reply in self.replies]
            return 200, [dict(reply, recipient_id=body["sender"]) for reply in self.replies]
        if path == "/":
            return 200, {"hello": "from fake Rasa"}
        if self.token and query.get("token") != [self.token]:
            return 401, {"status": "failure", "reason": "NotAuthenticated"}
        if path == "/status":
            return 200, {"model_file": "fake.tar.gz"}
        tracker = _TRACKER.match(path)
        if tracker and method == "GET" and not tracker.group(2):
            return 200, {
                "sender_id": tracker.group(1),
                "events": self.trackers.get(tracker.group(1), []),
                "active_loop": {"name": self.active_loop} if self.active_loop else {},
            }
        if tracker and method == "POST" and tracker.group(2):
            if (body or {}).get("event") == "restart":
                self.trackers[tracker.group(1)] = [{"event": "restart"}]
            return 200, {"sender_id": tracker.group(1)}
        return 404, {}

    def serve(self, keep_alive: bool = False) -> StubServer:
        return StubServer(self.respond, keep_alive=keep_alive)
