"""Twilio's webhooks: "a message comes in" and delivery status callbacks.

A thin adapter: validate the signature, turn the form into the core's terms, answer
with TwiML. Everything else happens in bot/.
"""
from __future__ import annotations

import logging
from functools import wraps
from typing import Any, Callable

from flask import Blueprint, Response, abort, current_app, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from bot.channels.delivery import StatusReport
from bot.channels.twilio import PROVIDER, TWILIO_STATUSES, parse_inbound, valid_sid
from bot.conversation.inbound import InvalidInbound
from bot.services import Services

log = logging.getLogger(__name__)

bp = Blueprint("twilio", __name__, url_prefix="/webhooks/twilio")


def _services() -> Services:
    return current_app.extensions["bansos"]


def _called_url() -> str:
    """The URL Twilio signed: the public one when we sit behind a proxy."""
    base = _services().settings.public_base_url
    if base:
        return base + request.full_path.rstrip("?")
    return request.url


def signed(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse (403) any request without a valid X-Twilio-Signature, before reading it."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = _services().settings.twilio_auth_token
        signature = request.headers.get("X-Twilio-Signature", "")
        if not token:
            log.error("TWILIO_AUTH_TOKEN is not set: refusing every Twilio request")
            abort(403)
        if not signature or not RequestValidator(token).validate(
            _called_url(), request.form, signature
        ):
            log.warning("rejected Twilio request with a bad signature from %s", request.remote_addr)
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def twiml(texts: list[str]) -> Response:
    response = MessagingResponse()
    for text in texts:
        response.message(text)
    return Response(str(response), mimetype="application/xml")


@bp.post("/messages")
@signed
def messages() -> Response:
    try:
        inbound = parse_inbound(request.form)
    except InvalidInbound as exc:
        abort(400, description=str(exc))
    result = _services().conversations.handle(inbound)
    if inbound.media:
        # Recorded with the message; fetched, checked and kept off this request's thread.
        _services().media.fetch_soon()
    return twiml(result.replies)


@bp.post("/status")
@signed
def status() -> Response:
    sid = (request.form.get("MessageSid") or "").strip()
    raw_status = (request.form.get("MessageStatus") or "").strip().lower()
    if not valid_sid(sid) or not raw_status:
        abort(400, description="a Twilio MessageSid and MessageStatus are required")
    ours = TWILIO_STATUSES.get(raw_status)
    if ours is None:
        log.info("ignored Twilio status %r for %s", raw_status[:24], sid[:64])
        return Response(status=204)
    report = StatusReport(
        provider=PROVIDER,
        provider_sid=sid,
        status=ours,
        error_code=(request.form.get("ErrorCode") or "").strip()[:16] or None,
    )
    _services().delivery.record(report)
    return Response(status=204)
