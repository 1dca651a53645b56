"""Indonesian provinces and the local time each recipient lives in.

Codes are the two-digit Kemendagri province codes that also open every NIK. The 2022
split of Papua renumbered the region (Kepmendagri 100.1.1-6117/2022): 91 is now Papua
Barat and 94 Papua. NIKs issued earlier keep the old code, so a NIK's first two digits
name the issuing province, not always today's; the time zone is WIT either way.

Dates are spelled out here rather than through the C locale, which is rarely
installed as id_ID on servers and would silently fall back to English.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

WIB = ("Asia/Jakarta", "WIB")
WITA = ("Asia/Makassar", "WITA")
WIT = ("Asia/Jayapura", "WIT")
DEFAULT_ZONE = "Asia/Jakarta"


@dataclass(frozen=True)
class Province:
    """One province: its code, official name and local time zone."""

    code: str
    name: str
    tz: str
    tz_label: str


_TABLE: tuple[tuple[str, str, tuple[str, str]], ...] = (
    ("11", "Aceh", WIB),
    ("12", "Sumatera Utara", WIB),
    ("13", "Sumatera Barat", WIB),
    ("14", "Riau", WIB),
    ("15", "Jambi", WIB),
    ("16", "Sumatera Selatan", WIB),
    ("17", "Bengkulu", WIB),
    ("18", "Lampung", WIB),
    ("19", "Kepulauan Bangka Belitung", WIB),
    ("21", "Kepulauan Riau", WIB),
    ("31", "DKI Jakarta", WIB),
    ("32", "Jawa Barat", WIB),
    ("33", "Jawa Tengah", WIB),
    ("34", "DI Yogyakarta", WIB),
    ("35", "Jawa Timur", WIB),
    ("36", "Banten", WIB),
    ("51", "Bali", WITA),
    ("52", "Nusa Tenggara Barat", WITA),
    ("53", "Nusa Tenggara Timur", WITA),
    ("61", "Kalimantan Barat", WIB),
    ("62", "Kalimantan Tengah", WIB),
    ("63", "Kalimantan Selatan", WITA),
    ("64", "Kalimantan Timur", WITA),
    ("65", "Kalimantan Utara", WITA),
    ("71", "Sulawesi Utara", WITA),
    ("72", "Sulawesi Tengah", WITA),
    ("73", "Sulawesi Selatan", WITA),
    ("74", "Sulawesi Tenggara", WITA),
    ("75", "Gorontalo", WITA),
    ("76", "Sulawesi Barat", WITA),
    ("81", "Maluku", WIT),
    ("82", "Maluku Utara", WIT),
    ("91", "Papua Barat", WIT),
    ("92", "Papua Barat Daya", WIT),
    ("94", "Papua", WIT),
    ("95", "Papua Selatan", WIT),
    ("96", "Papua Tengah", WIT),
    ("97", "Papua Pegunungan", WIT),
)

PROVINCES: dict[str, Province] = {
    code: Province(code=code, name=name, tz=zone[0], tz_label=zone[1])
    for code, name, zone in _TABLE
}

DAY_NAMES = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")
MONTH_NAMES = (
    "Januari", "Februari", "Maret", "April", "Mei", "Juni",
    "Juli", "Agustus", "September", "Oktober", "November", "Desember",
)


def province(code: str | None) -> Province | None:
    """Look a province up by code; surrounding whitespace is forgiven."""
    if code is None:
        return None
    return PROVINCES.get(str(code).strip())


def _zone_name_and_label(code: str | None) -> tuple[str, str]:
    found = province(code)
    return (found.tz, found.tz_label) if found else WIB


def zone_for_province(code: str | None) -> ZoneInfo:
    """The recipient's zone; unknown provinces get WIB, where most recipients live."""
    return ZoneInfo(_zone_name_and_label(code)[0])


def format_date(day: date) -> str:
    """A calendar date as an Indonesian reader expects it: "Senin, 7 Desember 2026"."""
    return f"{DAY_NAMES[day.weekday()]}, {day.day} {MONTH_NAMES[day.month - 1]} {day.year}"


def format_local(dt_utc: datetime, province_code: str | None, with_time: bool = False) -> str:
    """Show a stored UTC instant in the recipient's local date (and time with its zone).

    Naive datetimes are taken as UTC, because that is how the database stores them.
    """
    aware = dt_utc if dt_utc.tzinfo else dt_utc.replace(tzinfo=timezone.utc)
    zone_name, label = _zone_name_and_label(province_code)
    local = aware.astimezone(ZoneInfo(zone_name))
    text = format_date(local.date())
    if with_time:
        text += f" pukul {local:%H.%M} {label}"
    return text
