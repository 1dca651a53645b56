"""NIK rules in one place: parsing, validation, finding and masking.

A NIK (Nomor Induk Kependudukan) has 16 digits: province, regency and district codes
(two digits each), the birth date as DDMMYY with 40 added to the day for women, and
a four-digit serial. People type it with spaces, dots or dashes, so all of those are
forgiven; what is refused comes with a reason the citizen can act on.

A NIK is personal data (UU PDP): logs and staff views get it masked, never whole.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from bot.rules.regions import PROVINCES

NIK_LENGTH = 16
FEMALE_DAY_OFFSET = 40

# Separators people put inside a NIK: spaces (not line breaks), dots and dashes.
_SEPARATOR = r"(?:[^\S\r\n]|[.\-])"
# \d also matches non-ASCII decimal digits, so a NIK typed on any keyboard is found.
_NIK_IN_TEXT = re.compile(rf"(?<!\d)\d(?:{_SEPARATOR}?\d){{{NIK_LENGTH - 1}}}(?!\d)")
_SEPARATORS = re.compile(r"[\s.\-]+")


class InvalidNik(ValueError):
    """A NIK that cannot be right; `reason` is Indonesian and meant for the sender."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Nik:
    """A NIK that passed every check, with its parts decoded.

    The region codes are the two-digit parts; the full Kemendagri regency code is
    `province_code + regency_code` (e.g. "3201").
    """

    value: str
    province_code: str
    regency_code: str
    district_code: str
    birth_date: date
    is_female: bool
    serial: str


def _to_ascii_digits(text: str) -> str:
    return "".join(
        str(unicodedata.decimal(ch)) if unicodedata.decimal(ch, None) is not None else ch
        for ch in text
    )


def _birth_date(day: int, month: int, yy: int, today: date) -> date:
    """Resolve the two-digit year to the latest century that is not in the future.

    A date this year but later than today therefore means 1900s: an elderly
    recipient born in 1926 must not be told their NIK is wrong.
    """
    for century in (2000, 1900):
        try:
            candidate = date(century + yy, month, day)
        except ValueError:
            raise InvalidNik("Tanggal lahir pada NIK tidak valid.") from None
        if candidate <= today:
            return candidate
    raise InvalidNik("Tanggal lahir pada NIK tidak valid.")


def parse_nik(raw: str, today: date | None = None) -> Nik:
    """Check a NIK as typed and decode it, or raise InvalidNik with the reason."""
    text = _to_ascii_digits(_SEPARATORS.sub("", unicodedata.normalize("NFKC", raw or "")))
    if not text:
        raise InvalidNik("NIK belum dikirim. NIK terdiri dari 16 angka.")
    if any(ch.isalpha() for ch in text):
        raise InvalidNik("NIK berisi huruf. NIK hanya terdiri dari 16 angka.")
    if not text.isascii() or not text.isdigit():
        raise InvalidNik("NIK hanya boleh berisi angka.")
    if len(text) != NIK_LENGTH:
        raise InvalidNik(f"NIK harus 16 angka, Bapak/Ibu mengirim {len(text)} angka.")
    province_code, regency_code, district_code = text[0:2], text[2:4], text[4:6]
    if province_code not in PROVINCES:
        raise InvalidNik("Kode provinsi pada NIK tidak dikenal.")
    if regency_code == "00" or district_code == "00":
        raise InvalidNik("Kode wilayah pada NIK tidak valid.")
    day, month, yy = int(text[6:8]), int(text[8:10]), int(text[10:12])
    is_female = day > FEMALE_DAY_OFFSET
    if is_female:
        day -= FEMALE_DAY_OFFSET
    birth_date = _birth_date(day, month, yy, today or date.today())
    serial = text[12:16]
    if serial == "0000":
        raise InvalidNik("Nomor urut pada NIK tidak valid.")
    return Nik(
        value=text,
        province_code=province_code,
        regency_code=regency_code,
        district_code=district_code,
        birth_date=birth_date,
        is_female=is_female,
        serial=serial,
    )


def is_valid_nik(raw: str) -> bool:
    """Whether parse_nik would accept the text."""
    try:
        parse_nik(raw)
    except InvalidNik:
        return False
    return True


def mask_nik(nik: str) -> str:
    """Mask a NIK to "3201********0003"; anything else keeps only its last two characters."""
    text = (nik or "").strip()
    digits = _to_ascii_digits(_SEPARATORS.sub("", text))
    if len(digits) == NIK_LENGTH and digits.isascii() and digits.isdigit():
        return digits[:4] + "*" * 8 + digits[-4:]
    if len(text) <= 2:
        return "*" * len(text)
    return "*" * (len(text) - 2) + text[-2:]


def find_niks(text: str) -> list[str]:
    """Every 16-digit run in free text, as ASCII digits, in order, unvalidated."""
    return [
        _to_ascii_digits(re.sub(r"\D", "", match.group()))
        for match in _NIK_IN_TEXT.finditer(text or "")
    ]


def mask_niks(text: str) -> str:
    """Replace every 16-digit run in text by its mask, so the text can be logged."""
    return _NIK_IN_TEXT.sub(lambda match: mask_nik(match.group()), text or "")


def mask_name(name: str) -> str:
    """Hide a name but keep its shape: "Siti Wulandari" becomes "S*** W********"."""
    return re.sub(r"\S+", lambda m: m.group()[0] + "*" * (len(m.group()) - 1), name or "")


def compact_niks(text: str) -> str:
    """Write every NIK in text as 16 plain digits ("3201 0145 ..." → "32010145..."),
    so that the assistant's NIK pattern recognises the way people type them."""
    return _NIK_IN_TEXT.sub(lambda match: _to_ascii_digits(re.sub(r"\D", "", match.group())), text or "")
