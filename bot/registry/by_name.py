"""Finding a recipient by full name and village, the way the public Cek Bansos site does.

Only an exact match of the whole name counts (case and spacing aside): a near match
would tell a stranger about someone whose name they did not know. A village is named
as people say it ("desa Sukamaju", "Kel. Sukamaju", "sukamaju"); several villages
of that name in different districts are told apart by the sender choosing one, and
when too many share it, by the kecamatan or kabupaten/kota written after a comma
("Sukamaju, Cibinong", "Sukamaju, Kab. Bogor").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WHITESPACE = re.compile(r"\s+")
# "di desa", "ds.", "kelurahan", "kel." are not part of a village's name.
_VILLAGE_PREFIX = re.compile(r"^(?:di\s+)?(?:desa|ds\.?|kelurahan|kel\.?)\s+", re.IGNORECASE)
# Nor "kecamatan", "kec." part of a district's; "kab." is "kabupaten" (not "kota").
_DISTRICT_PREFIX = re.compile(r"^(?:kecamatan|kec\.?)\s+", re.IGNORECASE)
_KABUPATEN_PREFIX = re.compile(r"^(?:kabupaten|kab\.?)\s+", re.IGNORECASE)
_REGENCY_KIND = re.compile(r"^(?:kabupaten|kota)\s+", re.IGNORECASE)
# Nor "nama saya", "nama ibu saya:", "a.n." part of a person's.
_NAME_PREFIX = re.compile(
    r"^(?:nama(?:\s+lengkap)?(?:\s+(?:ibu|bapak|ayah|suami|istri|nenek|kakek))?(?:\s+(?:saya|sy))?"
    r"|atas\s+nama|a\.\s?n\.)\s*:?\s+",
    re.IGNORECASE,
)
# What a person's name may hold: letters of any script, spaces, dots, apostrophes, hyphens.
_NAME_CHARS = re.compile(r"^[^\W\d_]+(?:[ .'\-]+[^\W\d_]+)*\.?$")
MIN_NAME_LETTERS = 3
MAX_NAME_LENGTH = 100
MAX_VILLAGE_LENGTH = 100


class InvalidName(ValueError):
    """A name or village that cannot be looked up; `reason` is the citizen-facing text."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Village:
    """A kelurahan/desa as the register names it, with what tells it apart from namesakes."""

    province_code: str
    regency: str
    district: str
    name: str

    @property
    def label(self) -> str:
        """"Sukamaju, Kec. Cibinong, Kab. Bogor": the line of a numbered choice."""
        return f"{self.name}, Kec. {self.district}, {short_regency(self.regency)}"

    def is_in(self, area: str) -> bool:
        """Whether `area` (normalised, see split_area) is this village's kecamatan or
        kabupaten/kota: "cibinong", "bogor", "kabupaten bogor" (not Kota Bogor)."""
        regency = _WHITESPACE.sub(" ", self.regency).strip().lower()
        return area in (self.district.strip().lower(), regency, _REGENCY_KIND.sub("", regency))

    @property
    def key(self) -> str:
        """Stable text naming this village, for the look-up counter's hash."""
        return "|".join((self.province_code, self.regency, self.district, self.name)).lower()


def short_regency(regency: str) -> str:
    """ "Kabupaten Bogor" becomes "Kab. Bogor"; "Kota Bandung" stays as it is."""
    return re.sub(r"^Kabupaten\s+", "Kab. ", regency.strip(), flags=re.IGNORECASE)


def normalise_name(text: str | None) -> str:
    """A full name as typed, ready to compare: lower case, single spaces.

    Raises InvalidName for text that is not a name (digits, too short, too long).
    """
    name = _NAME_PREFIX.sub("", _WHITESPACE.sub(" ", text or "").strip())
    if not name:
        raise InvalidName("Nama belum terisi.")
    if any(ch.isdigit() for ch in name):
        raise InvalidName("Nama tidak boleh berisi angka.")
    if len(name) > MAX_NAME_LENGTH or not _NAME_CHARS.match(name):
        raise InvalidName("Nama hanya berisi huruf, sesuai KTP.")
    if sum(ch.isalpha() for ch in name) < MIN_NAME_LETTERS:
        raise InvalidName("Nama terlalu pendek.")
    return name.lower()


def normalise_village(text: str | None) -> str:
    """A village name as typed, without "desa"/"kelurahan"/"kel." and in lower case.

    Raises InvalidName when nothing is left to look up.
    """
    village = _WHITESPACE.sub(" ", text or "").strip().rstrip(".,")
    village = _VILLAGE_PREFIX.sub("", f"{village} ").strip()
    if len(village) > MAX_VILLAGE_LENGTH:
        raise InvalidName("Nama desa/kelurahan terlalu panjang.")
    if sum(ch.isalpha() for ch in village) < 2:
        raise InvalidName("Nama desa/kelurahan belum terisi.")
    return village.lower()


def split_area(text: str | None) -> tuple[str, str]:
    """A village as typed, and the kecamatan or kabupaten/kota after its comma (normalised,
    "" when none): "Sukamaju, Kec. Cibinong" gives ("Sukamaju", "cibinong"), and
    "Sukamaju, Kab. Bogor" ("Sukamaju", "kabupaten bogor").

    Raises InvalidName when that area is too long to be one.
    """
    village, _, area = (text or "").partition(",")
    area = _WHITESPACE.sub(" ", area).strip().rstrip(".,")
    area = _DISTRICT_PREFIX.sub("", f"{area} ")
    area = _KABUPATEN_PREFIX.sub("kabupaten ", area).strip()
    if len(area) > MAX_VILLAGE_LENGTH:
        raise InvalidName("Nama kecamatan/kabupaten terlalu panjang.")
    return village, area.lower()


def with_area(village_text: str | None, area_text: str) -> str:
    """The village as typed, narrowed to the kecamatan or kabupaten/kota just sent
    (instead of any sent before): "Sukamaju" and "Cibinong" give "Sukamaju, Cibinong"."""
    village = (village_text or "").partition(",")[0]
    return f"{village.strip()}, {_WHITESPACE.sub(' ', area_text).strip()}"
