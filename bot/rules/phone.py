"""Phone numbers and channel addresses, normalised in one place.

Twilio sends SMS senders as "+62…" and WhatsApp senders as "whatsapp:+62…", imports
carry numbers typed by people ("0812-3456-789"), and WhatsApp may identify a user by
a business-scoped id that is no phone number at all. Everything that compares,
stores or masks an address goes through here so the same person is always the same
key, and an odd address never crashes the caller.
"""
from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

WHATSAPP_PREFIX = "whatsapp:"
MAX_ADDRESS_LENGTH = 64
_MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})


# Senders whose parsed address a process keeps (a few MB at most).
_ADDRESSES_CACHED = 8192


@dataclass(frozen=True)
class Address:
    """Who a message came from or goes to, as the core sees it."""

    value: str
    is_phone: bool
    channel: str


def _split_channel(raw: str) -> tuple[str, str]:
    text = (raw or "").strip()
    if text[: len(WHATSAPP_PREFIX)].lower() == WHATSAPP_PREFIX:
        return "whatsapp", text[len(WHATSAPP_PREFIX) :].strip()
    return "sms", text


def _parse_valid(text: str, default_region: str) -> phonenumbers.PhoneNumber | None:
    # phonenumbers turns letters into keypad digits ("0812ABCDEFG" is "valid"),
    # which is never what a citizen meant, so any letter disqualifies the input.
    if not text or any(ch.isalpha() for ch in text):
        return None
    try:
        number = phonenumbers.parse(text, default_region)
    except NumberParseException:
        return None
    # parse() happily formats garbage; only is_valid_number says it can be dialled.
    return number if phonenumbers.is_valid_number(number) else None


def normalise_phone(raw: str, default_region: str = "ID") -> str | None:
    """Return the E.164 form of a phone number, or None when it is not a valid one."""
    _, text = _split_channel(raw)
    number = _parse_valid(text, default_region)
    if number is None:
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _clean_opaque_id(text: str) -> str:
    kept = "".join(
        ch for ch in text if not ch.isspace() and unicodedata.category(ch)[0] != "C"
    )
    return kept[:MAX_ADDRESS_LENGTH]


@functools.lru_cache(maxsize=_ADDRESSES_CACHED)
def parse_address(raw: str, default_region: str = "ID") -> Address:
    """Turn a provider's sender or recipient field into an Address; never raises.

    Every message's sender goes through phonenumbers' parser, and a conversation's
    senders repeat: the answers are kept for the most recent senders of the process."""
    channel, text = _split_channel(raw)
    e164 = normalise_phone(text, default_region)
    if e164 is not None:
        return Address(value=e164, is_phone=True, channel=channel)
    return Address(value=_clean_opaque_id(text), is_phone=False, channel=channel)


def is_mobile(e164: str) -> bool:
    """Whether an SMS can reach the number: landlines make Twilio fail with 21614."""
    number = _parse_valid(e164, "ID")
    return number is not None and phonenumbers.number_type(number) in _MOBILE_TYPES


def mask_phone(e164: str) -> str:
    """Mask a number for logs and staff views, keeping what identifies the operator.

    "+6281234567890" becomes "+62812****7890": country code and the three-digit
    operator prefix stay, so does the tail a person recognises, the rest is hidden.
    Anything that is not a valid number keeps only its last four characters.
    """
    number = _parse_valid(e164, "ID")
    if number is None:
        text = (e164 or "").strip()
        if len(text) <= 4:
            return "*" * len(text)
        return "*" * (len(text) - 4) + text[-4:]
    national = phonenumbers.national_significant_number(number)
    head, tail = national[:3], national[-4:]
    hidden = max(len(national) - len(head) - len(tail), 0)
    return f"+{number.country_code}{head}{'*' * hidden}{tail}"
