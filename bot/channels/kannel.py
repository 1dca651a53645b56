"""Kannel, the open-source SMS gateway: its conventions, in one place.

Twilio does not carry two-way SMS in Indonesia, so SMS to and from feature phones goes
through Kannel, which speaks SMPP to an aggregator or operator. This module holds what
is Kannel's own: how its sms-service hands over a message's text (bytes in a coding and
a charset), what its delivery-report types mean for us, and `KannelTransport`, which
sends through smsbox's `sendsms` HTTP interface. webhooks/kannel.py is the HTTP face;
deploy/kannel/kannel.conf is the gateway's side of the same contract.

Behaviour of Kannel 1.4.5 this relies on (checked against the Debian package):
- sendsms answers 202 "0: Accepted for delivery" (or "3: Queued for later delivery"
  while no SMSC is connected) and never says which id it gave the message, so we name
  each message ourselves and put that name in its `dlr-url`.
- `coding=0` text is split on GSM-7 septets (an extended character such as "€" counts
  two), `coding=2` on UTF-16 units; both at 153/67 per part when concatenated. Text
  beyond the sendsms-user's `max-messages` is dropped without a word, so we shorten it
  first, visibly.
- With `charset=UTF-8` Kannel converts to UCS-2 itself, emoji (surrogate pairs) included.
- A callback answered with anything but 200 or 202 counts as failed and is retried
  when smsbox has `http-request-retry` set.
"""
from __future__ import annotations

import codecs
import logging
import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import requests
from urllib3.exceptions import ConnectTimeoutError

from bot.config import Settings
from bot.channels.outbox import (
    NETWORK_ERROR,
    ProviderUnreachable,
    SendResult,
    SentMessage,
    Template,
)
from bot.channels.delivery import StatusReport
from bot.conversation.inbound import InboundMessage, InvalidInbound
from bot.conversation.models import Channel, MessageStatus
from bot.rules.phone import mask_phone
from bot.rules.smstext import fit_segments, is_gsm7

log = logging.getLogger(__name__)

PROVIDER = "kannel"
INBOUND_PATH = "/webhooks/kannel/sms"
DLR_PATH = "/webhooks/kannel/dlr"
# The user name in front of KANNEL_WEBHOOK_SECRET in the URLs Kannel calls.
WEBHOOK_USER = "kannel"
# The secret travels inside URLs Kannel expands (%d, %p…), so it may hold no "%",
# and as HTTP Basic userinfo no ":", "@" or "/" either.
_URL_SAFE_SECRET = re.compile(r"^[A-Za-z0-9._~-]+$")

MAX_SEGMENTS = 3
# SendResult.error_code when Kannel was certainly never reached (connection refused,
# unknown host, connect timeout): nothing left, so sending again later is safe.
UNREACHABLE_ERROR = "unreachable"


class Coding:
    """Kannel's `coding` (%c): the SMS data coding scheme, as three values."""

    GSM7 = "0"
    BINARY = "1"
    UCS2 = "2"


# Every report Kannel can give: delivered (1), undelivered (2), buffered at the SMSC (4),
# accepted by the SMSC (8), rejected by the SMSC (16).
DLR_MASK = 31

# Kannel's DLR types (%d) → ours. "Buffered" means the network holds the message until
# the phone is reachable: as far along as accepted, not yet delivered.
DLR_STATUSES: dict[int, str] = {
    1: MessageStatus.DELIVERED,
    2: MessageStatus.UNDELIVERED,
    4: MessageStatus.SENT,
    8: MessageStatus.SENT,
    16: MessageStatus.FAILED,
}

# %A of a rejected submit ("NACK/0x0000000b/Invalid Destination Address") or the
# receipt text of an SMPP delivery report ("… stat:UNDELIV err:001 …").
_NACK_CODE = re.compile(r"^NACK/(\w+)")
_RECEIPT_ERROR = re.compile(r"\berr:(\w+)")


def decode_text(data: bytes, coding: str | None, charset: str | None) -> str:
    """The text of an SMS as Kannel hands it over: bytes in its coding and charset.

    A UCS-2 message (anything beyond GSM-7: most emoji, curly quotes, Javanese script)
    comes as UTF-16BE bytes unless smsbox's `mo-recode` made it UTF-8 first; a 7-bit
    one in the charset Kannel names (UTF-8 by default). An 8-bit message is binary
    data (a ringtone, a SIM update), never text a person typed. Undecodable bytes
    become U+FFFD rather than failing the message: it is stored either way.
    """
    coding = (coding or "").strip()
    if coding == Coding.BINARY:
        return ""
    fallback = "utf-16-be" if coding == Coding.UCS2 else "utf-8"
    return data.decode(_codec(charset) or fallback, errors="replace")


def _codec(charset: str | None) -> str | None:
    try:
        return codecs.lookup((charset or "").strip()).name if charset else None
    except LookupError:
        return None


def dlr_error_code(reply: str | None) -> str | None:
    """The SMSC's error code in a delivery report's %A text, if it names one."""
    text = (reply or "").strip()
    match = _NACK_CODE.match(text) or _RECEIPT_ERROR.search(text)
    if match is None or not match.group(1).strip("0"):
        return None
    return match.group(1)[:16]


def coding_for(text: str) -> str:
    """GSM-7 whenever the text allows it: UCS-2 cuts a segment from 160 to 70 characters."""
    return Coding.GSM7 if is_gsm7(text) else Coding.UCS2


def callback_url(settings: Settings, path: str) -> str:
    """A URL of ours for Kannel to call, with the webhook secret as HTTP Basic userinfo.

    Kannel sends userinfo as an Authorization header, so the secret stays out of
    query strings and access logs.
    """
    secret = settings.kannel_webhook_secret
    if not _URL_SAFE_SECRET.match(secret):
        raise ValueError(
            "KANNEL_WEBHOOK_SECRET must be set and URL-safe (letters, digits, '.', '_', '~', '-')"
        )
    parts = urlsplit(settings.kannel_callback_url + path)
    netloc = f"{WEBHOOK_USER}:{secret}@{parts.netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def _never_reached(exc: requests.RequestException) -> bool:
    """Whether the request failed before Kannel could have read it.

    urllib3 reports a refused connection, an unknown host and a connect timeout all as
    a ConnectTimeoutError (or a subclass) inside requests' ConnectionError.
    """
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectionError) and isinstance(reason, ConnectTimeoutError)


class KannelTransport:
    """Sends SMS through Kannel's sendsms interface, asking for every delivery report."""

    name = PROVIDER

    def __init__(self, settings: Settings, http: requests.Session | None = None) -> None:
        if not (settings.kannel_username and settings.kannel_password):
            raise ValueError("SMS_TRANSPORT=kannel needs KANNEL_USERNAME and KANNEL_PASSWORD")
        self.settings = settings
        self.http = http or requests.Session()
        self.dlr_base = callback_url(settings, DLR_PATH)

    def send(
        self, to: str, body: str, channel: str, template: Template | None = None
    ) -> SendResult:
        """Hand one SMS to Kannel; a WhatsApp template has no meaning here, the body goes."""
        if channel != Channel.SMS:
            raise ValueError(f"Kannel carries SMS only, not {channel!r}")
        text = fit_segments(body, MAX_SEGMENTS)
        if text != body:
            log.warning("kannel message to %s shortened to %d segments", mask_phone(to), MAX_SEGMENTS)
        ref = "K" + secrets.token_hex(16)
        params = {
            "username": self.settings.kannel_username,
            "password": self.settings.kannel_password,
            "to": to,
            "text": text,
            "coding": coding_for(text),
            "charset": "UTF-8",
            "dlr-mask": str(DLR_MASK),
            # Kannel fills in %d (the report type) and %A (the SMSC's words) per report.
            "dlr-url": f"{self.dlr_base}?ref={ref}&type=%d&reply=%A",
        }
        if self.settings.kannel_sms_from:
            params["from"] = self.settings.kannel_sms_from
        if self.settings.kannel_smsc:
            params["smsc"] = self.settings.kannel_smsc
        try:
            response = self.http.get(
                self.settings.kannel_sendsms_url, params=params, timeout=self.settings.kannel_http_timeout
            )
        except requests.RequestException as exc:
            log.warning("kannel unreachable for %s: %s", mask_phone(to), exc.__class__.__name__)
            code = UNREACHABLE_ERROR if _never_reached(exc) else NETWORK_ERROR
            return SendResult(self.name, None, MessageStatus.FAILED, code)
        if response.status_code not in (200, 202):
            log.warning(
                "kannel refused message to %s: %s %s",
                mask_phone(to), response.status_code, response.text.strip()[:80],
            )
            return SendResult(
                self.name, None, MessageStatus.FAILED, str(response.status_code), response.status_code
            )
        return SendResult(self.name, ref, MessageStatus.QUEUED)

    def sent_to(self, to: str, channel: str, since: datetime) -> list[SentMessage]:
        """Kannel keeps no list of what it accepted, so a lost answer cannot be looked up.

        Raising leaves such a notice `sending` for an operator instead of guessing: a
        guess of "not sent" could send it twice. Kannel answers locally within
        milliseconds and a refused connection is reported as `unreachable` (safe to
        retry), so only a crash or a timeout in the middle of a send ends up here.
        """
        raise ProviderUnreachable("Kannel keeps no message list to ask")


# Kannel's message ids (%I) and our delivery-report references are short; longer is not Kannel.
MAX_ID_LENGTH = 64


def _field(params: Mapping[str, bytes], name: str) -> str:
    return params.get(name, b"").decode("utf-8", errors="replace").strip()


def inbound_message(params: Mapping[str, bytes], body: bytes | None, body_charset: str | None) -> InboundMessage:
    """An SMS as smsbox hands it over, in the core's terms.

    `params` are the raw query parameters (bytes: with %b a UCS-2 text is UTF-16BE in
    the URL); the text is `text=` (get-url) or else `body` (post-url), whose charset
    the Content-Type names. Raises InvalidInbound without a message id or sender.
    """
    message_id = _field(params, "id")
    sender = _field(params, "from")
    if not message_id or not sender or len(message_id) > MAX_ID_LENGTH:
        raise InvalidInbound("id and from are required")
    if body is None:
        data, charset = params.get("text", b""), _field(params, "charset")
    else:
        data, charset = body, body_charset or _field(params, "charset")
    return InboundMessage(
        provider=PROVIDER,
        provider_sid=message_id,
        sender=sender,
        body=decode_text(data, _field(params, "coding"), charset),
    )


def status_report(params: Mapping[str, bytes]) -> StatusReport | None:
    """A delivery report (dlr-url) in our terms; None for a type we do not track.

    Raises InvalidInbound without our reference or a numeric type.
    """
    ref = _field(params, "ref")
    raw_type = _field(params, "type")
    if not ref or len(ref) > MAX_ID_LENGTH or not raw_type.isdigit():
        raise InvalidInbound("ref and a numeric type are required")
    ours = DLR_STATUSES.get(int(raw_type))
    if ours is None:
        log.info("ignored Kannel DLR type %s for %s", raw_type[:8], ref)
        return None
    return StatusReport(
        provider=PROVIDER, provider_sid=ref, status=ours, error_code=dlr_error_code(_field(params, "reply"))
    )


def make_transport(settings: Settings) -> KannelTransport:
    """Kannel as the SMS transport (SMS_TRANSPORT=kannel); KannelTransport checks its settings."""
    return KannelTransport(settings)
