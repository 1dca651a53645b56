"""Reading report details out of what citizens type.

Two jobs: recognise a category from a menu number or everyday words ("2",
"sdh meninggal dunia", "kartu KKS dipegang ketua"), and split the long-standing
one-SMS format `Nama NIK Alamat Isi aduan` into draft fields. Both are guesses meant
to fill a form: the form shows its summary and asks for whatever is missing, so a
wrong or missing guess costs one question, never a wrong report.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass

from bot.rules.nik import find_niks
from bot.reports.models import (
    CATEGORIES,
    PROPOSED_FOR_CHOICES,
    Choice,
    ComplaintCategory,
    ProposedFor,
    ReportKind,
    SanggahReason,
    UsulReason,
)

# Texting shorthand, expanded before matching so the word lists stay short.
_SHORTHAND = {
    "sdh": "sudah", "udh": "sudah", "udah": "sudah", "dah": "sudah",
    "blm": "belum", "blum": "belum", "lom": "belum",
    "tdk": "tidak", "tak": "tidak", "gak": "tidak", "ga": "tidak", "gk": "tidak",
    "nggak": "tidak", "ngga": "tidak", "enggak": "tidak", "engga": "tidak",
    "org": "orang", "yg": "yang", "dgn": "dengan", "utk": "untuk", "untk": "untuk",
    "krn": "karena", "krna": "karena", "dr": "dari", "sy": "saya", "sj": "saja",
    "msh": "masih", "bs": "bisa", "dpt": "dapat", "trm": "terima", "alm": "almarhum",
    "almh": "almarhumah", "kel": "keluarga", "klg": "keluarga", "kluarga": "keluarga",
    "ortu": "orang tua", "tlg": "tolong", "jd": "jadi", "lg": "lagi", "sm": "sama",
}

# Words people use for each category, as regular expressions over normalised text
# (lowercase, shorthand expanded, punctuation turned into spaces). Within a kind the
# first category that matches wins, which is why the table's order differs from the
# menu's: a complaint that mentions a levy or a held card is about that, even when it
# also mentions an officer or money not received, and must be flagged sensitive.
_WORDS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    ReportKind.USUL: (
        (UsulReason.DISABILITAS, (
            r"disabilitas", r"difabel", r"cacat", r"lumpuh", r"buta", r"tuli", r"bisu",
            r"tuna ?(netra|rungu|wicara|daksa|grahita)", r"stroke", r"odgj", r"gangguan jiwa",
            r"tidak bisa (berjalan|jalan|melihat|mendengar)", r"sakit (menahun|parah|keras)",
        )),
        (UsulReason.LANSIA_TUNGGAL, (
            r"lansia", r"lanjut usia", r"manula", r"jompo", r"tua renta", r"sebatang kara",
            r"(tinggal|hidup) sendiri(an)?", r"nenek", r"kakek", r"mbah",
        )),
        (UsulReason.RUMAH_TIDAK_LAYAK, (
            r"rumah tidak layak", r"tidak layak huni", r"rutilahu", r"rtlh", r"gubuk",
            r"rumah (rusak|reyot|bocor|hampir roboh|roboh|bambu|kayu|papan)",
            r"tidak punya rumah", r"menumpang", r"numpang",
        )),
        (UsulReason.KEHILANGAN_PEKERJAAN, (
            r"kehilangan pekerjaan", r"hilang pekerjaan", r"phk", r"di ?pecat",
            r"(tidak|belum) (bekerja|kerja|punya pekerjaan|ada pekerjaan)",
            r"menganggur", r"pengangguran", r"bangkrut", r"gulung tikar",
        )),
        (UsulReason.LAINNYA, (r"lain(nya| lain)?",)),
    ),
    ReportKind.SANGGAH: (
        (SanggahReason.MENINGGAL, (
            r"meninggal", r"wafat", r"almarhum(ah)?", r"mati", r"(sudah|telah) tiada",
            r"mendiang",
        )),
        (SanggahReason.ASN_TNI_POLRI, (
            r"asn", r"pns", r"pppk", r"tni", r"polri", r"polisi", r"tentara", r"abri",
            r"pegawai negeri", r"aparatur sipil",
        )),
        (SanggahReason.DATA_GANDA, (
            r"ganda", r"dobel", r"double", r"duplikat", r"(terdaftar|tercatat) dua kali",
            r"dua kali",
        )),
        (SanggahReason.TIDAK_DIKENAL, (
            r"tidak (di)?kenal(i)?", r"(nama|alamat|orang\w*) tidak (ditemukan|ada)",
            r"tidak ditemukan", r"fiktif", r"bukan warga", r"tidak ada (orang|warga|nama)\w*",
        )),
        (SanggahReason.PINDAH, (
            r"pindah", r"(sudah|tidak) (lagi )?tinggal (di )?(sini|situ|desa|kampung)",
            r"tidak tinggal", r"merantau", r"keluar (desa|kampung|daerah)",
        )),
        (SanggahReason.MAMPU, (
            r"(?<!tidak )(?<!kurang )mampu", r"kaya", r"tidak layak", r"tidak berhak",
            r"berkecukupan", r"orang berada", r"punya (mobil|toko|sawah|usaha)",
            r"rumah (mewah|bagus|besar|gedong)", r"pengusaha", r"juragan",
        )),
    ),
    ReportKind.PENGADUAN: (
        (ComplaintCategory.KARTU_DIPEGANG_ORANG_LAIN, (
            r"(kks|kartu|atm|pin|buku tabungan)\w*( \w+){0,4} "
            r"(dipegang|ditahan|disimpan|dibawa|diambil|dikuasai|dikumpulkan|diminta)",
            r"(pegang|megang|memegang|tahan|menahan|simpan|menyimpan|ambil|mengambil|kuasai"
            r"|menguasai|kumpulkan|mengumpulkan|minta|meminta)( \w+){0,3} (kks|kartu|atm|pin)",
            r"pin (diketahui|dikasih|diberikan)",
        )),
        (ComplaintCategory.POTONGAN_PUNGLI, (
            r"(di|ter)?potong(an)?", r"pemotongan", r"pungli", r"pungutan",
            r"(di ?)?minta(i)? (uang|bayar|jatah|setoran|imbalan)", r"uang (rokok|administrasi|admin|jasa)",
            r"setoran", r"(di)?sunat", r"tidak (utuh|penuh)",
        )),
        (ComplaintCategory.KARTU_HILANG_RUSAK, (
            r"hilang", r"rusak", r"patah", r"terblokir", r"tertelan",
        )),
        (ComplaintCategory.DATA_SALAH, (
            r"data (salah|keliru|tidak sesuai|berbeda)",
            r"(nama|nik|alamat|tanggal lahir) (salah|keliru|tidak sesuai|berbeda|beda)",
            r"salah (nama|data|nik|alamat|ketik|input|tulis)", r"beda nama", r"keliru",
        )),
        (ComplaintCategory.DANA_BELUM_DITERIMA, (
            r"(belum|tidak|tidak pernah) (di)?(terima|cair|cairkan|masuk|dapat|menerima|mendapat|sampai)\w*",
            r"saldo (kosong|nol|0)", r"(dana|uang|bantuan)\w* belum", r"belum ada (dana|uang|bantuan|saldo)",
            r"tidak (ada|keluar) (dana|uang|saldo)",
        )),
        (ComplaintCategory.LAYANAN_PETUGAS, (
            r"agen", r"petugas", r"pendamping", r"e ?warong", r"ewarung", r"pelayanan",
            r"layanan", r"kasar", r"antr[ei]", r"dipersulit", r"tidak ramah", r"bank",
            r"kantor pos", r"operator",
        )),
        (ComplaintCategory.LAINNYA, (r"lain(nya| lain)?",)),
    ),
}

_PROPOSED_FOR_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (ProposedFor.UNTUK_ORANG_LAIN, (
        r"orang lain", r"keluarga lain", r"tetangga", r"warga", r"bukan (saya|diri)",
        r"untuk (dia|beliau|mereka|ibu \w+|bapak \w+|nenek|kakek|mbah)", r"lain",
    )),
    (ProposedFor.UNTUK_DIRI_SENDIRI, (
        r"(diri )?sendiri", r"saya", r"kami", r"keluarga (saya|kami|sendiri)", r"pribadi",
        r"aku",
    )),
)

_CHOICE_NUMBER = re.compile(r"(?:no|nomor|nomer|pilih|pilihan|angka)?\s*(\d{1,2})")


def _compile(table: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple(
        (code, re.compile(r"\b(?:" + "|".join(patterns) + r")\b")) for code, patterns in table
    )


_CATEGORY_PATTERNS = {kind: _compile(table) for kind, table in _WORDS.items()}
_PROPOSED_FOR_PATTERNS = _compile(_PROPOSED_FOR_WORDS)


def normalise_words(text: str) -> str:
    """Lowercase words separated by single spaces, shorthand expanded, for matching."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    words = re.sub(r"[^\w]+|_", " ", text).split()
    return " ".join(_SHORTHAND.get(word, word) for word in words)


def _by_number(choices: tuple[Choice, ...], normalised: str) -> str | None:
    match = _CHOICE_NUMBER.fullmatch(normalised)
    if match is None:
        return None
    number = int(match.group(1))
    return choices[number - 1].code if 1 <= number <= len(choices) else None


def _by_words(patterns: tuple[tuple[str, re.Pattern[str]], ...], normalised: str) -> str | None:
    return next((code for code, pattern in patterns if pattern.search(normalised)), None)


def guess_category(kind: str, text: str) -> str | None:
    """A category recognised from words in free text; numbers in it are not menu picks."""
    return _by_words(_CATEGORY_PATTERNS.get(kind, ()), normalise_words(text))


def match_category(kind: str, text: str) -> str | None:
    """The category a citizen picked, by its menu number ("2") or in words, or None."""
    normalised = normalise_words(text)
    if _CHOICE_NUMBER.fullmatch(normalised):
        return _by_number(CATEGORIES.get(kind, ()), normalised)
    return _by_words(_CATEGORY_PATTERNS.get(kind, ()), normalised)


def match_proposed_for(text: str) -> str | None:
    """Whom an usul is for, by menu number or words ("untuk tetangga", "1"), or None."""
    normalised = normalise_words(text)
    if _CHOICE_NUMBER.fullmatch(normalised):
        return _by_number(PROPOSED_FOR_CHOICES, normalised)
    return _by_words(_PROPOSED_FOR_PATTERNS, normalised)


@dataclass(frozen=True)
class ParsedReport:
    """What one message gave for a ReportDraft; None where it gave nothing."""

    subject_name: str | None = None
    subject_nik: str | None = None
    subject_address: str | None = None
    description: str | None = None
    category: str | None = None

    def found(self) -> dict[str, str]:
        """Only the fields the message filled, keyed like ReportDraft (and form slots)."""
        return {key: value for key, value in asdict(self).items() if value is not None}


_LEADING_KEYWORD = re.compile(
    r"^\s*(?:usul(?:an)?|sanggah(?:an)?|adu(?:an)?|pengaduan|lapor)\b[\s:#.,-]*", re.IGNORECASE
)
_NAME_LABEL = re.compile(r"^\s*nama\s*[:=]?\s*", re.IGNORECASE)
_NIK_LABEL = re.compile(r"[\s,;:#]*\b(?:no\.?\s*)?nik\s*[:=.]?\s*$", re.IGNORECASE)
_ADDRESS_LABEL = re.compile(r"^\s*(?:alamat|almt)\s*[:=]?\s*", re.IGNORECASE)
_DESCRIPTION_LABEL = re.compile(
    r"[\s,;.]*\b(?:isi aduan|isi laporan|isi|aduan|keterangan|ket|alasan|keluhan)\s*[:=]\s*",
    re.IGNORECASE,
)
# Words that open a part of an Indonesian address; each is followed by its value.
_ADDRESS_MARKERS = frozenset({
    "jl", "jln", "jalan", "gg", "gang", "kp", "kampung", "kampong", "dusun", "dsn", "dukuh",
    "desa", "ds", "kel", "kelurahan", "kec", "kecamatan", "kab", "kabupaten", "kota", "rt",
    "rw", "rt/rw", "no", "nomor", "blok", "perum", "perumahan", "komplek", "kompleks",
    "lingkungan", "lingk", "link", "lk", "jorong", "nagari", "gampong", "banjar", "lorong",
})
# Markers whose value is a number ("RT 02/05", "No. 7") rather than a place name.
_NUMBERED_MARKERS = frozenset({"rt", "rw", "rt/rw", "no", "nomor", "blok"})
# A numbered marker glued to its value: "RT.02/05", "RT02", "No.7".
_GLUED_NUMBER = re.compile(r"([A-Za-z/]+)[.:]?(\d[\w/.\-]*)")
# Capitalised words that start a description rather than continue a place name.
_NOT_PLACE_WORDS = frozenset({
    "dana", "uang", "bantuan", "saldo", "kartu", "kks", "pin", "atm", "pkh", "bpnt", "blt",
    "sembako", "saya", "kami", "beliau", "dia", "sudah", "sdh", "belum", "blm", "tidak",
    "tdk", "mohon", "tolong", "sejak", "telah", "ada", "meninggal", "pindah", "karena",
    "yang", "di", "ke", "tapi", "namun", "ketua", "petugas", "agen", "pendamping",
})


def _marker(word: str) -> str:
    return word.rstrip(".:,").casefold()


def _is_glued_number(word: str) -> bool:
    glued = _GLUED_NUMBER.fullmatch(word.rstrip(",;"))
    return bool(glued) and glued.group(1).casefold() in _NUMBERED_MARKERS


def _continues_place(previous: str, word: str) -> bool:
    return (
        previous[-1:] not in ",;"
        and word[:1].isupper()
        and _marker(word) not in _ADDRESS_MARKERS
        and _marker(word) not in _NOT_PLACE_WORDS
    )


def _split_address(rest: str) -> tuple[str | None, str]:
    """Split the text after the NIK into an address and the description after it.

    The address is a run of marker + value pairs ("Kp. Sukamaju RT 02/05 Desa
    Cibodas"); a place name may run over several capitalised words when the message
    is in mixed case. The first word that continues neither ends the address.
    """
    labelled = _ADDRESS_LABEL.match(rest)
    if labelled:
        rest = rest[labelled.end():]
    words = rest.split()
    mixed_case = rest != rest.upper() and rest != rest.lower()
    index = 0
    while index < len(words):
        if _is_glued_number(words[index]):
            index += 1
            continue
        marker = _marker(words[index])
        if marker not in _ADDRESS_MARKERS:
            break
        index = min(index + 2, len(words))
        if marker in _NUMBERED_MARKERS:
            continue
        while mixed_case and index < len(words) and _continues_place(words[index - 1], words[index]):
            index += 1
    if index == 0:
        return None, rest.strip()
    address = " ".join(words[:index]).strip(" ,;")
    return address or None, " ".join(words[index:]).strip(" ,;.-")


def _locate_nik(text: str, digits: str) -> re.Match[str] | None:
    """Where in `text` the NIK bot.rules.nik.find_niks reported was typed, separators and all."""
    pattern = r"(?<!\d)" + r"[\s.\-]?".join(digits) + r"(?!\d)"
    return re.search(pattern, text)


def _clean(value: str | None) -> str | None:
    value = re.sub(r"\s+", " ", value or "").strip(" ,;:#.-")
    return value or None


def parse_one_message(kind: str, text: str) -> ParsedReport:
    """Split `[KEYWORD] Nama NIK Alamat Isi aduan` into draft fields.

    The NIK is the anchor: what comes before it is the name, what follows is the
    address and then the description. "#" works as a field separator too
    (`ADU#Nama#NIK#Alamat#Isi`). Without a NIK the whole text is the description.
    """
    body = _LEADING_KEYWORD.sub("", unicodedata.normalize("NFKC", text or ""), count=1)
    body = body.strip()
    if not body:
        return ParsedReport()
    if body.count("#") >= 3:
        return _parse_separated(kind, body.split("#"))
    niks = find_niks(body)
    located = _locate_nik(body, niks[0]) if niks else None
    if located is None:
        description = _clean(body)
        return ParsedReport(
            subject_nik=niks[0] if niks else None,
            description=description,
            category=guess_category(kind, description or ""),
        )
    name = _clean(_NIK_LABEL.sub("", _NAME_LABEL.sub("", body[: located.start()])))
    after = body[located.end():]
    labelled = _DESCRIPTION_LABEL.search(after)
    if labelled:
        address: str | None = _clean(_ADDRESS_LABEL.sub("", after[: labelled.start()]))
        description = _clean(after[labelled.end():])
    else:
        address, remainder = _split_address(after)
        address, description = _clean(address), _clean(remainder)
    return ParsedReport(
        subject_name=name,
        subject_nik=niks[0],
        subject_address=address,
        description=description,
        category=guess_category(kind, description or ""),
    )


def _parse_separated(kind: str, fields: list[str]) -> ParsedReport:
    name, nik, address, *description = (_clean(field) for field in fields)
    found = find_niks(nik or "")
    text = _clean(" ".join(part for part in description if part))
    return ParsedReport(
        subject_name=name,
        subject_nik=found[0] if found else nik,
        subject_address=address,
        description=text,
        category=guess_category(kind, text or ""),
    )
