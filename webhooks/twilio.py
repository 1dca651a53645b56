"""Twilio's webhooks: "a message comes in" and delivery status callbacks.

A thin adapter: validate the signature, turn the form into the core's terms, answer
with TwiML. Everything else happens in bot/.
"""
from __future__ import annotations

import logging
import re
from functools import wraps
from typing import Any, Callable

from flask import Blueprint, Response, abort, current_app, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from bot.conversation import InboundMessage
from bot.delivery import TWILIO_STATUSES, StatusReport
from bot.services import Services

log = logging.getLogger(__name__)

bp = Blueprint("twilio", __name__, url_prefix="/webhooks/twilio")

PROVIDER = "twilio"
MAX_MEDIA = 10
# Twilio's ids are "SM"/"MM" and 32 hex digits; anything else (a NUL byte, which
# PostgreSQL refuses to store, among others) is not from Twilio.
_SID_RE = re.compile(r"[A-Za-z0-9]{1,64}")


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


def parse_inbound(form: Any) -> InboundMessage:
    """The typed inbound message; 400 when Twilio's required fields are missing."""
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    sender = (form.get("From") or "").strip()
    if not sender or not _SID_RE.fullmatch(sid):
        abort(400, description="a Twilio MessageSid and From are required")
    try:
        num_media = min(int(form.get("NumMedia") or 0), MAX_MEDIA)
    except ValueError:
        num_media = 0
    media = [
        {"url": form[f"MediaUrl{i}"], "content_type": form.get(f"MediaContentType{i}", "")}
        for i in range(num_media)
        if form.get(f"MediaUrl{i}")
    ]
    return InboundMessage(
        provider=PROVIDER,
        provider_sid=sid,
        sender=sender,
        body=form.get("Body") or "",
        media=media,
    )


def twiml(texts: list[str]) -> Response:
    response = MessagingResponse()
    for text in texts:
        response.message(text)
    return Response(str(response), mimetype="application/xml")


@bp.post("/messages")
@signed
def messages() -> Response:
    result = _services().conversations.handle(parse_inbound(request.form))
    return twiml(result.replies)


@bp.post("/status")
@signed
def status() -> Response:
    sid = (request.form.get("MessageSid") or "").strip()
    raw_status = (request.form.get("MessageStatus") or "").strip().lower()
    if not _SID_RE.fullmatch(sid) or not raw_status:
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
