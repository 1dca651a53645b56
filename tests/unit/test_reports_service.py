import csv
import io
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, func, select

import bot.reports.service as reports_module
from bot.config import Settings
from bot.db import Database
from bot.channels.outbox import Outbox
from bot.channels.sandbox import SandboxTransport
from bot.channels.twilio import TwilioTransport
from bot.conversation.models import Channel, Contact, Direction, Message, MessageStatus
from bot.rules.nik import InvalidNik, find_niks, parse_nik
from bot.reports.service import (
    IDENTITY_PROTECTED_TEXT,
    MAX_REFERENCE_ATTEMPTS,
    NOT_FOUND_TEXT,
    AttachmentDraft,
    InvalidReport,
    ReportDraft,
    ReportNotFound,
    ReportService,
    StatusChangeNotAllowed,
    draft_summary,
    export_lines,
    may_handle,
)
from bot.reports.models import Report, ReportEvent, ReportEventType, ReportKind, ReportStatus
from bot.rules.smstext import is_gsm7, segment_count
from tools.fake_twilio import FakeTwilioApi
from tests.support.reports import insert_reports
from tests.support.twilio import SERVICE_NUMBER, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN

NIK_SITI = "3201014501900003"
NIK_BUDI = "3201010501900003"
NIK_JOGJA = "3404010501900003"
REPORTER = "+6281234567890"
STRANGER = "+6285712345678"
T0 = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def add_contact(db: Database, address: str, channel: str = Channel.SMS, opted_out: bool = False) -> int:
    """A contact who last wrote on `channel` at T0 (so WhatsApp's window is open)."""
    with db.session() as session:
        contact = Contact(address=address, last_channel=channel, opted_out=opted_out)
        session.add(contact)
        session.flush()
        session.add(
            Message(
                contact_id=contact.id, direction=Direction.INBOUND, channel=channel, provider="twilio",
                body="halo", status=MessageStatus.ANSWERED, created_at=T0,
            )
        )
        return contact.id


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def service(db: Database, clock: Clock) -> ReportService:
    return ReportService(db, Outbox(db, SandboxTransport()), clock=clock)


@pytest.fixture
def reporter(db: Database) -> int:
    return add_contact(db, REPORTER)


@pytest.fixture
def stranger(db: Database) -> int:
    return add_contact(db, STRANGER)


def complaint(reporter_id: int, **changes) -> ReportDraft:
    draft = ReportDraft(
        kind=ReportKind.PENGADUAN,
        reporter_contact_id=reporter_id,
        category="dana_belum_diterima",
        description="Dana PKH tahap 3 belum diterima sudah 2 bulan",
        subject_nik=NIK_SITI,
        subject_name="Siti Aminah",
        subject_address="Kp. Sukamaju RT 02/05",
    )
    return replace(draft, **changes)


def stored(db: Database, reference: str) -> Report:
    with db.session() as session:
        report = session.scalar(select(Report).where(Report.reference == reference))
        assert report is not None
        report.events, report.attachments  # load while the session is open
        return report


def count_reports(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Report))


def outbound(db: Database) -> list[Message]:
    with db.session() as session:
        return list(session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND).order_by(Message.id)))


# ---- create -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, prefix, changes",
    [
        (ReportKind.USUL, "USL-", {"category": "lansia_tunggal", "proposed_for": "untuk_orang_lain"}),
        (ReportKind.SANGGAH, "SGH-", {"category": "meninggal"}),
        (ReportKind.PENGADUAN, "ADU-", {}),
    ],
)
def test_create_each_kind(db, service, reporter, kind, prefix, changes):
    created = service.create(complaint(reporter, kind=kind, **changes))

    assert created.reference.startswith(prefix + "20261123-")
    assert created.merged is False
    assert created.reference in created.reply_text
    assert f"Ketik TIKET {created.reference} " in created.reply_text
    assert is_gsm7(created.reply_text) and segment_count(created.reply_text) <= 2
    report = stored(db, created.reference)
    assert (report.kind, report.status, report.reporter_channel) == (kind, ReportStatus.DITERIMA, "sms")
    assert report.subject_nik == NIK_SITI
    assert report.province_code == "32"
    assert report.routed_to == "3201"
    assert report.proposed_for == changes.get("proposed_for")
    assert [(e.event, e.from_status, e.to_status, e.actor) for e in report.events] == [
        (ReportEventType.CREATED, None, ReportStatus.DITERIMA, "sistem")
    ]


def test_region_without_nik_comes_from_the_form(db, service, reporter):
    created = service.create(
        complaint(reporter, subject_nik=None, province_code="34", regency="Sleman", village="Caturtunggal")
    )
    report = stored(db, created.reference)
    assert (report.province_code, report.regency, report.village, report.routed_to) == (
        "34", "Sleman", "Caturtunggal", "34",
    )


def test_province_given_wins_over_the_nik_and_routes_to_the_province(db, service, reporter):
    created = service.create(complaint(reporter, subject_nik=NIK_JOGJA, province_code="32"))
    assert (stored(db, created.reference).province_code, stored(db, created.reference).routed_to) == ("32", "32")


def test_complaint_without_any_region_waits_in_the_national_queue(db, service, reporter):
    created = service.create(complaint(reporter, subject_nik=None))
    assert stored(db, created.reference).routed_to is None


def test_channel_defaults_to_the_reporters_last_channel(db, service):
    whatsapp_user = add_contact(db, "+6281311112222", Channel.WHATSAPP)
    created = service.create(complaint(whatsapp_user))
    assert stored(db, created.reference).reporter_channel == Channel.WHATSAPP


def test_attachments_are_kept(db, service, reporter):
    media = (
        AttachmentDraft("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", "image/jpeg"),
    )
    created = service.create(complaint(reporter, attachments=media))
    report = stored(db, created.reference)
    assert [(a.url, a.content_type) for a in report.attachments] == [(media[0].url, "image/jpeg")]


def test_text_is_stored_without_control_characters_and_with_any_unicode(db, service, reporter):
    created = service.create(complaint(reporter, description="Dana\x00 belum  cair 😢 sudah lama", subject_name=" Siti\tAminah "))
    report = stored(db, created.reference)
    assert report.description == "Dana belum cair 😢 sudah lama"
    assert report.subject_name == "Siti Aminah"


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"subject_nik": "320101450190003"}, "subject_nik"),
        ({"subject_nik": "3201O14501900003"}, "subject_nik"),
        ({"description": "blm cair"}, "description"),
        ({"description": "          a        "}, "description"),
        ({"description": "x" * 2001}, "description"),
        ({"category": "meninggal"}, "category"),
        ({"category": ""}, "category"),
        ({"subject_name": "S" * 201}, "subject_name"),
        ({"subject_address": "A" * 501}, "subject_address"),
        ({"province_code": "99"}, "province_code"),
        ({"attachments": (AttachmentDraft("https://example.org/a.jpg"),) * 11}, "attachments"),
        ({"kind": ReportKind.USUL, "category": "disabilitas"}, "proposed_for"),
        ({"kind": ReportKind.SANGGAH, "category": "pindah", "subject_nik": None, "subject_name": " "}, "subject_name"),
    ],
)
def test_validation_errors_name_the_field_and_say_why_in_indonesian(db, service, reporter, changes, field):
    with pytest.raises(InvalidReport) as raised:
        service.create(complaint(reporter, **changes))
    assert raised.value.field == field
    assert "Bapak/Ibu" in raised.value.reason or raised.value.reason.endswith(".")
    assert count_reports(db) == 0


def test_invalid_nik_reason_comes_from_the_nik_rules(service, reporter):
    with pytest.raises(InvalidReport) as raised:
        service.create(complaint(reporter, subject_nik="320101450190003"))
    with pytest.raises(InvalidNik) as expected:
        parse_nik("320101450190003")
    assert raised.value.reason == expected.value.reason


def test_complaint_about_oneself_needs_no_subject(db, service, reporter):
    created = service.create(complaint(reporter, subject_nik=None, subject_name=None, subject_address=None))
    assert stored(db, created.reference).subject_name is None


def test_unknown_kind_or_channel_is_a_programming_error(service, reporter):
    with pytest.raises(ValueError):
        service.create(complaint(reporter, kind="protes"))
    with pytest.raises(ValueError):
        service.create(complaint(reporter, channel="telegram"))
    with pytest.raises(ValueError):
        service.create(complaint(reporter, attachments=(AttachmentDraft("javascript:alert(1)"),)))


# ---- sensitive reports ------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, category, sensitive",
    [
        (ReportKind.PENGADUAN, "potongan_pungli", True),
        (ReportKind.PENGADUAN, "kartu_dipegang_orang_lain", True),
        (ReportKind.PENGADUAN, "dana_belum_diterima", False),
        (ReportKind.PENGADUAN, "layanan_petugas", False),
        (ReportKind.SANGGAH, "mampu", False),
    ],
)
def test_sensitive_flag_and_identity_promise(db, service, reporter, kind, category, sensitive):
    created = service.create(complaint(reporter, kind=kind, category=category))
    assert stored(db, created.reference).is_sensitive is sensitive
    assert (IDENTITY_PROTECTED_TEXT in created.reply_text) is sensitive
    assert segment_count(created.reply_text) <= 3


def test_sensitive_report_is_kept_from_people_named_in_it(db, service, reporter):
    created = service.create(
        complaint(reporter, category="potongan_pungli", description="Dana dipotong Rp50.000 oleh Pak Darto ketua kelompok")
    )
    plain = service.create(
        complaint(reporter, subject_nik=NIK_BUDI, description="Agen bernama Darto tidak ramah sekali")
    )
    with db.session() as session:
        report = session.scalar(select(Report).where(Report.reference == created.reference))
        other = session.scalar(select(Report).where(Report.reference == plain.reference))
        assert may_handle(report, "Darto Wijaya") is False
        assert may_handle(report, "Bu Siti") is False  # the subject's own name counts too
        assert may_handle(report, "Rina Kartika") is True
        assert may_handle(report, "Pak") is True
        assert may_handle(other, "Darto Wijaya") is True


# ---- duplicates -------------------------------------------------------------------


def test_same_day_duplicate_is_merged_with_a_note(db, service, clock, reporter):
    first = service.create(complaint(reporter))
    clock.now = T0 + timedelta(hours=23, minutes=59)
    again = service.create(complaint(reporter, description="Sudah tanya ke bank, katanya saldo kosong"))

    assert (again.reference, again.merged) == (first.reference, True)
    assert first.reference in again.reply_text and "tidak dibuat nomor baru" in again.reply_text
    assert segment_count(again.reply_text) <= 3
    assert count_reports(db) == 1
    report = stored(db, first.reference)
    merged = report.events[-1]
    assert (merged.event, merged.to_status, merged.actor) == (ReportEventType.MERGED, ReportStatus.DITERIMA, "sistem")
    assert merged.note == "Sudah tanya ke bank, katanya saldo kosong"
    assert report.updated_at == clock.now


def test_duplicate_without_nik_matches_on_normalised_name_and_address(db, service, reporter):
    first = service.create(complaint(reporter, subject_nik=None, subject_name="Siti  Aminah", subject_address="Kp. Sukamaju, RT 02/05"))
    again = service.create(complaint(reporter, subject_nik=None, subject_name="SITI AMINAH", subject_address="kp sukamaju rt 02 05"))
    other = service.create(complaint(reporter, subject_nik=None, subject_name="Siti Aminah", subject_address="Desa Cibodas"))
    assert again.merged and again.reference == first.reference
    assert not other.merged


def test_merge_keeps_evidence_and_raises_sensitivity(db, service, reporter):
    first = service.create(complaint(reporter))
    media = (AttachmentDraft("https://api.twilio.com/media/ME2", "image/png"),)
    again = service.create(
        complaint(reporter, category="potongan_pungli", description="Ternyata dipotong 100 ribu", attachments=media)
    )
    report = stored(db, first.reference)
    assert again.merged and report.is_sensitive
    assert IDENTITY_PROTECTED_TEXT in again.reply_text
    assert [a.url for a in report.attachments] == [media[0].url]
    assert report.events[-1].note.startswith("Alasan: Potongan / pungutan liar.")


@pytest.mark.parametrize(
    "later, other_reporter, changes",
    [
        (timedelta(hours=24, seconds=1), False, {}),
        (timedelta(hours=1), True, {}),
        (timedelta(hours=1), False, {"subject_nik": NIK_BUDI}),
        (timedelta(hours=1), False, {"kind": ReportKind.SANGGAH, "category": "meninggal"}),
    ],
    ids=["after-24h", "another-reporter", "another-subject", "another-kind"],
)
def test_no_merge(db, service, clock, reporter, stranger, later, other_reporter, changes):
    first = service.create(complaint(reporter))
    clock.now = T0 + later
    second = service.create(complaint(stranger if other_reporter else reporter, **changes))
    assert not second.merged and second.reference != first.reference
    assert count_reports(db) == 2


def test_no_merge_into_a_closed_report(db, service, reporter):
    first = service.create(complaint(reporter))
    service.change_status(first.reference, ReportStatus.DITOLAK, "andi", "Data tidak lengkap")
    second = service.create(complaint(reporter))
    assert not second.merged and second.reference != first.reference


# ---- references -------------------------------------------------------------------


def test_reference_collision_draws_again(db, clock, reporter):
    draws = iter([0] * 4 + [0] * 4 + [1] * 4)
    service = ReportService(db, Outbox(db, SandboxTransport()), clock=clock, random_below=lambda n: next(draws))
    first = service.create(complaint(reporter))
    second = service.create(complaint(reporter, subject_nik=NIK_BUDI))
    assert first.reference == "ADU-20261123-AAAA"
    assert second.reference == "ADU-20261123-BBBB"
    assert count_reports(db) == 2


def test_reference_collisions_give_up_after_a_bound(db, clock, reporter):
    service = ReportService(db, Outbox(db, SandboxTransport()), clock=clock, random_below=lambda n: 0)
    service.create(complaint(reporter))
    with pytest.raises(RuntimeError, match=str(MAX_REFERENCE_ATTEMPTS)):
        service.create(complaint(reporter, subject_nik=NIK_BUDI))
    assert count_reports(db) == 1


# ---- lookup -----------------------------------------------------------------------


def test_lookup_by_the_reporter(service, reporter):
    created = service.create(complaint(reporter))
    text = service.lookup(created.reference, reporter)
    assert created.reference in text
    assert "menunggu pemeriksaan" in text and "Senin, 23 November 2026" in text
    for typed in (created.reference.lower(), created.reference.replace("-", ""), f" {created.reference.lower()} "):
        assert service.lookup(typed, reporter) == text


def test_lookup_shows_the_latest_note_and_its_date(service, clock, reporter):
    created = service.create(complaint(reporter))
    clock.now = T0 + timedelta(days=2)
    service.change_status(created.reference, ReportStatus.DIVERIFIKASI, "andi", "Data sudah dicek")
    clock.now = T0 + timedelta(days=3)
    service.change_status(created.reference, ReportStatus.DITINDAKLANJUTI, "andi", "Diteruskan ke bank penyalur")
    text = service.lookup(created.reference, reporter)
    assert "sedang ditindaklanjuti" in text
    assert "Kamis, 26 November 2026" in text
    assert "Catatan petugas: Diteruskan ke bank penyalur" in text
    assert "Data sudah dicek" not in text
    assert segment_count(text) <= 3


def test_lookup_gives_strangers_and_unknown_references_the_same_answer(service, reporter, stranger):
    created = service.create(complaint(reporter))
    unknown = created.reference[:-4] + ("BBBB" if not created.reference.endswith("BBBB") else "CCCC")
    answers = {
        service.lookup(created.reference, stranger),
        service.lookup(unknown, reporter),
        service.lookup("ADU-123", reporter),
        service.lookup("", reporter),
        service.lookup(created.reference, None),
    }
    assert answers == {NOT_FOUND_TEXT}
    assert is_gsm7(NOT_FOUND_TEXT) and segment_count(NOT_FOUND_TEXT) <= 2


def test_reporter_id_from_conversation_key(db, service, reporter):
    with db.session() as session:
        key = session.get_one(Contact, reporter).conversation_key
    assert service.reporter_id(key) == reporter
    assert service.reporter_id("k-unknown") is None


# ---- lifecycle --------------------------------------------------------------------

S = ReportStatus


@pytest.mark.parametrize(
    "path",
    [
        [S.DIVERIFIKASI, S.DITINDAKLANJUTI, S.SELESAI],
        [S.DITOLAK],
        [S.DIVERIFIKASI, S.DITOLAK],
        [S.DIVERIFIKASI, S.DITINDAKLANJUTI, S.DITOLAK],
    ],
)
def test_allowed_moves_are_recorded(db, service, clock, reporter, path):
    created = service.create(complaint(reporter))
    for step, status in enumerate(path, 1):
        clock.now = T0 + timedelta(hours=step)
        report = service.change_status(created.reference, status, "andi", f"langkah {step}")
        assert report.status == status
    history = stored(db, created.reference).events
    assert [(e.from_status, e.to_status) for e in history[1:]] == list(zip([S.DITERIMA, *path], path))
    assert {e.actor for e in history[1:]} == {"andi"}
    assert history[-1].at == clock.now


@pytest.mark.parametrize(
    "path, forbidden",
    [
        ([], S.SELESAI),
        ([], S.DITINDAKLANJUTI),
        ([], S.DITERIMA),
        ([S.DIVERIFIKASI], S.DITERIMA),
        ([S.DIVERIFIKASI, S.DITINDAKLANJUTI], S.DIVERIFIKASI),
        ([S.DIVERIFIKASI, S.DITINDAKLANJUTI, S.SELESAI], S.DITOLAK),
        ([S.DITOLAK], S.DIVERIFIKASI),
        ([S.DITOLAK], S.SELESAI),
    ],
)
def test_forbidden_moves_change_nothing(db, service, reporter, path, forbidden):
    created = service.create(complaint(reporter))
    for status in path:
        service.change_status(created.reference, status, "andi", "ok")
    before = len(outbound(db))
    with pytest.raises(StatusChangeNotAllowed):
        service.change_status(created.reference, forbidden, "andi", "coba")
    assert len(stored(db, created.reference).events) == 1 + len(path)
    assert len(outbound(db)) == before


def test_status_change_needs_known_status_actor_report_and_reason_to_reject(service, reporter):
    created = service.create(complaint(reporter))
    with pytest.raises(StatusChangeNotAllowed):
        service.change_status(created.reference, "dibatalkan", "andi", "x")
    with pytest.raises(StatusChangeNotAllowed):
        service.change_status(created.reference, S.DIVERIFIKASI, "  ", "x")
    with pytest.raises(StatusChangeNotAllowed):
        service.change_status(created.reference, S.DITOLAK, "andi", "   ")
    with pytest.raises(ReportNotFound):
        service.change_status("ADU-20261123-ZZZZ", S.DIVERIFIKASI, "andi", "x")
    assert service.change_status(created.reference.lower(), S.DIVERIFIKASI, "andi").status == S.DIVERIFIKASI


# ---- status notices ---------------------------------------------------------------


def test_status_notice_goes_through_the_outbox_on_the_last_channel(db, service, reporter):
    created = service.create(complaint(reporter))
    service.change_status(created.reference, S.DIVERIFIKASI, "andi", "Data Ibu sudah kami periksa")

    [notice] = outbound(db)
    assert (notice.contact_id, notice.channel, notice.provider, notice.status) == (
        reporter, Channel.SMS, "sandbox", MessageStatus.SENT,
    )
    assert notice.body == (
        f"Kabar laporan {created.reference}: pengaduan Bapak/Ibu sudah diperiksa (diverifikasi) "
        f"petugas. Ketik TIKET {created.reference} untuk info lengkap. "
        "Catatan petugas: Data Ibu sudah kami periksa"
    )


def test_status_notice_on_whatsapp(db, service):
    whatsapp_user = add_contact(db, "+6281311112222", Channel.WHATSAPP)
    created = service.create(complaint(whatsapp_user))
    service.change_status(created.reference, S.DITOLAK, "andi", "NIK tidak sesuai data Dukcapil")
    [notice] = outbound(db)
    assert notice.channel == Channel.WHATSAPP
    assert "tidak dapat diproses (ditolak)" in notice.body and "NIK tidak sesuai" in notice.body


def test_long_note_keeps_the_sms_notice_within_three_segments(db, service, reporter):
    created = service.create(complaint(reporter))
    service.change_status(created.reference, S.DIVERIFIKASI, "andi", "Catatan “panjang” — " + "sangat " * 300)
    [notice] = outbound(db)
    assert is_gsm7(notice.body) and segment_count(notice.body) <= 3
    assert f"Ketik TIKET {created.reference} " in notice.body
    assert notice.body.endswith("...")


def test_no_notice_to_a_reporter_who_opted_out(db, service):
    quiet = add_contact(db, "+6281399998888", opted_out=True)
    created = service.create(complaint(quiet))
    service.change_status(created.reference, S.DIVERIFIKASI, "andi", "ok")
    assert [m.status for m in outbound(db)] == [MessageStatus.OPTED_OUT], "kept as a record, never sent"


def test_status_notice_through_the_twilio_client(db, clock):
    fake = FakeTwilioApi()
    with fake.serve() as server:
        settings = Settings(
            twilio_account_sid=TEST_ACCOUNT_SID,
            twilio_auth_token=TEST_AUTH_TOKEN,
            twilio_sms_from=SERVICE_NUMBER,
            twilio_whatsapp_from=SERVICE_NUMBER,
            twilio_api_base=server.url,
            twilio_http_timeout=5.0,
        )
        service = ReportService(db, Outbox(db, TwilioTransport(settings)), clock=clock)
        sms_user = add_contact(db, REPORTER)
        whatsapp_user = add_contact(db, "+6281311112222", Channel.WHATSAPP)
        by_sms = service.create(complaint(sms_user))
        by_whatsapp = service.create(complaint(whatsapp_user))
        service.change_status(by_sms.reference, S.DIVERIFIKASI, "andi", "Sedang dicek")
        service.change_status(by_whatsapp.reference, S.DIVERIFIKASI, "andi", "Sedang dicek")

    assert [(m["to"], m["from"]) for m in fake.sent] == [
        (REPORTER, SERVICE_NUMBER),
        ("whatsapp:+6281311112222", f"whatsapp:{SERVICE_NUMBER}"),
    ]
    assert by_sms.reference in fake.sent[0]["body"] and "Sedang dicek" in fake.sent[0]["body"]
    assert by_whatsapp.reference in fake.sent[1]["body"]
    notices = outbound(db)
    assert [(m.provider, m.provider_sid, m.status) for m in notices] == [
        ("twilio", sent["sid"], "queued") for sent in fake.sent
    ]


# ---- listing and export -----------------------------------------------------------


@pytest.fixture
def three_reports(service, reporter, stranger) -> dict[str, str]:
    usul = service.create(
        complaint(reporter, kind=ReportKind.USUL, category="lansia_tunggal", proposed_for="untuk_orang_lain", subject_nik=NIK_JOGJA)
    )
    pungli = service.create(
        complaint(stranger, category="potongan_pungli", description="=HYPERLINK(\"http://x\") dipotong 50rb")
    )
    plain = service.create(complaint(reporter, subject_nik=NIK_BUDI))
    service.change_status(plain.reference, S.DIVERIFIKASI, "andi", "Sudah dicek")
    return {"usul": usul.reference, "pungli": pungli.reference, "plain": plain.reference}


@pytest.mark.parametrize(
    "filters, expected",
    [
        ({}, ["usul", "pungli", "plain"]),
        ({"kind": ReportKind.PENGADUAN}, ["pungli", "plain"]),
        ({"status": S.DIVERIFIKASI}, ["plain"]),
        ({"province": "34"}, ["usul"]),
        ({"province": "32", "sensitive": False}, ["plain"]),
        ({"sensitive": True}, ["pungli"]),
        ({"kind": ReportKind.SANGGAH}, []),
    ],
)
def test_list_reports_filters(service, three_reports, filters, expected):
    assert [view.reference for view in service.list_reports(**filters)] == [
        three_reports[name] for name in expected
    ]


def test_list_reports_refuses_unknown_filters(service):
    with pytest.raises(ValueError):
        service.list_reports(status="hilang")


def test_export_csv_masks_niks_and_defuses_formulas(service, three_reports):
    out = io.StringIO()
    assert service.export_csv(out, kind=ReportKind.PENGADUAN) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [row["reference"] for row in rows] == [three_reports["pungli"], three_reports["plain"]]
    assert rows[0]["subject_nik"] == "3201********0003"
    assert rows[0]["is_sensitive"] == "true"
    assert rows[0]["description"].startswith("'=HYPERLINK")
    assert rows[1]["latest_note"] == "Sudah dicek"
    assert rows[1]["province"] == "Jawa Barat" and rows[1]["routed_to"] == "3201"
    assert NIK_SITI not in out.getvalue() and NIK_BUDI not in out.getvalue()


def test_export_csv_counts_attachments_and_names_no_provider_url(service, reporter):
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
    service.create(complaint(reporter, attachments=(AttachmentDraft(url, "image/jpeg"),)))
    out = io.StringIO()
    service.export_csv(out)
    [row] = csv.DictReader(io.StringIO(out.getvalue()))
    assert row["attachments"] == "1"
    assert "twilio.com" not in out.getvalue()


def test_export_csv_with_full_niks_when_asked(service, three_reports):
    out = io.StringIO()
    service.export_csv(out, include_nik=True)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [row["subject_nik"] for row in rows] == [NIK_JOGJA, NIK_SITI, NIK_BUDI]


def test_export_csv_masks_niks_typed_in_free_text(service, reporter):
    """Citizens type NIKs anywhere; a masked export must not carry one whole in any cell."""
    created = service.create(
        complaint(
            reporter,
            subject_name=f"Siti NIK {NIK_SITI}",
            subject_address=f"Kp. Sukamaju RT 02/05, KK suami {NIK_BUDI}",
            description="Dana belum diterima, NIK anak 3404 0105 0190 0003 juga",
            village=f"Sukamaju {NIK_SITI}",
        )
    )
    service.change_status(created.reference, S.DIVERIFIKASI, "andi", f"Dicek ke Dukcapil: {NIK_JOGJA}")
    masked = io.StringIO()
    service.export_csv(masked)
    [row] = csv.DictReader(io.StringIO(masked.getvalue()))
    assert row["subject_name"] == "Siti NIK 3201********0003"
    assert row["subject_address"] == "Kp. Sukamaju RT 02/05, KK suami 3201********0003"
    assert row["description"] == "Dana belum diterima, NIK anak 3404********0003 juga"
    assert row["village"] == "Sukamaju 3201********0003"
    assert row["latest_note"] == "Dicek ke Dukcapil: 3404********0003"
    assert not find_niks(masked.getvalue())
    whole = io.StringIO()
    service.export_csv(whole, include_nik=True)
    [row] = csv.DictReader(io.StringIO(whole.getvalue()))
    assert NIK_BUDI in row["subject_address"] and NIK_JOGJA in row["latest_note"]
    assert "3404 0105 0190 0003" in row["description"]


def test_export_csv_writes_every_report_past_500_masked(db, service):
    references = insert_reports(db, 1200, f"NIK saya {NIK_SITI}, dana PKH belum diterima")
    out = io.StringIO()
    assert service.export_csv(out) == 1200
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [row["reference"] for row in rows] == references
    assert {row["description"] for row in rows} == {"NIK saya 3201********0003, dana PKH belum diterima"}


def test_export_reads_reports_in_short_batches_as_it_streams(db, service, reporter, monkeypatch):
    """Each batch is its own short session: a slow download holds no transaction
    (on SQLite, no write lock), and a report filed meanwhile still comes out once."""
    references = insert_reports(db, 25, "Dana PKH tahap 3 belum diterima sudah 2 bulan")
    monkeypatch.setattr(reports_module, "BATCH_SIZE", 10)
    report_queries: list[str] = []

    def count_report_queries(conn, cursor, statement, *rest) -> None:  # type: ignore[no-untyped-def]
        if "FROM reports" in statement:
            report_queries.append(statement)

    event.listen(db.engine, "before_cursor_execute", count_report_queries)
    try:
        lines = export_lines(service.iter_reports(), include_nik=False)
        assert next(lines).startswith("reference,kind,")
        assert next(lines).startswith(references[0] + ",")
        assert len(report_queries) == 1
        filed_meanwhile = service.create(complaint(reporter)).reference
        report_queries.clear()
        rest = [line.split(",", 1)[0] for line in lines]
    finally:
        event.remove(db.engine, "before_cursor_execute", count_report_queries)
    assert rest == references[1:] + [filed_meanwhile]
    assert len(report_queries) == 2


def test_draft_summary_masks_the_nik(reporter):
    summary = draft_summary(complaint(reporter, attachments=(AttachmentDraft("https://x/y"),)))
    assert "NIK: 3201********0003" in summary and NIK_SITI not in summary
    assert "Alasan: Dana belum diterima" in summary and "Lampiran: 1" in summary


def test_history_is_deleted_with_its_report(db, service, reporter):
    created = service.create(complaint(reporter, attachments=(AttachmentDraft("https://x/y"),)))
    with db.session() as session:
        session.delete(session.scalar(select(Report).where(Report.reference == created.reference)))
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ReportEvent)) == 0
