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

from bot.rules.nik import compact_niks

KEYWORD_INTENTS: dict[str, str] = {
    "MENU": "help",
    "BANTUAN": "help",
    "CEK": "check_status",
    "JADWAL": "ask_disbursement_schedule",
    "RIWAYAT": "ask_disbursement_history",
    "USUL": "submit_usul",
    "SANGGAH": "submit_sanggah",
    "ADU": "file_complaint",
    "TIKET": "check_ticket",
    "PETUGAS": "request_human",
    "STOP": "opt_out",
    "BERHENTI": "opt_out",
    "MULAI": "opt_in",
    "BATAL": "cancel",
}

# Keywords whose text is a report to be read by the form.
REPORT_KEYWORDS = frozenset({"USUL", "SANGGAH", "ADU"})

_KEYWORD_RE = re.compile(r"^\s*([A-Za-z]+)\b[\s:.,-]*(.*?)\s*$", re.DOTALL)
_NUMBER_RE = re.compile(r"[\d][\d\s.\-]*")
_REF_CHARS_RE = re.compile(r"[A-Za-z0-9\-]{1,24}")
_TICKET_RE = re.compile(r"\b(USL|SGH|ADU)-?(\d{8})-?([A-HJ-NP-Z2-9]{4})\b", re.IGNORECASE)


def keyword_payload(text: str) -> str | None:
    """The Rasa payload for a keyword message, or None when `text` is not one.

    Only the first word counts, and only when what follows fits that keyword
    (`CEK` takes a NIK, `TIKET` a reference, `USUL`/`SANGGAH`/`ADU` a report, the rest
    nothing), so ordinary sentences that merely start with "cek" or "stop" still go to
    the NLU. A reference sent alone (`ADU-20261123-K7QX`) asks after that report
    rather than starting a new complaint.
    """
    reference = _TICKET_RE.fullmatch(text.strip())
    if reference:
        return _payload("check_ticket", {"ticket_ref": _canonical_reference(reference)})
    match = _KEYWORD_RE.match(text)
    if not match:
        return None
    word, rest = match.group(1).upper(), match.group(2)
    intent = KEYWORD_INTENTS.get(word)
    if intent is None:
        return None
    entities: dict[str, str] = {}
    if rest:
        if word == "CEK" and _NUMBER_RE.fullmatch(rest):
            # Passed on even when it is not 16 digits: the form then says what is wrong.
            entities["nik"] = re.sub(r"\D", "", rest)[:32]
        elif word == "TIKET" and _REF_CHARS_RE.fullmatch(rest):
            ref = _TICKET_RE.fullmatch(rest)
            entities["ticket_ref"] = _canonical_reference(ref) if ref else rest.upper()
        elif word in REPORT_KEYWORDS and rest.lstrip("#").strip():
            # "ADU#Nama#NIK#Alamat#Isi" is the same format with "#" between fields.
            entities["report_text"] = rest.lstrip("#").strip()
        else:
            return None
    return _payload(intent, entities)


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
