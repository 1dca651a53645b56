"""The report form's steps: which question comes next, and what an answer means.

One form serves usul, sanggah and pengaduan. What it asks depends on the kind, the
channel and what the citizen already said:

    usul:      untuk siapa, NIK (or name + address), alasan, keterangan
    sanggah:   NIK (or name + address), alasan, keterangan
    pengaduan: jenis aduan, keterangan, NIK (optional; else address, optional)
    then, on WhatsApp only, a photo as evidence (optional), and last the summary
    to confirm (YA), correct (UBAH) or cancel (BATAL).

The opening message may already hold everything (`ADU Nama NIK Alamat Isi aduan`),
so a step is asked only while its slot is empty. An optional step answered with
LEWATI holds SKIPPED. "ubah" at any step, or at the summary, lists what can be
changed; the chosen slot is emptied and asked again (its name waits in EDIT), then
the summary comes back.

This module is plain Python over bot/ rules (the action in actions/reports.py is only
the adapter to Rasa's form), so the steps can be read and tested
without Rasa; actions.reports adapts it to the form's slots and messages.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Optional, Tuple

from bot.conversation.choices import Choice, numbered
from bot.rules.nik import InvalidNik, find_niks, parse_nik
from bot.reports.parsing import (
    match_category,
    match_proposed_for,
    normalise_words,
    parse_one_message,
)
from bot.reports.service import (
    MAX_ATTACHMENTS,
    AttachmentDraft,
    InvalidReport,
    ReportDraft,
    check_description,
    draft_summary,
    is_sensitive,
)
from bot.reports.models import (
    ADDRESS_MAX_CHARS,
    CATEGORIES,
    CONTENT_TYPE_MAX_CHARS,
    NAME_MAX_CHARS,
    PROPOSED_FOR_CHOICES,
    URL_MAX_CHARS,
    ProposedFor,
    ReportKind,
    choices_menu,
)

KIND = "report_kind"
PROPOSED_FOR = "report_proposed_for"
SUBJECT_NIK = "report_subject_nik"
SUBJECT_NAME = "report_subject_name"
SUBJECT_ADDRESS = "report_subject_address"
CATEGORY = "report_category"
DESCRIPTION = "report_description"
EVIDENCE = "report_evidence"
EDIT = "report_edit"
CONFIRM = "report_confirm"
ATTACHMENTS = "report_attachments"

# Every slot the form fills, so leaving the form can forget them all (a NIK must
# not linger in the conversation).
SLOTS = (
    KIND, PROPOSED_FOR, SUBJECT_NIK, SUBJECT_NAME, SUBJECT_ADDRESS, CATEGORY,
    DESCRIPTION, EVIDENCE, EDIT, CONFIRM, ATTACHMENTS,
)

SKIPPED = "-"
EVIDENCE_ATTACHED = "foto"
CONFIRMED = "ya"
EDITING = "ubah"

KINDS_BY_INTENT = {
    "submit_usul": ReportKind.USUL,
    "submit_sanggah": ReportKind.SANGGAH,
    "file_complaint": ReportKind.PENGADUAN,
}

# Intents that leave a question unanswered when the message is this short: "batal",
# "gak jadi", "menu", "petugas", "halo". Longer texts are answers, whatever the NLU
# guessed, because a description may well mention an officer or say thanks.
CONTROL_INTENTS = frozenset({
    "cancel", "help", "request_human", "goodbye", "opt_out", "opt_in", "greet", "thank",
})
CONTROL_MAX_WORDS = 4

_SKIP_PHRASES = (
    "lewati", "lewat", "skip", "tidak ada", "tidak tahu", "tidak tau", "belum tahu",
    "tidak punya", "tidak ingat", "lupa",
)
_YES_WORDS = frozenset({
    "ya", "iya", "y", "yes", "ok", "oke", "okey", "benar", "betul", "bener", "kirim",
    "setuju", "sudah benar", "ya benar", "ya betul", "ya kirim", "iya benar", "siap",
    "lanjut", "sip",
})
_NO_WORDS = frozenset({"tidak", "bukan", "belum", "no", "salah", "keliru"})
_EDIT_WORDS = frozenset({"ubah", "ganti", "salah", "koreksi", "perbaiki", "edit", "revisi", "keliru"})
# Words that show a text before a NIK is a request rather than a name
# ("tolong daftarkan ibu saya 3201..."); such a "name" is left for the form to ask.
_NOT_NAME_WORDS = frozenset({
    "mau", "ingin", "tolong", "mohon", "daftar", "daftarkan", "usul", "usulkan", "sanggah",
    "lapor", "adu", "aduan", "pengaduan", "penerima", "saya", "kami", "nik", "cek", "itu",
    "ini", "yang", "dengan", "jadi", "bansos", "bantuan", "tidak", "sudah",
})
_NAME_MAX_WORDS = 6
_ADDRESS_MIN_CHARS = 5
_NAME_MIN_LETTERS = 3
# The summary on SMS quotes long answers in part, so it and its question stay
# within three segments.
_SMS_QUOTE_CHARS = {"description": 100, "subject_name": 50, "subject_address": 80}

KIND_TITLES = {
    ReportKind.USUL: "Usulan penerima bansos.",
    ReportKind.SANGGAH: "Sanggahan penerima bansos.",
    ReportKind.PENGADUAN: "Pengaduan bansos.",
}
ONE_MESSAGE_TIPS = {
    ReportKind.USUL: "USUL Nama NIK Alamat Alasan",
    ReportKind.SANGGAH: "SANGGAH Nama NIK Alamat Alasan",
    ReportKind.PENGADUAN: "ADU Nama NIK Alamat Isi aduan",
}
CANCEL_HINT = "Ketik BATAL untuk membatalkan."
CONFIRM_QUESTION = "Balas YA untuk mengirim, UBAH untuk memperbaiki, atau BATAL untuk membatalkan."
CONFIRM_RETRY = "Mohon balas YA untuk mengirim, UBAH untuk memperbaiki, atau BATAL untuk membatalkan."
# The summary's answers to tap on WhatsApp: each sends the word the question names.
CONFIRM_CHOICES = (Choice("Ya, kirim", "YA"), Choice("Ubah", "UBAH"), Choice("Batal", "BATAL"))
UNCLEAR = "Maaf, jawaban Bapak/Ibu belum kami pahami."
NO_SUCH_CHOICE = "Maaf, pilihan itu tidak ada."
NO_PHOTO_YET = "Foto belum kami terima."
NOTHING_TO_EDIT = "Belum ada jawaban yang bisa diubah."
NAME_REQUIRED = "Nama perlu diisi agar petugas dapat menemukan keluarga tersebut."
ADDRESS_REQUIRED = "Alamat perlu diisi agar petugas dapat menemukan keluarga tersebut."


class AnswerOutcome(enum.Enum):
    """What a message did to the question it answered."""

    DONE = "done"  # accepted, or refused with a reason already said
    UNCLEAR = "unclear"  # not an answer: a control message, or a retry hint is due
    INTERRUPT = "interrupt"  # not for this form: Rasa's rules answer it


@dataclass(frozen=True)
class FormInput:
    """A citizen's message as the form reads it."""

    text: str
    intent: Optional[str] = None
    # A keyword (`/intent` payload from the webhook) rather than free text.
    is_payload: bool = False
    media: Tuple[AttachmentDraft, ...] = ()

    @property
    def words(self) -> str:
        return normalise_words(self.text)

    @property
    def is_control(self) -> bool:
        """Cancel, menu, a human, a greeting: short messages that are not answers."""
        return self.intent in CONTROL_INTENTS and len(self.words.split()) <= CONTROL_MAX_WORDS

    @property
    def is_skip(self) -> bool:
        words = f" {self.words} "
        return any(f" {phrase} " in words for phrase in _SKIP_PHRASES)

    @property
    def is_yes(self) -> bool:
        return self.words in _YES_WORDS or (self.intent == "affirm" and not self.is_no)

    @property
    def is_no(self) -> bool:
        return self.words in _NO_WORDS or self.intent == "deny"


@dataclass
class Turn:
    """The form's slots during one turn, the changes to send back, and what to say."""

    kind: str
    whatsapp: bool
    values: Dict[str, Any]
    changes: Dict[str, Any] = field(default_factory=dict)
    messages: List[str] = field(default_factory=list)
    # The step whose retry hint was said this turn (the summary is then not repeated).
    hinted: Optional[str] = None

    def get(self, slot: str) -> Any:
        return self.values.get(slot)

    def set(self, slot: str, value: Any) -> None:
        self.values[slot] = value
        self.changes[slot] = value

    def say(self, text: str) -> None:
        self.messages.append(text)

    @property
    def attachments(self) -> List[Dict[str, str]]:
        return list(self.get(ATTACHMENTS) or [])

    def attach(self, media: Tuple[AttachmentDraft, ...]) -> None:
        """Keep media as evidence: http(s) URLs only, each once, at most MAX_ATTACHMENTS."""
        kept = self.attachments
        known = {item.get("url") for item in kept}
        for item in media:
            if len(kept) >= MAX_ATTACHMENTS:
                break
            url = item.url or ""
            if url in known or not url.startswith(("https://", "http://")) or len(url) > URL_MAX_CHARS:
                continue
            kept.append({"url": url, "content_type": (item.content_type or "")[:CONTENT_TYPE_MAX_CHARS]})
            known.add(url)
        if kept != self.attachments:
            self.set(ATTACHMENTS, kept)


# ---- the order of the questions ------------------------------------------------------


def steps(turn: Turn) -> List[str]:
    """The questions this report needs, in order (a filled one is not asked again)."""
    by_name = turn.get(SUBJECT_NIK) == SKIPPED
    if turn.kind == ReportKind.PENGADUAN:
        order = [CATEGORY, DESCRIPTION, SUBJECT_NIK] + ([SUBJECT_ADDRESS] if by_name else [])
    else:
        subject = [SUBJECT_NIK] + ([SUBJECT_NAME, SUBJECT_ADDRESS] if by_name else [])
        first = [PROPOSED_FOR] if turn.kind == ReportKind.USUL else []
        order = first + subject + [CATEGORY, DESCRIPTION]
    if turn.whatsapp and not turn.attachments:
        order.append(EVIDENCE)
    return order + [CONFIRM]


def next_slot(turn: Turn) -> Optional[str]:
    """The slot to ask for next, or None when the report is ready to be filed."""
    if turn.get(CONFIRM) == EDITING and turn.get(EDIT) is None:
        return EDIT
    target = turn.get(EDIT)
    if target is not None and turn.get(target) is None:
        return target
    return next((slot for slot in steps(turn) if turn.get(slot) is None), None)


# ---- starting: what the opening message already says --------------------------------


def start(kind: str, whatsapp: bool, opening: FormInput, report_text: Optional[str]) -> Turn:
    """A new report of `kind`, with whatever the opening message already gives.

    `report_text` is what followed a keyword (`ADU Siti 3201... Desa ... isi`): it
    is read as the one-message format. Free text is read that way only when it
    carries a NIK; otherwise it was a request ("mau lapor pungli") and gives at
    most the category.
    """
    turn = Turn(kind, whatsapp, {slot: None for slot in SLOTS})
    # Every slot is sent back, so nothing of an earlier, unfinished report remains.
    for slot in SLOTS:
        turn.set(slot, None)
    turn.set(KIND, kind)
    turn.attach(opening.media)
    text = report_text if opening.is_payload else opening.text
    if not text:
        return turn
    parsed = parse_one_message(kind, text)
    if parsed.category:
        turn.set(CATEGORY, parsed.category)
    if report_text is None and parsed.subject_nik is None:
        return turn
    if parsed.subject_name and _plausible_name(parsed.subject_name):
        turn.set(SUBJECT_NAME, parsed.subject_name)
    if parsed.subject_address and len(parsed.subject_address) <= ADDRESS_MAX_CHARS:
        turn.set(SUBJECT_ADDRESS, parsed.subject_address)
    if parsed.description:
        try:
            turn.set(DESCRIPTION, check_description(parsed.description))
        except InvalidReport:
            pass  # too short to be the report itself: the form asks for it
    if parsed.subject_nik:
        try:
            turn.set(SUBJECT_NIK, parse_nik(parsed.subject_nik).value)
        except InvalidNik as exc:
            turn.say(exc.reason)
            turn.set(EDIT, SUBJECT_NIK)
    return turn


def _plausible_name(text: str) -> bool:
    words = normalise_words(text).split()
    return (
        0 < len(words) <= _NAME_MAX_WORDS
        and len(text) <= NAME_MAX_CHARS
        and not any(ch.isdigit() for ch in text)
        and not set(words) & _NOT_NAME_WORDS
    )


# ---- answering the question asked ------------------------------------------------------


def answer(turn: Turn, slot: str, message: FormInput) -> AnswerOutcome:
    """Apply the citizen's answer to `slot`, saying why when it is refused."""
    if message.is_payload:
        return AnswerOutcome.INTERRUPT
    turn.attach(message.media)
    # A description may well start with "salah" ("salah sasaran, dia mampu ...").
    if slot != DESCRIPTION or len(message.words.split()) <= 2:
        edit = _edit_command(turn, message)
        if edit is not None:
            return edit
    outcome = _ANSWERS[slot](turn, message)
    if outcome is AnswerOutcome.UNCLEAR:
        if message.is_control:
            return AnswerOutcome.INTERRUPT
        turn.say(_RETRY_HINTS.get(slot, UNCLEAR))
        turn.hinted = slot
        return AnswerOutcome.DONE
    target = turn.get(EDIT)
    if target is not None and turn.get(target) is not None:
        # The answer being corrected is in: back to the summary.
        turn.set(EDIT, None)
        turn.set(CONFIRM, None)
    return outcome


def _edit_command(turn: Turn, message: FormInput) -> Optional[AnswerOutcome]:
    """ "ubah", "salah nik", "ganti 3": the correction the citizen asks for, if any."""
    words = message.words.split()
    if not words or words[0] not in _EDIT_WORDS:
        return None
    rest = " ".join(words[1:])
    options = edit_options(turn)
    if rest:
        chosen = _pick_option(options, rest)
        if chosen is None:
            return None
        _start_editing(turn, chosen)
        return AnswerOutcome.DONE
    if not options:
        turn.say(NOTHING_TO_EDIT)
        return AnswerOutcome.DONE
    turn.set(EDIT, None)
    turn.set(CONFIRM, EDITING)
    return AnswerOutcome.DONE


def _answer_proposed_for(turn: Turn, message: FormInput) -> AnswerOutcome:
    choice = match_proposed_for(message.text)
    if choice is None:
        return AnswerOutcome.UNCLEAR
    turn.set(PROPOSED_FOR, choice)
    return AnswerOutcome.DONE


def _answer_subject_nik(turn: Turn, message: FormInput) -> AnswerOutcome:
    """A NIK, or LEWATI, or (for a household whose NIK is not known) its name."""
    found = find_niks(message.text)
    digits = "".join(ch for ch in message.text if ch.isdigit())
    if found or len(digits) >= 6:
        try:
            turn.set(SUBJECT_NIK, parse_nik(found[0] if found else digits).value)
        except InvalidNik as exc:
            turn.say(exc.reason)
            turn.set(SUBJECT_NIK, None)
        return AnswerOutcome.DONE
    if message.is_skip:
        turn.set(SUBJECT_NIK, SKIPPED)
        return AnswerOutcome.DONE
    if message.is_control or not _plausible_name(message.text) or not _has_letters(message.text):
        return AnswerOutcome.UNCLEAR
    turn.set(SUBJECT_NAME, " ".join(message.text.split()))
    turn.set(SUBJECT_NIK, SKIPPED)
    return AnswerOutcome.DONE


def _answer_subject_name(turn: Turn, message: FormInput) -> AnswerOutcome:
    if find_niks(message.text):
        return _answer_subject_nik(turn, message)
    if message.is_skip:
        turn.say(NAME_REQUIRED)
        return AnswerOutcome.DONE
    if message.is_control:
        return AnswerOutcome.UNCLEAR
    name = " ".join(message.text.split())
    if not _has_letters(name):
        turn.say(NAME_REQUIRED)
    elif len(name) > NAME_MAX_CHARS:
        turn.say(f"Nama terlalu panjang, maksimal {NAME_MAX_CHARS} huruf.")
    else:
        turn.set(SUBJECT_NAME, name)
    return AnswerOutcome.DONE


def _answer_subject_address(turn: Turn, message: FormInput) -> AnswerOutcome:
    if message.is_skip:
        if turn.kind == ReportKind.PENGADUAN:
            turn.set(SUBJECT_ADDRESS, SKIPPED)
        else:
            turn.say(ADDRESS_REQUIRED)
        return AnswerOutcome.DONE
    if message.is_control:
        return AnswerOutcome.UNCLEAR
    address = " ".join(message.text.split())
    if len(address) < _ADDRESS_MIN_CHARS:
        turn.say(ADDRESS_REQUIRED)
    elif len(address) > ADDRESS_MAX_CHARS:
        turn.say(f"Alamat terlalu panjang, maksimal {ADDRESS_MAX_CHARS} huruf.")
    else:
        turn.set(SUBJECT_ADDRESS, address)
    return AnswerOutcome.DONE


def _answer_category(turn: Turn, message: FormInput) -> AnswerOutcome:
    category = match_category(turn.kind, message.text)
    if category is None:
        return AnswerOutcome.UNCLEAR
    turn.set(CATEGORY, category)
    return AnswerOutcome.DONE


def _answer_description(turn: Turn, message: FormInput) -> AnswerOutcome:
    if message.is_control:
        return AnswerOutcome.UNCLEAR
    try:
        turn.set(DESCRIPTION, check_description(message.text))
    except InvalidReport as exc:
        turn.say(exc.reason)
    return AnswerOutcome.DONE


def _answer_evidence(turn: Turn, message: FormInput) -> AnswerOutcome:
    if turn.attachments:
        turn.set(EVIDENCE, EVIDENCE_ATTACHED)
    elif message.is_skip or message.is_no:
        turn.set(EVIDENCE, SKIPPED)
    else:
        return AnswerOutcome.UNCLEAR
    return AnswerOutcome.DONE


def _answer_edit(turn: Turn, message: FormInput) -> AnswerOutcome:
    """Which answer to change: its number or name, or simply the new NIK."""
    if find_niks(message.text):
        return _replace_nik(turn, message)
    chosen = _pick_option(edit_options(turn), message.words)
    if chosen is not None:
        _start_editing(turn, chosen)
    elif message.is_yes or message.is_no:
        turn.set(CONFIRM, None)
    else:
        return AnswerOutcome.UNCLEAR
    return AnswerOutcome.DONE


def _answer_confirm(turn: Turn, message: FormInput) -> AnswerOutcome:
    if find_niks(message.text):
        return _replace_nik(turn, message)
    if message.is_yes:
        turn.set(CONFIRM, CONFIRMED)
    elif message.is_no:
        turn.set(CONFIRM, EDITING)
    else:
        return AnswerOutcome.UNCLEAR
    return AnswerOutcome.DONE


_ANSWERS: Dict[str, Callable[[Turn, FormInput], AnswerOutcome]] = {
    PROPOSED_FOR: _answer_proposed_for,
    SUBJECT_NIK: _answer_subject_nik,
    SUBJECT_NAME: _answer_subject_name,
    SUBJECT_ADDRESS: _answer_subject_address,
    CATEGORY: _answer_category,
    DESCRIPTION: _answer_description,
    EVIDENCE: _answer_evidence,
    EDIT: _answer_edit,
    CONFIRM: _answer_confirm,
}
_RETRY_HINTS = {
    PROPOSED_FOR: NO_SUCH_CHOICE,
    CATEGORY: NO_SUCH_CHOICE,
    EDIT: NO_SUCH_CHOICE,
    EVIDENCE: NO_PHOTO_YET,
    CONFIRM: CONFIRM_RETRY,
}


def _has_letters(text: str) -> bool:
    return sum(ch.isalpha() for ch in text) >= _NAME_MIN_LETTERS


# ---- corrections ----------------------------------------------------------------------

# (slot, label in the list, words that name it)
_EDITABLE: Tuple[Tuple[str, str, Tuple[str, ...]], ...] = (
    (PROPOSED_FOR, "Untuk siapa", ("untuk", "untuk siapa", "siapa")),
    (SUBJECT_NIK, "NIK", ("nik", "ktp")),
    (SUBJECT_NAME, "Nama", ("nama",)),
    (SUBJECT_ADDRESS, "Alamat", ("alamat", "almt")),
    (CATEGORY, "Alasan", ("alasan", "jenis", "jenis aduan", "kategori", "pilihan")),
    (DESCRIPTION, "Keterangan", ("keterangan", "ket", "cerita", "isi", "isi aduan")),
    (EVIDENCE, "Foto", ("foto", "gambar", "lampiran", "bukti")),
)


def edit_options(turn: Turn) -> List[Tuple[str, str, Tuple[str, ...]]]:
    """What the citizen can change now: the answers given so far, labelled as in the summary."""
    options = []
    for slot, label, words in _EDITABLE:
        if slot == PROPOSED_FOR and turn.kind != ReportKind.USUL:
            continue
        if slot == EVIDENCE:
            given = turn.whatsapp and (bool(turn.attachments) or turn.get(EVIDENCE) is not None)
        else:
            given = turn.get(slot) is not None
        if given:
            options.append((slot, label, words))
    return options


def _pick_option(options: List[Tuple[str, str, Tuple[str, ...]]], words: str) -> Optional[str]:
    if words.isdigit():
        number = int(words)
        return options[number - 1][0] if 1 <= number <= len(options) else None
    return next((slot for slot, _, names in options if words in names), None)


def _replace_nik(turn: Turn, message: FormInput) -> AnswerOutcome:
    """A new NIK sent at the summary or the list of corrections replaces the old one.

    A valid one brings the summary back; a wrong one is explained and asked again.
    """
    _start_editing(turn, SUBJECT_NIK)
    return _answer_subject_nik(turn, message)


def _start_editing(turn: Turn, slot: str) -> None:
    turn.set(slot, None)
    if slot == EVIDENCE:
        turn.set(ATTACHMENTS, None)
    turn.set(EDIT, slot)
    turn.set(CONFIRM, EDITING)


# ---- the questions ----------------------------------------------------------------------


def question(turn: Turn, slot: str, opening: bool = False) -> Optional[str]:
    """The text that asks for `slot`; None when the retry hint already asked it.

    The first question of a new report names the kind of report and how to cancel;
    on WhatsApp it also shows how to send everything in one message next time.
    """
    if slot == CONFIRM and turn.hinted == CONFIRM:
        return None
    text = _QUESTIONS[slot](turn)
    if opening and slot != CONFIRM:
        text = f"{KIND_TITLES[turn.kind]} {text}\n{CANCEL_HINT}"
        if turn.whatsapp:
            text += f"\nLain kali bisa sekaligus dalam satu pesan: {ONE_MESSAGE_TIPS[turn.kind]}"
    return text


def question_choices(turn: Turn, slot: str) -> List[Choice]:
    """What the question for `slot` offers to tap: its numbered answers, or YA / UBAH / BATAL.

    Built from the same lists as the question's numbered lines, so a tap sends the
    number the citizen would have typed.
    """
    if slot == PROPOSED_FOR:
        return numbered([choice.label for choice in PROPOSED_FOR_CHOICES])
    if slot == CATEGORY:
        return numbered([choice.label for choice in CATEGORIES[turn.kind]])
    if slot == EDIT:
        return numbered([label for _, label, _ in edit_options(turn)])
    if slot == CONFIRM:
        return list(CONFIRM_CHOICES)
    return []


def _ask_proposed_for(turn: Turn) -> str:
    return "Usulan ini untuk siapa? Balas nomornya:\n" + choices_menu(PROPOSED_FOR_CHOICES)


def _ask_subject_nik(turn: Turn) -> str:
    if turn.kind == ReportKind.PENGADUAN:
        return (
            "Bila ada, kirim NIK penerima bansos yang bersangkutan (16 angka) agar mudah "
            "diperiksa. Bila tidak ada, ketik LEWATI."
        )
    if turn.kind == ReportKind.SANGGAH:
        whose = "penerima yang disanggah (16 angka)"
    elif turn.get(PROPOSED_FOR) == ProposedFor.UNTUK_DIRI_SENDIRI:
        whose = "kepala keluarga Bapak/Ibu (16 angka di KTP/KK)"
    else:
        whose = "kepala keluarga yang diusulkan (16 angka di KTP/KK)"
    return f"Kirim NIK {whose}. Bila tidak tahu, kirim nama lengkapnya."


def _ask_subject_name(turn: Turn) -> str:
    if turn.kind == ReportKind.PENGADUAN:
        return "Kirim nama lengkap penerima bansos yang bersangkutan."
    return "Kirim nama lengkap kepala keluarga yang dimaksud."


def _ask_subject_address(turn: Turn) -> str:
    if turn.kind == ReportKind.PENGADUAN:
        return (
            "Kirim alamat (desa/kelurahan, kecamatan, kabupaten/kota) agar aduan sampai ke "
            "dinas sosial yang tepat. Bila tidak ingin, ketik LEWATI."
        )
    return "Kirim alamatnya: jalan/dusun, RT/RW, desa/kelurahan, kecamatan, kabupaten/kota."


_CATEGORY_QUESTIONS = {
    ReportKind.USUL: "Apa alasan keluarga ini perlu dibantu?",
    ReportKind.SANGGAH: "Apa alasan sanggahan?",
    ReportKind.PENGADUAN: "Apa jenis aduan Bapak/Ibu?",
}


def _ask_category(turn: Turn) -> str:
    return f"{_CATEGORY_QUESTIONS[turn.kind]} Balas nomornya:\n" + choices_menu(CATEGORIES[turn.kind])


def _ask_description(turn: Turn) -> str:
    if turn.kind == ReportKind.USUL:
        return "Ceritakan singkat kondisi keluarga tersebut (minimal 10 huruf)."
    if turn.kind == ReportKind.SANGGAH:
        return "Ceritakan singkat alasan sanggahan (minimal 10 huruf)."
    text = "Ceritakan singkat isi aduan: apa yang terjadi, kapan dan di mana."
    if is_sensitive(turn.kind, turn.get(CATEGORY) or ""):
        text += " Identitas Bapak/Ibu kami rahasiakan."
    return text


def _ask_evidence(turn: Turn) -> str:
    return (
        "Bila ada, kirim foto bukti (misalnya foto rumah, kartu KKS atau kuitansi). "
        "Bila tidak ada, ketik LEWATI."
    )


def _ask_edit(turn: Turn) -> str:
    lines = [f"{number}. {label}" for number, (_, label, _) in enumerate(edit_options(turn), 1)]
    return "Bagian mana yang ingin diubah? Balas nomornya:\n" + "\n".join(lines)


def _ask_confirm(turn: Turn) -> str:
    shown = draft(turn, reporter_contact_id=0, channel=None)
    if not turn.whatsapp:
        shown = replace(
            shown,
            **{name: _quote(getattr(shown, name), limit) for name, limit in _SMS_QUOTE_CHARS.items()},
        )
    # A blank line would split the text into two messages (Rasa splits at "\n\n").
    summary = "\n".join(line for line in draft_summary(shown).splitlines() if line.strip())
    return f"{summary}\n{CONFIRM_QUESTION}"


def _quote(text: Optional[str], limit: int) -> Optional[str]:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 3].rsplit(" ", 1)[0] + "..."


_QUESTIONS: Dict[str, Callable[[Turn], str]] = {
    PROPOSED_FOR: _ask_proposed_for,
    SUBJECT_NIK: _ask_subject_nik,
    SUBJECT_NAME: _ask_subject_name,
    SUBJECT_ADDRESS: _ask_subject_address,
    CATEGORY: _ask_category,
    DESCRIPTION: _ask_description,
    EVIDENCE: _ask_evidence,
    EDIT: _ask_edit,
    CONFIRM: _ask_confirm,
}


# ---- the report itself ----------------------------------------------------------------


def _given(value: Any) -> Optional[str]:
    return None if value in (None, SKIPPED) else str(value)


def draft(turn: Turn, reporter_contact_id: int, channel: Optional[str]) -> ReportDraft:
    """The report as collected, for the summary and for ReportService.create."""
    return ReportDraft(
        kind=turn.kind,
        reporter_contact_id=reporter_contact_id,
        category=turn.get(CATEGORY) or "",
        description=turn.get(DESCRIPTION) or "",
        channel=channel,
        proposed_for=turn.get(PROPOSED_FOR) if turn.kind == ReportKind.USUL else None,
        subject_nik=_given(turn.get(SUBJECT_NIK)),
        subject_name=_given(turn.get(SUBJECT_NAME)),
        subject_address=_given(turn.get(SUBJECT_ADDRESS)),
        attachments=tuple(
            AttachmentDraft(item["url"], item.get("content_type", "")) for item in turn.attachments
        ),
    )
