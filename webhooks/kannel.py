"""Kannel's callbacks: an SMS comes in (sms-service) and delivery reports (dlr-url).

A thin adapter, like the Twilio one: check who is calling, turn Kannel's request into
the core's terms, answer as Kannel expects. Kannel signs nothing, so both endpoints
are guarded twice: the caller's address must be on KANNEL_ALLOWED_IPS, and the request
must carry KANNEL_WEBHOOK_SECRET as its HTTP Basic password (Kannel sends the userinfo
of the URLs in its configuration, `http://kannel:SECRET@host/...`, as that header).

The reply goes back in the HTTP answer, as with TwiML: smsbox sends the body of a 200
as the SMS reply (split and concatenated per the sms-service's `max-messages`), and
sends nothing for an empty one (`omit-empty`). Kannel retries a callback answered with
anything but 200 or 202, and a retry carries the same message id (%I), so a retried
message gets the stored reply instead of being processed twice.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
from functools import wraps
from typing import Any, Callable
from urllib.parse import parse_qsl

from flask import Blueprint, Response, abort, current_app, request

from bot.channels.kannel import DLR_PATH, INBOUND_PATH, WEBHOOK_USER, inbound_message, status_report
from bot.conversation.inbound import InboundMessage, InvalidInbound
from bot.conversation.models import Channel
from bot.services import Services
from bot.rules.smstext import format_for_channel

log = logging.getLogger(__name__)

bp = Blueprint("kannel", __name__)

_PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def _services() -> Services:
    return current_app.extensions["bansos"]


def _peer_address() -> str | None:
    """The address of the socket that sent this request, never one taken from a header.

    Behind TRUSTED_PROXY_HOPS, ProxyFix replaces `request.remote_addr` with what
    X-Forwarded-For claims, which anyone able to reach the proxy can write; the
    allow-list is about the machine actually connecting, so it reads the original.
    """
    original = request.environ.get("werkzeug.proxy_fix.orig")
    return original["REMOTE_ADDR"] if original else request.remote_addr


def _came_through_a_proxy() -> bool:
    """Kannel calls the app directly, never through the public reverse proxy.

    A proxy on the same machine connects from 127.0.0.1, which the allow-list admits,
    so a request it forwards from anyone on the internet would pass on its address;
    every proxy adds these headers, and Kannel sends none of them.
    """
    return any(name in request.headers for name in _PROXY_HEADERS)


def _source_allowed(address: str | None, allowed: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(entry, strict=False) for entry in allowed)


def _secret_matches(secret: str) -> bool:
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return False
    # Both compared, in constant time, as bytes: compare_digest refuses non-ASCII str.
    user_ok = hmac.compare_digest((auth.username or "").encode(), WEBHOOK_USER.encode())
    secret_ok = hmac.compare_digest((auth.password or "").encode(), secret.encode())
    return user_ok and secret_ok


def from_kannel(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse (403) a request from outside the allow-list or without the secret, unread."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        settings = _services().settings
        peer = _peer_address()
        if _came_through_a_proxy():
            log.warning("rejected Kannel request from %s: it came through a proxy", peer)
            abort(403)
        if not _source_allowed(peer, settings.kannel_allowed_ips):
            log.warning("rejected Kannel request from %s: not in KANNEL_ALLOWED_IPS", peer)
            abort(403)
        if not settings.kannel_webhook_secret:
            log.error("KANNEL_WEBHOOK_SECRET is not set: refusing every Kannel request")
            abort(403)
        if not _secret_matches(settings.kannel_webhook_secret):
            log.warning("rejected Kannel request with a bad secret from %s", peer)
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def _raw_query() -> dict[str, bytes]:
    """The query parameters as bytes: with %b, Kannel puts a UCS-2 message's UTF-16BE
    bytes in the URL, which Flask's UTF-8 decoding of `request.args` would mangle."""
    pairs = parse_qsl(request.query_string.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
    return {key: value.encode("latin-1") for key, value in pairs}


def parse_inbound() -> InboundMessage:
    """Kannel's request in the core's terms; 400 when its message id or sender is missing.

    Kannel's `get-url` carries the text in the query (`text=%b`); its `post-url` sends
    it as the body, with the charset in the Content-Type.
    """
    params = _raw_query()
    body = None if "text" in params else request.get_data(cache=False)
    try:
        return inbound_message(params, body, request.mimetype_params.get("charset"))
    except InvalidInbound as exc:
        abort(400, description=str(exc))


def _plain(text: str) -> Response:
    """A text/plain answer; Kannel only takes 200 or 202 as success (204 is a failure)."""
    return Response(text, status=200, mimetype="text/plain")


@bp.route(INBOUND_PATH, methods=["GET", "POST"])
@from_kannel
def sms() -> Response:
    result = _services().conversations.handle(parse_inbound())
    # Replies to an SMS already come as one GSM-7 text; joined here so that stays true.
    reply = format_for_channel("\n".join(result.replies), Channel.SMS) if result.replies else ""
    return _plain(reply)


@bp.get(DLR_PATH)
@from_kannel
def dlr() -> Response:
    try:
        report = status_report(_raw_query())
    except InvalidInbound as exc:
        abort(400, description=str(exc))
    if report is None:
        return _plain("ignored")
    if not _services().delivery.record(report):
        # A report can overtake the sender's own bookkeeping of the message id; a
        # failed answer makes Kannel try again (smsbox `http-request-retry`).
        abort(404, description="unknown message")
    return _plain("ok")
