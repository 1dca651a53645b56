"""The report form, filing and TIKET actions, run with real rasa_sdk trackers and dispatchers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from actions import handoff as handoff_actions
from bot.handoff.service import Escalations
from bot.handoff.models import Handoff, HandoffReason
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions import reports as report_actions
from bot.reports.dialogue import (
    ATTACHMENTS,
    CATEGORY,
    CONFIRM,
    CONFIRM_QUESTION,
    CONFIRM_RETRY,
    DESCRIPTION,
    EDIT,
    EDITING,
    EVIDENCE,
    KIND,
    PROPOSED_FOR,
    SKIPPED,
    SLOTS,
    SUBJECT_ADDRESS,
    SUBJECT_NAME,
    SUBJECT_NIK,
)
from actions.reports import (
    ASK_TICKET,
    CANNOT_FILE,
    ActionCheckTicket,
    ActionForgetReport,
    ActionSubmitReport,
    Stage,
    ValidateReportForm,
    stage,
)
from bot.db import Database
from bot.channels.outbox import Outbox
from bot.channels.sandbox import SandboxTransport
from bot.conversation.models import Channel, Contact, Direction, Message, MessageStatus
from bot.reports.service import IDENTITY_PROTECTED_TEXT, NOT_FOUND_TEXT, ReportService
from bot.reports.models import Report, ReportKind
from bot.rules.smstext import is_gsm7, segment_count

NIK_SITI = "3201014501900003"
NIK_BUDI = "3578031208850002"
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)
REPORTER = "kreporter"
STRANGER = "kstranger"
PHOTO = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"


@pytest.fixture
def service(sqlite_db: Database) -> Iterator[ReportService]:
    with sqlite_db.session() as session:
        session.add_all(
            [
                Contact(address="+6281234567890", conversation_key=REPORTER, last_channel=Channel.SMS),
                Contact(address="+6285712345678", conversation_key=STRANGER, last_channel=Channel.SMS),
            ]
        )
    service = ReportService(sqlite_db, Outbox(sqlite_db, SandboxTransport()), clock=lambda: NOW)
    report_actions.report_service.override(service)
    handoff_actions.escalations.override(Escalations(sqlite_db, clock=lambda: NOW))
    yield service
    report_actions.report_service.override(None)
    handoff_actions.escalations.override(None)


def store_message(db: Database, body: str, media: list[tuple[str, str]] = ()) -> int:
    """An inbound WhatsApp message of the reporter, as the webhook stores it."""
    with db.session() as session:
        contact = session.scalars(select(Contact).where(Contact.conversation_key == REPORTER)).one()
        message = Message(
            contact_id=contact.id,
            direction=Direction.INBOUND,
            channel=Channel.WHATSAPP,
            provider="twilio",
            body=body,
            media=[{"url": url, "content_type": kind} for url, kind in media],
            status=MessageStatus.ANSWERED,
        )
        session.add(message)
        session.flush()
        return message.id


def user_event(text: str, intent: str, metadata: dict[str, Any], entities: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "event": "user",
        "text": text,
        "parse_data": {"intent": {"name": intent, "confidence": 1.0}, "entities": entities},
        "metadata": metadata,
    }


def make_tracker(
    text: str,
    intent: str = "inform",
    slots: dict[str, Any] | None = None,
    at: Stage = Stage.ANSWERED,
    channel: str = "sms",
    entities: dict[str, str] | None = None,
    message_id: int | None = None,
    previous_id: int | None = None,
    sender: str = REPORTER,
) -> Tracker:
    """A tracker as Rasa sends it to the form's validation at the given stage."""
    values: dict[str, Any] = {slot: None for slot in SLOTS} | {"requested_slot": None}
    values |= slots or {}
    metadata: dict[str, Any] = {"channel": channel}
    if message_id is not None:
        metadata["message_id"] = message_id
    entity_list = [{"entity": name, "value": value} for name, value in (entities or {}).items()]
    events: list[dict[str, Any]] = []
    if previous_id is not None:
        events += [
            {"event": "action", "name": "action_listen"},
            user_event("sebelumnya", "inform", {"channel": channel, "message_id": previous_id}, []),
            {"event": "action", "name": "report_form"},
        ]
    events += [
        {"event": "action", "name": "action_listen"},
        user_event(text, intent, metadata, entity_list),
    ]
    if at is Stage.STARTED:
        events.append({"event": "active_loop", "name": "report_form"})
    elif at is Stage.RESUMED:
        events += [
            {"event": "action_execution_rejected", "name": "report_form"},
            {"event": "action", "name": "utter_greet"},
            {"event": "bot", "text": "Halo"},
        ]
    events += [
        {"event": "slot", "name": "requested_slot", "value": values["requested_slot"]},
        {"event": "action", "name": "report_form"},
    ]
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 1.0},
        "entities": entity_list,
        "metadata": metadata,
    }
    return Tracker(sender, values, latest, events, False, None, {"name": "report_form"}, "report_form")


def run(action: Any, tracker: Tracker) -> tuple[list[dict[str, Any]], list[str]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {}))
    return events, [message["text"] for message in dispatcher.messages]


def slots_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {event["name"]: event["value"] for event in events if event["event"] == "slot"}


def start(text: str, intent: str, **kwargs: Any) -> tuple[dict[str, Any], str]:
    events, texts = run(ValidateReportForm(), make_tracker(text, intent, at=Stage.STARTED, **kwargs))
    assert len(texts) == 1
    return slots_of(events), texts[0]


def reply(text: str, slots: dict[str, Any], intent: str = "inform", **kwargs: Any) -> tuple[dict[str, Any], list[str]]:
    """Answer the question the slots say is asked; returns the slots afterwards."""
    events, texts = run(ValidateReportForm(), make_tracker(text, intent, slots=slots, **kwargs))
    return {slot: None for slot in SLOTS} | slots | slots_of(events), texts


USUL_FOR_OTHERS = {KIND: ReportKind.USUL, PROPOSED_FOR: "untuk_orang_lain", "requested_slot": SUBJECT_NIK}
SANGGAH_FILLED = {
    KIND: ReportKind.SANGGAH,
    SUBJECT_NIK: NIK_BUDI,
    CATEGORY: "meninggal",
    DESCRIPTION: "Sudah meninggal bulan Maret lalu",
    "requested_slot": CONFIRM,
}


# --- the stage of a run -----------------------------------------------------------------------


@pytest.mark.parametrize("at", list(Stage))
def test_stage_is_read_from_the_events(at: Stage) -> None:
    assert stage(make_tracker("halo", at=at)) is at


# --- starting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "intent, kind, first",
    [
        ("submit_usul", ReportKind.USUL, PROPOSED_FOR),
        ("submit_sanggah", ReportKind.SANGGAH, SUBJECT_NIK),
        ("file_complaint", ReportKind.PENGADUAN, CATEGORY),
    ],
)
def test_a_keyword_alone_starts_step_by_step(service: ReportService, intent: str, kind: str, first: str) -> None:
    slots, text = start(f"/{intent}", intent)

    assert slots[KIND] == kind and slots["requested_slot"] == first
    assert text.splitlines()[-1] == "Ketik BATAL untuk membatalkan."
    assert is_gsm7(text) and segment_count(text) <= 2


def test_whatsapp_opening_teaches_the_one_message_format(service: ReportService) -> None:
    _, text = start("/file_complaint", "file_complaint", channel="whatsapp")

    assert text.endswith("ADU Nama NIK Alamat Isi aduan")


def test_whole_complaint_in_one_sms_goes_straight_to_the_summary(service: ReportService) -> None:
    report = f"Siti Aminah {NIK_SITI} Desa Cibinong RT 02 uang bpnt tidak cair 2 bulan"
    slots, text = start(
        f'/file_complaint{{"report_text": "{report}"}}', "file_complaint", entities={"report_text": report}
    )

    assert slots[SUBJECT_NAME] == "Siti Aminah" and slots[SUBJECT_NIK] == NIK_SITI
    assert slots[SUBJECT_ADDRESS] == "Desa Cibinong RT 02"
    assert slots[CATEGORY] == "dana_belum_diterima"
    assert slots["requested_slot"] == CONFIRM
    assert "NIK: 3201********0003" in text and NIK_SITI not in text
    assert text.endswith(CONFIRM_QUESTION)


def test_whole_complaint_on_whatsapp_asks_for_a_photo_next(service: ReportService) -> None:
    report = f"Siti Aminah {NIK_SITI} Desa Cibinong uang bpnt tidak cair"
    slots, text = start("/file_complaint", "file_complaint", channel="whatsapp", entities={"report_text": report})

    assert slots["requested_slot"] == EVIDENCE
    assert "foto" in text and "LEWATI" in text


def test_free_text_request_gives_only_the_category(service: ReportService) -> None:
    slots, text = start("bansos saya dipotong oleh pendamping", "file_complaint")

    assert slots[CATEGORY] == "potongan_pungli" and slots[DESCRIPTION] is None
    assert slots["requested_slot"] == DESCRIPTION
    assert "Identitas Bapak/Ibu kami rahasiakan." in text


def test_request_words_before_a_nik_are_not_taken_for_a_name(service: ReportService) -> None:
    slots, _ = start(f"tolong daftarkan ibu saya nik {NIK_SITI}", "submit_usul")

    assert slots[SUBJECT_NIK] == NIK_SITI and slots[SUBJECT_NAME] is None


def test_an_invalid_nik_in_the_opening_is_explained_and_asked_first(service: ReportService) -> None:
    report = "Budi 3201013202900003 Desa Sukamaju dana tidak masuk sejak Juni"
    slots, text = start("/file_complaint", "file_complaint", entities={"report_text": report})

    assert slots[SUBJECT_NIK] is None and slots["requested_slot"] == SUBJECT_NIK
    assert text.startswith("Tanggal lahir pada NIK tidak valid.")


def test_starting_again_forgets_an_earlier_report(service: ReportService) -> None:
    events, _ = run(
        ValidateReportForm(),
        make_tracker("/submit_usul", "submit_usul", slots={KIND: ReportKind.PENGADUAN, CATEGORY: "lainnya"}, at=Stage.STARTED),
    )

    assert slots_of(events)[CATEGORY] is None and slots_of(events)[KIND] == ReportKind.USUL


# --- answering step by step -----------------------------------------------------------------


def test_usul_for_another_household_asks_its_nik(service: ReportService) -> None:
    slots, texts = reply("2", {KIND: ReportKind.USUL, "requested_slot": PROPOSED_FOR})

    assert slots[PROPOSED_FOR] == "untuk_orang_lain" and slots["requested_slot"] == SUBJECT_NIK
    assert texts == ["Kirim NIK kepala keluarga yang diusulkan (16 angka di KTP/KK). Bila tidak tahu, kirim nama lengkapnya."]


@pytest.mark.parametrize(
    "typed, reason",
    [
        ("3201 0145 0190", "NIK harus 16 angka, Bapak/Ibu mengirim 12 angka."),
        ("3201013202900003", "Tanggal lahir pada NIK tidak valid."),
        ("9901014501900003", "Kode provinsi pada NIK tidak dikenal."),
    ],
)
def test_an_invalid_nik_is_explained_and_asked_again(service: ReportService, typed: str, reason: str) -> None:
    slots, texts = reply(typed, USUL_FOR_OTHERS)

    assert slots[SUBJECT_NIK] is None and slots["requested_slot"] == SUBJECT_NIK
    assert texts[0].startswith(reason + "\nKirim NIK")


def test_a_nik_typed_with_dots_is_accepted(service: ReportService) -> None:
    slots, _ = reply("3201.0145.0190.0003", USUL_FOR_OTHERS)

    assert slots[SUBJECT_NIK] == NIK_SITI and slots["requested_slot"] == "report_category"


def test_a_name_instead_of_a_nik_then_the_address_is_asked(service: ReportService) -> None:
    slots, texts = reply("Mbah Sarinah", USUL_FOR_OTHERS)

    assert slots[SUBJECT_NAME] == "Mbah Sarinah" and slots[SUBJECT_NIK] == SKIPPED
    assert slots["requested_slot"] == SUBJECT_ADDRESS and "alamat" in texts[0]


def test_unknown_nik_then_a_name_is_required(service: ReportService) -> None:
    slots, _ = reply("tidak tahu", USUL_FOR_OTHERS)
    assert slots[SUBJECT_NIK] == SKIPPED and slots["requested_slot"] == SUBJECT_NAME

    slots, texts = reply("lewati", slots)
    assert slots[SUBJECT_NAME] is None and texts[0].startswith("Nama perlu diisi")


@pytest.mark.parametrize("typed, category", [("1", "meninggal"), ("sdh meninggal dunia", "meninggal"), ("pns", "asn_tni_polri")])
def test_sanggah_reason_by_number_or_words(service: ReportService, typed: str, category: str) -> None:
    slots, _ = reply(typed, {KIND: ReportKind.SANGGAH, SUBJECT_NIK: NIK_BUDI, "requested_slot": CATEGORY})

    assert slots[CATEGORY] == category and slots["requested_slot"] == DESCRIPTION


def test_an_unknown_choice_repeats_the_list(service: ReportService) -> None:
    slots, texts = reply("9", {KIND: ReportKind.PENGADUAN, "requested_slot": CATEGORY})

    assert slots["requested_slot"] == CATEGORY
    assert texts[0].startswith("Maaf, pilihan itu tidak ada.\nApa jenis aduan")
    assert "7. Lainnya" in texts[0]


def test_a_short_description_is_refused_with_the_reason(service: ReportService) -> None:
    slots, texts = reply("dipotong", {KIND: ReportKind.PENGADUAN, CATEGORY: "potongan_pungli", "requested_slot": DESCRIPTION})

    assert slots[DESCRIPTION] is None and "minimal 10 huruf" in texts[0]


def test_a_description_that_mentions_an_officer_is_still_an_answer(service: ReportService) -> None:
    slots, _ = reply(
        "petugas pos minta uang rokok 20 ribu setiap pencairan",
        {KIND: ReportKind.PENGADUAN, CATEGORY: "potongan_pungli", "requested_slot": DESCRIPTION},
        intent="request_human",
    )

    assert slots[DESCRIPTION].startswith("petugas pos")


@pytest.mark.parametrize(
    "text, intent",
    [("/cancel", "cancel"), ("/help", "help"), ("/check_status", "check_status"), ("gak jadi", "cancel"), ("halo", "greet")],
)
def test_keywords_and_short_control_messages_leave_the_question_to_the_rules(
    service: ReportService, text: str, intent: str
) -> None:
    tracker = make_tracker(text, intent, slots={KIND: ReportKind.PENGADUAN, CATEGORY: "lainnya", "requested_slot": DESCRIPTION})

    assert run(ValidateReportForm(), tracker) == ([], [])


def test_after_an_interruption_the_question_is_asked_again(service: ReportService) -> None:
    slots = {KIND: ReportKind.PENGADUAN, "requested_slot": CATEGORY}
    events, texts = run(ValidateReportForm(), make_tracker("halo", "greet", slots=slots, at=Stage.RESUMED))

    assert events == [SlotSet("requested_slot", CATEGORY)]
    assert texts[0].startswith("Apa jenis aduan Bapak/Ibu?")


def test_sms_never_asks_for_a_photo(service: ReportService) -> None:
    slots, texts = reply("Sudah meninggal bulan Maret lalu", {**SANGGAH_FILLED, DESCRIPTION: None, "requested_slot": DESCRIPTION})

    assert slots["requested_slot"] == CONFIRM and "foto" not in texts[0]


# --- evidence on WhatsApp ---------------------------------------------------------------------

AT_EVIDENCE = {**SANGGAH_FILLED, "requested_slot": EVIDENCE}


def test_a_photo_sent_at_the_evidence_step_is_kept(service: ReportService, sqlite_db: Database) -> None:
    message_id = store_message(sqlite_db, "ini fotonya", [(PHOTO, "image/jpeg")])
    slots, texts = reply("ini fotonya", AT_EVIDENCE, channel="whatsapp", message_id=message_id)

    assert slots[ATTACHMENTS] == [{"url": PHOTO, "content_type": "image/jpeg"}]
    assert slots[EVIDENCE] == "foto" and slots["requested_slot"] == CONFIRM
    assert "Lampiran: 1 foto/berkas" in texts[0]


def test_a_photo_without_caption_is_collected_with_the_next_message(service: ReportService, sqlite_db: Database) -> None:
    previous = store_message(sqlite_db, "Sudah meninggal bulan Maret lalu")
    store_message(sqlite_db, "", [(PHOTO, "image/jpeg")])
    current = store_message(sqlite_db, "sudah saya kirim")
    slots, _ = reply("sudah saya kirim", AT_EVIDENCE, channel="whatsapp", message_id=current, previous_id=previous)

    assert [item["url"] for item in slots[ATTACHMENTS]] == [PHOTO]


def test_the_photo_can_be_skipped(service: ReportService, sqlite_db: Database) -> None:
    message_id = store_message(sqlite_db, "lewati")
    slots, _ = reply("lewati", AT_EVIDENCE, channel="whatsapp", message_id=message_id)

    assert slots[EVIDENCE] == SKIPPED and slots["requested_slot"] == CONFIRM


def test_text_without_a_photo_asks_again(service: ReportService, sqlite_db: Database) -> None:
    message_id = store_message(sqlite_db, "ya")
    slots, texts = reply("ya", AT_EVIDENCE, channel="whatsapp", message_id=message_id)

    assert slots["requested_slot"] == EVIDENCE and texts[0].startswith("Foto belum kami terima.")


def test_another_reporters_media_is_never_attached(service: ReportService, sqlite_db: Database) -> None:
    message_id = store_message(sqlite_db, "foto", [(PHOTO, "image/jpeg")])
    tracker = make_tracker("foto", slots=AT_EVIDENCE, channel="whatsapp", message_id=message_id, sender=STRANGER)
    events, _ = run(ValidateReportForm(), tracker)

    assert ATTACHMENTS not in slots_of(events)


# --- summary, confirmation and corrections ---------------------------------------------------


def test_yes_completes_the_form(service: ReportService) -> None:
    slots, texts = reply("ya", SANGGAH_FILLED, intent="affirm")

    assert slots[CONFIRM] == "ya" and slots["requested_slot"] is None and texts == []


def test_an_unclear_answer_to_the_summary_gets_the_short_reminder(service: ReportService) -> None:
    slots, texts = reply("hmm gimana ya", SANGGAH_FILLED, intent="nlu_fallback")

    assert slots["requested_slot"] == CONFIRM and texts == [CONFIRM_RETRY]


def test_ubah_lists_what_can_change_and_the_choice_is_asked_again(service: ReportService) -> None:
    slots, texts = reply("ubah", SANGGAH_FILLED)
    assert slots[CONFIRM] == EDITING and slots["requested_slot"] == EDIT
    assert texts == ["Bagian mana yang ingin diubah? Balas nomornya:\n1. NIK\n2. Alasan\n3. Keterangan"]

    slots, texts = reply("2", slots)
    assert slots[CATEGORY] is None and slots["requested_slot"] == CATEGORY
    assert texts[0].startswith("Apa alasan sanggahan?")

    slots, texts = reply("pindah", slots)
    assert slots[CATEGORY] == "pindah" and slots[EDIT] is None and slots[CONFIRM] is None
    assert slots["requested_slot"] == CONFIRM and "Alasan: Sudah pindah" in texts[0]


@pytest.mark.parametrize("typed", ["tidak", "salah"])
def test_no_at_the_summary_offers_corrections(service: ReportService, typed: str) -> None:
    slots, _ = reply(typed, SANGGAH_FILLED, intent="deny")

    assert slots["requested_slot"] == EDIT


def test_a_named_correction_goes_straight_to_that_question(service: ReportService) -> None:
    slots, texts = reply("salah nik", SANGGAH_FILLED, intent="deny")

    assert slots[SUBJECT_NIK] is None and slots["requested_slot"] == SUBJECT_NIK
    assert texts[0].startswith("Kirim NIK penerima yang disanggah")


def test_a_new_nik_at_the_summary_replaces_the_old_one(service: ReportService) -> None:
    slots, texts = reply(NIK_SITI, SANGGAH_FILLED)

    assert slots[SUBJECT_NIK] == NIK_SITI and slots["requested_slot"] == CONFIRM
    assert "NIK: 3201********0003" in texts[0]


def test_a_wrong_new_nik_at_the_summary_is_asked_again(service: ReportService) -> None:
    slots, texts = reply("3201013202900003", SANGGAH_FILLED)

    assert slots[SUBJECT_NIK] is None and slots["requested_slot"] == SUBJECT_NIK
    assert texts[0].startswith("Tanggal lahir pada NIK tidak valid.")


def test_ubah_before_any_answer_says_there_is_nothing_yet(service: ReportService) -> None:
    slots, texts = reply("ubah", {KIND: ReportKind.SANGGAH, "requested_slot": SUBJECT_NIK})

    assert slots["requested_slot"] == SUBJECT_NIK
    assert texts[0].startswith("Belum ada jawaban yang bisa diubah.")


def test_the_sms_summary_of_long_answers_fits_three_segments(service: ReportService) -> None:
    slots = {
        **SANGGAH_FILLED,
        SUBJECT_NIK: SKIPPED,
        SUBJECT_NAME: "Bapak Haji Muhammad Abdurrahman Wahid Kusumawardhana bin Sastrodiharjo",
        SUBJECT_ADDRESS: "Kampung Sukamaju RT 002 RW 005 Desa Cibodas Kecamatan Pacet Kabupaten Cianjur Jawa Barat " * 2,
        DESCRIPTION: "Beliau sudah meninggal dunia sejak bulan Maret tahun lalu dan keluarganya sudah pindah. " * 10,
        "requested_slot": DESCRIPTION,
    }
    _, texts = reply(slots[DESCRIPTION], {**slots, DESCRIPTION: None})

    assert is_gsm7(texts[0]) and segment_count(texts[0]) <= 3
    assert texts[0].endswith(CONFIRM_QUESTION)


# --- filing ---------------------------------------------------------------------------------


def confirmed(slots: dict[str, Any], channel: str = "sms", sender: str = REPORTER) -> Tracker:
    return make_tracker("ya", "affirm", slots={**slots, CONFIRM: "ya"}, channel=channel, sender=sender)


def test_filing_gives_the_reference_and_what_happens_next(service: ReportService, sqlite_db: Database) -> None:
    events, texts = run(ActionSubmitReport(), confirmed(SANGGAH_FILLED))

    with sqlite_db.session() as session:
        report = session.scalars(select(Report)).one()
        assert (report.kind, report.subject_nik, report.category) == (ReportKind.SANGGAH, NIK_BUDI, "meninggal")
        assert report.reporter_channel == Channel.SMS
        reference = report.reference
    assert events == []
    assert texts[0].startswith(f"Terima kasih, sanggahan Bapak/Ibu sudah kami terima dengan nomor {reference}.")
    assert texts[0].endswith(f"Ketik TIKET {reference} untuk melihat perkembangannya.")


def test_a_levy_complaint_is_sensitive_and_keeps_the_photo(service: ReportService, sqlite_db: Database) -> None:
    slots = {
        KIND: ReportKind.PENGADUAN,
        CATEGORY: "potongan_pungli",
        DESCRIPTION: "Ketua kelompok memotong 50 ribu tiap pencairan",
        SUBJECT_NIK: SKIPPED,
        SUBJECT_ADDRESS: SKIPPED,
        ATTACHMENTS: [{"url": PHOTO, "content_type": "image/jpeg"}],
    }
    _, texts = run(ActionSubmitReport(), confirmed(slots, channel="whatsapp"))

    with sqlite_db.session() as session:
        report = session.scalars(select(Report)).one()
        assert report.is_sensitive and report.subject_address is None
        assert [a.url for a in report.attachments] == [PHOTO]
        handoff = session.scalars(select(Handoff)).one()
        assert (handoff.reason, handoff.report_reference) == (HandoffReason.SENSITIVE_REPORT, report.reference)
    assert IDENTITY_PROTECTED_TEXT in texts[0]
    assert "petugas" in texts[0].lower()


def test_the_same_report_twice_keeps_one_reference(service: ReportService) -> None:
    first = run(ActionSubmitReport(), confirmed(SANGGAH_FILLED))[1][0]
    second = run(ActionSubmitReport(), confirmed(SANGGAH_FILLED))[1][0]

    reference = first.split("nomor ")[1].split(".")[0]
    assert reference in second and "tidak dibuat nomor baru" in second


def test_an_unknown_sender_cannot_file(service: ReportService) -> None:
    assert run(ActionSubmitReport(), confirmed(SANGGAH_FILLED, sender="never-seen"))[1] == [CANNOT_FILE]


# --- leaving the form and TIKET -------------------------------------------------------------


def test_forgetting_a_report_keeps_the_status_question(service: ReportService) -> None:
    tracker = make_tracker("CEK", slots={**SANGGAH_FILLED, "nik": NIK_SITI})
    events, _ = run(ActionForgetReport(), tracker)

    assert slots_of(events) == {slot: None for slot in SANGGAH_FILLED if slot != "requested_slot"}


def test_ticket_without_a_reference_asks_for_it(service: ReportService) -> None:
    assert run(ActionCheckTicket(), make_tracker("/check_ticket", "check_ticket"))[1] == [ASK_TICKET]


def test_ticket_answers_the_reporter_and_no_one_else(service: ReportService) -> None:
    text = run(ActionSubmitReport(), confirmed(SANGGAH_FILLED))[1][0]
    reference = text.split("nomor ")[1].split(".")[0]
    typed = reference.lower().replace("-", " ")

    owner = run(ActionCheckTicket(), make_tracker(typed, "check_ticket", entities={"ticket_ref": typed}))[1][0]
    stranger = run(
        ActionCheckTicket(), make_tracker(typed, "check_ticket", entities={"ticket_ref": typed}, sender=STRANGER)
    )[1][0]

    assert owner.startswith(f"Laporan {reference} (sanggahan) sudah kami terima")
    assert stranger == NOT_FOUND_TEXT
