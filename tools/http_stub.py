"""Small local HTTP servers standing in for third parties (Twilio's REST API, a slow Rasa)."""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

# (status, json body or RawReply) for a request: (method, path, form-or-json body), and
# its headers too when the server is made `with_headers=True`.
Responder = Callable[..., tuple[int, Any]]


@dataclass(frozen=True)
class RawReply:
    """A body that is not JSON (a file, a redirect), with its own headers.

    Without `send_length` the body ends when the connection closes (HTTP/1.0), as a
    server that does not say the size up front.
    """

    content: bytes = b""
    content_type: str = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    send_length: bool = True


class StubServer:
    """Serves `responder` on 127.0.0.1 and records every request it gets.

    With `keep_alive` it speaks HTTP/1.1 and keeps connections open between requests,
    as Rasa's Sanic and Twilio's API do: the benchmarks need that, or every call the app
    makes would pay for a new TCP connection that the real servers never ask of it.
    Without it (the tests' default) it closes each connection after its answer.
    """

    def __init__(self, responder: Responder, with_headers: bool = False, keep_alive: bool = False) -> None:
        self.responder = responder
        self.requests: list[tuple[str, str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"
            # Headers and body go as two writes: with Nagle's algorithm the body would
            # wait for the client's delayed ACK (40 ms) on a kept-alive connection.
            disable_nagle_algorithm = keep_alive

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                if "json" in (self.headers.get("Content-Type") or ""):
                    body: Any = json.loads(raw or "null")
                else:
                    body = {k: v[0] for k, v in parse_qs(raw).items()}
                stub.requests.append((self.command, self.path, body))
                if with_headers:
                    status, payload = stub.responder(self.command, self.path, body, dict(self.headers))
                else:
                    status, payload = stub.responder(self.command, self.path, body)
                reply = payload if isinstance(payload, RawReply) else RawReply(
                    json.dumps(payload).encode(), "application/json"
                )
                data = reply.content
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", reply.content_type)
                    if reply.send_length:
                        self.send_header("Content-Length", str(len(data)))
                    else:
                        self.close_connection = True
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "StubServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
