"""A scriptable stand-in for Rasa's HTTP API, for webhook tests about Rasa's failures.

End-to-end tests use the real Rasa server; this one only makes Rasa slow, silent or
chatty on demand.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tests.support.http_stub import StubServer


@dataclass
class FakeRasa:
    """`down` makes every request fail with 503 until it is switched back."""

    replies: list[dict[str, Any]] = field(default_factory=lambda: [{"text": "Halo, ada yang bisa dibantu?"}])
    delay: float = 0.0
    received: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False

    def respond(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if self.down:
            return 503, {}
        if path == "/status":
            return 200, {"model_file": "fake.tar.gz"}
        if method == "POST" and path == "/webhooks/rest/webhook":
            self.received.append(body)
            time.sleep(self.delay)
            return 200, [dict(reply, recipient_id=body["sender"]) for reply in self.replies]
        return 404, {}

    def serve(self) -> StubServer:
        return StubServer(self.respond)
