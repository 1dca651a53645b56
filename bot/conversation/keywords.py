"""SMS keywords that always work, whatever the NLU would have guessed.

A keyword is turned into a Rasa intent payload (`/intent{"entity": "value"}`), which
Rasa's REST channel treats as that intent with full confidence, so a feature-phone user
typing `CEK 3201...` is never at the mercy of the classifier.

`USUL`, `SANGGAH` and `ADU` may carry the whole report (`ADU Nama NIK Alamat Isi
aduan`, the long-standing one-SMS format); the text after the keyword travels in the
`report_text` entity as a JSON string, so any character is safe in it (Rasa reads
the entities with json.loads, one line: json.dumps escapes line breaks).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from bot.conversation.choices import Choice
from bot.rules.nik import compact_niks


class Argument:
    """What may follow a keyword; anything else makes the message free text."""

    NONE = ""
    NIK = "nik"  # digits, passed on even when not 16 of them: the form says what is wrong
    TICKET = "ticket_ref"
    REPORT = "report_text"  # the whole report in one SMS: "ADU Nama NIK Alamat Isi"
    NAME = "status_name"  # status without a NIK: "NAMA Euis Komalasari DESA Sukamaju"
    VILLAGE = "status_village"  # travels with NAME, never on its own


@dataclass(frozen=True)
class Keyword:
    """One row of the keyword table: the words, the intent, and how the menus show it.

    A menu line left empty keeps the keyword out of that menu (MULAI shares STOP's
    line). `without_rasa` marks the keywords the core answers itself, so they work
    while Rasa is down or a person has the chat. `menu_choice` describes the keyword
    in the WhatsApp menu's list to tap; empty keeps it out of the list (STOP is
    typed, never tapped by mistake).
    """

    words: tuple[str, ...]
    intent: str
    argument: str = Argument.NONE
    sms_menu: str = ""
    whatsapp_menu: str = ""
    without_rasa: bool = False
    menu_choice: str = ""

    @property
    def payload(self) -> str:
        """The Rasa payload of the keyword alone."""
        return f"/{self.intent}"


# The one table of SMS keywords: the parser, both menus and the core read it. A new
# word for an existing intent is one more entry in `words`; a new keyword one more row.
# SMS menu lines: GSM-7, no [ ] { } ~ (extension table), two segments in all.
KEYWORDS: tuple[Keyword, ...] = (
    Keyword(("MENU", "BANTUAN"), "help"),
    Keyword(
        ("CEK",), "check_status", Argument.NIK,
        "CEK spasi NIK: status",
        "*CEK <NIK>*: cek status kepesertaan bansos\n   contoh: CEK 3201xxxxxxxxxxxx",
        menu_choice="Cek status kepesertaan bansos",
    ),
    Keyword(
        ("NAMA",), "check_status_by_name", Argument.NAME,
        "NAMA: cek tanpa NIK",
        "*NAMA <nama> DESA <desa>*: cek status tanpa NIK\n   contoh: NAMA Siti Aminah DESA Sukamaju",
    ),
    Keyword(("JADWAL",), "ask_disbursement_schedule", Argument.NONE, "JADWAL: jadwal cair", "*JADWAL*: jadwal pencairan berikutnya",
            menu_choice="Jadwal pencairan berikutnya"),
    Keyword(("RIWAYAT",), "ask_disbursement_history", Argument.NONE, "RIWAYAT: riwayat bansos", "*RIWAYAT*: riwayat penyaluran bansos",
            menu_choice="Riwayat penyaluran bansos"),
    Keyword(("USUL",), "submit_usul", Argument.REPORT, "USUL: usulkan penerima", "*USUL*: usulkan keluarga yang layak dibantu",
            menu_choice="Usulkan keluarga yang layak dibantu"),
    Keyword(("SANGGAH",), "submit_sanggah", Argument.REPORT, "SANGGAH: sanggah penerima", "*SANGGAH*: sanggah penerima yang tidak layak",
            menu_choice="Sanggah penerima yang tidak layak"),
    Keyword(("ADU",), "file_complaint", Argument.REPORT, "ADU: pengaduan", "*ADU*: sampaikan pengaduan",
            menu_choice="Sampaikan pengaduan"),
    Keyword(("TIKET",), "check_ticket", Argument.TICKET, "TIKET spasi nomor: cek laporan", "*TIKET <nomor>*: cek perkembangan laporan",
            menu_choice="Cek perkembangan laporan"),
    Keyword(("PETUGAS",), "request_human", Argument.NONE, "PETUGAS: hubungi petugas", "*PETUGAS*: bicara dengan petugas", without_rasa=True,
            menu_choice="Bicara dengan petugas"),
    Keyword(
        ("STOP", "BERHENTI"), "opt_out", Argument.NONE,
        "STOP/MULAI: henti/mulai SMS", "*STOP* / *MULAI*: berhenti / mulai lagi pemberitahuan", without_rasa=True,
    ),
    Keyword(("MULAI",), "opt_in", without_rasa=True),
    Keyword(("BATAL",), "cancel"),
)

_BY_WORD: dict[str, Keyword] = {word: keyword for keyword in KEYWORDS for word in keyword.words}
_BY_INTENT: dict[str, Keyword] = {keyword.intent: keyword for keyword in KEYWORDS}

# No blank lines in either menu: Rasa's output channels split a text at every blank
# line, which on WhatsApp would arrive as several bubbles.
_SMS_MENU_HEAD = "Layanan Asisten Bansos, balas:"
_WHATSAPP_MENU_HEAD = "*Layanan Asisten Bansos*\nBalas dengan salah satu kata kunci berikut:"
_WHATSAPP_MENU_TAIL = "Bapak/Ibu juga boleh menulis pertanyaan dengan kalimat biasa. Call center Kemensos: 171."


def keyword_for(intent: str) -> Keyword:
    """The table's row for an intent (the core asks for STOP's, MULAI's, PETUGAS's)."""
    return _BY_INTENT[intent]


def menu_choices() -> list[Choice]:
    """The WhatsApp menu's list to tap: each keyword sends itself, as if typed."""
    return [Choice(k.words[0], k.words[0], k.menu_choice) for k in KEYWORDS if k.menu_choice]


def sms_menu() -> str:
    """The SMS menu: one line per keyword, within two GSM-7 segments."""
    return "\n".join([_SMS_MENU_HEAD] + [k.sms_menu for k in KEYWORDS if k.sms_menu])


def whatsapp_menu() -> str:
    """The WhatsApp menu: room to explain each keyword and give an example."""
    lines = [k.whatsapp_menu for k in KEYWORDS if k.whatsapp_menu]
    return "\n".join([_WHATSAPP_MENU_HEAD, *lines, _WHATSAPP_MENU_TAIL])


_KEYWORD_RE = re.compile(r"^\s*([A-Za-z]+)\b[\s:.,-]*(.*?)\s*$", re.DOTALL)
_NUMBER_RE = re.compile(r"[\d][\d\s.\-]*")
_REF_CHARS_RE = re.compile(r"[A-Za-z0-9\-]{1,24}")
_PLACE_WORD = r"(?:DESA|DS\.?|KELURAHAN|KEL\.?)"
_PLACE_WORD_RE = re.compile(rf"\s{_PLACE_WORD}\s", re.IGNORECASE)
_TICKET_RE = re.compile(r"\b(USL|SGH|ADU)-?(\d{8})-?([A-HJ-NP-Z2-9]{4})\b", re.IGNORECASE)


def keyword_payload(text: str) -> str | None:
    """The Rasa payload for a keyword message, or None when `text` is not one.

    Only the first word counts, and only when what follows fits that keyword
    (`CEK` takes a NIK, `TIKET` a reference, `USUL`/`SANGGAH`/`ADU` a report, `NAMA` a
    name and a village, the rest nothing), so ordinary sentences that merely start
    with "cek" or "stop" still go to the NLU. A reference sent alone (`ADU-20261123-K7QX`) asks after that report
    rather than starting a new complaint.
    """
    reference = _TICKET_RE.fullmatch(text.strip())
    if reference:
        return _payload(_BY_WORD["TIKET"].intent, {Argument.TICKET: _canonical_reference(reference)})
    match = _KEYWORD_RE.match(text)
    if not match:
        return None
    keyword = _BY_WORD.get(match.group(1).upper())
    if keyword is None:
        return None
    rest = match.group(2)
    if keyword.argument == Argument.NIK and rest.split(" ")[0].upper() == "NAMA":
        # "CEK NAMA ..." reads as "NAMA ...".
        return keyword_payload(rest)
    entities: dict[str, str] = {}
    if rest:
        if keyword.argument == Argument.NAME:
            name_village = _name_and_village(rest)
            if name_village is None:
                return None
            entities[Argument.NAME], entities[Argument.VILLAGE] = name_village
        elif keyword.argument == Argument.NIK and _NUMBER_RE.fullmatch(rest):
            entities[Argument.NIK] = re.sub(r"\D", "", rest)[:32]
        elif keyword.argument == Argument.TICKET and _REF_CHARS_RE.fullmatch(rest):
            ref = _TICKET_RE.fullmatch(rest)
            entities[Argument.TICKET] = _canonical_reference(ref) if ref else rest.upper()
        elif keyword.argument == Argument.REPORT and rest.lstrip("#").strip():
            # "ADU#Nama#NIK#Alamat#Isi" is the same format with "#" between fields.
            entities[Argument.REPORT] = rest.lstrip("#").strip()
        else:
            return None
    return _payload(keyword.intent, entities)


def _name_and_village(rest: str) -> tuple[str, str] | None:
    """Name and village from "Siti Aminah DESA Sukamaju" (or "#" or "," between them).

    Without the word DESA/KEL or a separator the split would be a guess, so the
    message is left to the NLU ("nama saya Siti" is a sentence, not a keyword).
    """
    if "#" in rest or "," in rest:
        name, village = re.split(r"\s*[#,]\s*", rest, maxsplit=1)
        village = re.sub(rf"^{_PLACE_WORD}\s+", "", village, flags=re.IGNORECASE)
    else:
        parts = _PLACE_WORD_RE.split(f" {rest} ", maxsplit=1)
        if len(parts) < 2:
            return None
        name, village = parts
    name, village = " ".join(name.split()), " ".join(village.split())
    if not name or not village or any(ch.isdigit() for ch in name + village):
        return None
    return name[:100], village[:100]


def _canonical_reference(match: re.Match[str]) -> str:
    return "-".join(group.upper() for group in match.groups())


def _payload(intent: str, entities: dict[str, str]) -> str:
    return f"/{intent}{json.dumps(entities)}" if entities else f"/{intent}"


def free_text_input(text: str) -> str:
    """What Rasa receives for text that is not a keyword.

    Rasa strips a message (every Unicode space: tabs, no-break spaces, CR and LF) and
    then reads a leading "/" as an intent with entities, so every leading run of
    whitespace and slashes goes: only keywords may choose an intent directly. NIKs
    typed with spaces or dots are written as plain digits so the NLU sees them as NIKs.
    """
    start = 0
    while start < len(text) and (text[start] == "/" or text[start].isspace()):
        start += 1
    return compact_niks(text[start:]) or "?"


def rasa_input(text: str) -> str:
    """What Rasa receives for a citizen's text: a keyword's payload, else the free text."""
    return keyword_payload(text) or free_text_input(text)
