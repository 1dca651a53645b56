"""Escalations and the staff desk on a real database, with the transport and Rasa stubbed."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select

from bot.handoff.audit import AuditLog
from bot.handoff import service as handoff_module
from bot.db import Database
from bot.handoff.figures import dashboard_figures
from bot.handoff.service import (
    BOT_BACK_TEXT,
    Escalations,
    HandoffDesk,
    HandoffRefused,
    attach_inbound,
)
from bot.handoff.models import Handoff, HandoffMessage, HandoffOutcome, HandoffReason, HandoffStatus
from bot.channels.outbox import Outbox, SendResult
from bot.channels.window import Route, Way
from bot.conversation.models import Channel, Contact, Direction, Message, MessageStatus, utcnow
from bot.conversation.rasa_client import RasaUnavailable
from bot.registry.models import Recipient
from bot.reports.service import ReportDraft, ReportService
from bot.reports.models import ComplaintCategory, ReportKind
from bot.handoff.staff_models import AuditEntry
from bot.handoff.staff_users import AccessDenied, StaffDirectory, StaffIdentity
from bot.conversation.subscriptions import set_opted_out

PASSWORD = "kata-sandi-uji-123"
MAKASSAR_NIK = "7371014501900003"


@dataclass
class RecordingTransport:
    """Accepts every message, except that WhatsApp can be made to answer 63016."""

    name: str = "twilio"
    sent: list[tuple[str, str, str]] = field(default_factory=list)
    whatsapp_window_closed: bool = False

    def send(self, to: str, body: str, channel: str) -> SendResult:
        self.sent.append((to, body, channel))
        if channel == Channel.WHATSAPP and self.whatsapp_window_closed:
            return SendResult(self.name, None, MessageStatus.FAILED, "63016")
        return SendResult(self.name, f"SM{len(self.sent):032d}", MessageStatus.QUEUED)


@dataclass
class RecordingRasa:
    resets: list[str] = field(default_factory=list)
    down: bool = False

    def reset(self, sender: str) -> None:
        if self.down:
            raise RasaUnavailable("rasa reset failed: ConnectionError")
        self.resets.append(sender)


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def rasa() -> RecordingRasa:
    return RecordingRasa()


@pytest.fixture
def audit(db: Database) -> AuditLog:
    return AuditLog(db)


@pytest.fixture
def desk(db: Database, transport: RecordingTransport, rasa: RecordingRasa, audit: AuditLog) -> HandoffDesk:
    return HandoffDesk(db, Outbox(db, transport), rasa, audit)  # type: ignore[arg-type]


@pytest.fixture
def escalations(db: Database) -> Escalations:
    return Escalations(db)


@pytest.fixture
def directory(db: Database, audit: AuditLog) -> StaffDirectory:
    return StaffDirectory(db, audit)


def staff(directory: StaffDirectory, username: str, role: str = "agent", region: str | None = None, name: str | None = None) -> StaffIdentity:
    return directory.create_user(username, PASSWORD, role, name or username.title(), region)


def contact(db: Database, address: str, channel: str = Channel.WHATSAPP, is_phone: bool = True) -> int:
    with db.session() as session:
        row = Contact(address=address, is_phone=is_phone, last_channel=channel)
        session.add(row)
        session.flush()
        return row.id


def inbound(db: Database, contact_id: int, body: str, channel: str = Channel.WHATSAPP, ago: timedelta = timedelta(0)) -> int:
    with db.session() as session:
        message = Message(
            contact_id=contact_id, direction=Direction.INBOUND, channel=channel, provider="twilio",
            body=body, status=MessageStatus.RECEIVED, created_at=utcnow() - ago,
        )
        session.add(message)
        session.flush()
        attach_inbound(session, contact_id, message.created_at)
        return message.id


def register_household(db: Database, phone: str, nik: str = MAKASSAR_NIK, province: str = "73") -> None:
    with db.session() as session:
        session.add(Recipient(nik=nik, name="Siti Aminah", birth_date=date(1990, 1, 5), phone=phone, province_code=province))


def handoff(db: Database, handoff_id: int) -> Handoff:
    with db.session() as session:
        return session.get_one(Handoff, handoff_id)


# ---- escalation -----------------------------------------------------------------------


def test_escalation_uses_the_registered_household_for_region_and_zone(db: Database, escalations: Escalations) -> None:
    register_household(db, "+6281200000001")
    cid = contact(db, "+6281200000001")
    first = escalations.escalate(cid, HandoffReason.REQUESTED)
    assert first.created
    row = handoff(db, first.handoff_id)
    assert (row.region, row.province_code, row.status) == ("7371", "73", HandoffStatus.WAITING)
    assert row.waiting_since is not None
    assert "WITA" in first.notice or "menit" in first.notice


def test_a_contact_has_one_open_handoff_and_distress_upgrades_it(db: Database, escalations: Escalations) -> None:
    cid = contact(db, "+6281200000002")
    first = escalations.escalate(cid, HandoffReason.REQUESTED)
    again = escalations.escalate(cid, HandoffReason.DISTRESS)
    assert (again.handoff_id, again.created) == (first.handoff_id, False)
    assert handoff(db, first.handoff_id).reason == HandoffReason.DISTRESS
    assert "112" in again.notice


def test_two_escalations_racing_open_one_handoff(db: Database, escalations: Escalations, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = contact(db, "+6281200000005")
    first = escalations.escalate(cid, HandoffReason.REQUESTED)
    real = handoff_module._open_handoff
    calls = iter([None])
    # The racing request looked before the first one committed: it saw no handoff.
    monkeypatch.setattr(handoff_module, "_open_handoff", lambda session, contact_id: next(calls, real(session, contact_id)))
    second = escalations.escalate(cid, HandoffReason.REQUESTED)
    assert (second.handoff_id, second.created) == (first.handoff_id, False)
    with db.session() as session:
        assert len(session.scalars(select(Handoff)).all()) == 1


def test_unknown_household_is_national_and_told_wib(db: Database, escalations: Escalations) -> None:
    row = handoff(db, escalations.escalate(contact(db, "+6281200000003"), HandoffReason.ABUSIVE).handoff_id)
    assert row.region is None and row.province_code is None


def test_sensitive_report_escalates_to_its_region(db: Database, escalations: Escalations) -> None:
    cid = contact(db, "+6281200000004")
    reports = ReportService(db, Outbox(db, RecordingTransport()))
    sensitive = reports.create(ReportDraft(
        kind=ReportKind.PENGADUAN, reporter_contact_id=cid,
        category=ComplaintCategory.POTONGAN_PUNGLI,
        description="Ketua kelompok Budi Santoso memotong bantuan Rp50.000", subject_nik=MAKASSAR_NIK,
    ))
    plain = reports.create(ReportDraft(
        kind=ReportKind.PENGADUAN, reporter_contact_id=cid,
        category=ComplaintCategory.DANA_BELUM_DITERIMA, description="Dana tahap 3 belum masuk ke rekening",
    ))
    assert escalations.escalate_report(plain.reference) is None
    escalation = escalations.escalate_report(sensitive.reference)
    assert escalation is not None and escalation.created
    row = handoff(db, escalation.handoff_id)
    assert (row.reason, row.region, row.report_reference) == (HandoffReason.SENSITIVE_REPORT, "7371", sensitive.reference)


def test_escalating_an_unknown_conversation_key_is_none(escalations: Escalations) -> None:
    assert escalations.escalate_conversation("k-unknown", HandoffReason.REQUESTED) is None


# ---- inbox and access ---------------------------------------------------------------


def test_inbox_puts_distress_first_then_the_longest_waiting(db: Database, escalations: Escalations, desk: HandoffDesk, directory: StaffDirectory) -> None:
    boss = staff(directory, "boss", "supervisor")
    older = escalations.escalate(contact(db, "+6281200000010"), HandoffReason.REQUESTED).handoff_id
    newer = escalations.escalate(contact(db, "+6281200000011"), HandoffReason.REQUESTED).handoff_id
    urgent = escalations.escalate(contact(db, "+6281200000012"), HandoffReason.DISTRESS).handoff_id
    with db.session() as session:
        session.get_one(Handoff, older).waiting_since = utcnow() - timedelta(hours=2)
    assert [item.id for item in desk.inbox(boss)] == [urgent, older, newer]
    assert desk.inbox(boss)[1].waiting_seconds >= 7200


def test_agents_see_their_region_and_what_is_assigned_to_them(db: Database, escalations: Escalations, desk: HandoffDesk, directory: StaffDirectory) -> None:
    makassar = staff(directory, "makassar", region="73")
    bandung = staff(directory, "bandung", region="3204")
    national = staff(directory, "pusat")
    boss = staff(directory, "boss", "supervisor")
    register_household(db, "+6281200000020")
    sulsel = escalations.escalate(contact(db, "+6281200000020"), HandoffReason.REQUESTED).handoff_id
    unknown = escalations.escalate(contact(db, "+6281200000021"), HandoffReason.REQUESTED).handoff_id
    assert [i.id for i in desk.inbox(makassar)] == [sulsel]
    assert desk.inbox(bandung) == []
    assert {i.id for i in desk.inbox(national)} == {sulsel, unknown}
    with pytest.raises(AccessDenied):
        desk.chat(bandung, sulsel)
    desk.assign(boss, unknown, bandung.id)
    assert [i.id for i in desk.inbox(bandung)] == [unknown]
    assert desk.inbox(bandung)[0].assigned_to_me


def test_a_person_named_in_a_sensitive_report_never_gets_the_chat(db: Database, escalations: Escalations, desk: HandoffDesk, directory: StaffDirectory) -> None:
    named = staff(directory, "budi", region="73", name="Budi Santoso")
    other = staff(directory, "ani", region="73", name="Ani Lestari")
    boss = staff(directory, "boss", "supervisor", name="Kepala Dinas")
    cid = contact(db, "+6281200000030")
    reports = ReportService(db, Outbox(db, RecordingTransport()))
    ref = reports.create(ReportDraft(
        kind=ReportKind.PENGADUAN, reporter_contact_id=cid, category=ComplaintCategory.POTONGAN_PUNGLI,
        description="Pak Budi dari kelompok memotong bantuan saya", subject_nik=MAKASSAR_NIK,
    )).reference
    hid = escalations.escalate_report(ref).handoff_id  # type: ignore[union-attr]
    assert desk.inbox(named) == []
    assert [i.id for i in desk.inbox(other)] == [hid]
    with pytest.raises(HandoffRefused):
        desk.assign(boss, hid, named.id)
    desk.assign(boss, hid, other.id)


def test_claims_do_not_steal_from_colleagues_but_supervisors_may_reassign(db: Database, escalations: Escalations, desk: HandoffDesk, directory: StaffDirectory) -> None:
    first, second = staff(directory, "satu"), staff(directory, "dua")
    boss = staff(directory, "boss", "supervisor")
    hid = escalations.escalate(contact(db, "+6281200000040"), HandoffReason.REQUESTED).handoff_id
    desk.claim(first, hid)
    with pytest.raises(AccessDenied):
        desk.claim(second, hid)
    with pytest.raises(AccessDenied):
        desk.reply(second, hid, "halo")
    with pytest.raises(AccessDenied):
        desk.assign(first, hid, second.id)
    desk.assign(boss, hid, second.id)
    row = handoff(db, hid)
    assert (row.status, row.assigned_to_id) == (HandoffStatus.CLAIMED, second.id)


# ---- replies and the WhatsApp window -------------------------------------------------


def test_reply_inside_the_window_goes_by_whatsapp_and_stops_the_wait(db: Database, escalations: Escalations, desk: HandoffDesk, directory: StaffDirectory, transport: RecordingTransport) -> None:
    agent = staff(directory, "agen")
    cid = contact(db, "+6281200000050")
    inbound(db, cid, "PETUGAS", ago=timedelta(hours=23))
    hid = escalations.escalate(cid, HandoffReason.REQUESTED).handoff_id
    result = desk.reply(agent, hid, "Selamat siang, saya petugas.")
    assert (result.channel, result.fell_back_to_sms, result.delivered_to_provider) == ("whatsapp", False, True)
    assert transport.sent == [("+6281200000050", "Selamat siang, saya petugas.", "whatsapp")]
    row = handoff(db, hid)
    assert row.waiting_since is None and row.first_response_at is not None
    assert (row.assigned_to_id, row.status) == (agent.id, HandoffStatus.CLAIMED)
    inbound(db, cid, "terima kasih pak")
    assert handoff(db, hid).waiting_since is not None


def test_reply_after_24_hours_of_whatsapp_silence_goes_by_sms(db: Database, escalations: Escalations, desk: HandoffDesk, directory: StaffDirectory, transport: RecordingTransport) -> None:
    agent = staff(directory, "agen")
    cid = contact(db, "+6281200000051")
    inbound(db, cid, "tolong dibantu 🙏", ago=timedelta(hours=25))
    hid = escalations.escalate(cid, HandoffReason.REQUESTED).handoff_id
    assert desk.chat(agent, hid).reply_route == Route(Way.SMS, Channel.SMS)
    result = desk.reply(agent, hid, "Baik Ibu, “data” sudah kami cek 👍")
    assert (result.channel, result.fell_back_to_sms) == ("sms", True)
    assert transport.sent[0][2] == "sms" and transport.sent[0][1].isascii()
    lines = desk.chat(agent, hid).lines
    assert lines[-1].fell_back_to_sms and lines[-1].author == "Petugas Agen"


def test_twilio_saying_the_window_closed_wins_over_our_clock(db: Database, escalations: Escalations, desk: HandoffDesk, directory: StaffDirectory, transport: RecordingTransport) -> None:
    agent = staff(directory, "agen")
    cid = contact(db, "+6281200000052")
    inbound(db, cid, "halo")
    hid = escalations.escalate(cid, HandoffReason.REQUESTED).handoff_id
    transport.whatsapp_window_closed = True
    result = desk.reply(agent, hid, "Halo Bapak")
    assert (result.channel, result.fell_back_to_sms, result.delivered_to_provider) == ("sms", True, True)
    assert [channel for _, _, channel in transport.sent] == ["whatsapp", "sms"]
    with db.session() as session:
        assert session.scalar(select(HandoffMessage.id).where(HandoffMessage.fell_back_to_sms.is_(True))) is not None


def test_a_whatsapp_id_without_a_number_cannot_fall_back(db: Database, escalations: Escalations, desk: HandoffDesk, directory: StaffDirectory) -> None:
    agent = staff(directory, "agen")
    cid = contact(db, "wa-id-3f9a", is_phone=False)
    inbound(db, cid, "halo", ago=timedelta(days=2))
    hid = escalations.escalate(cid, HandoffReason.REQUESTED).handoff_id
    with pytest.raises(HandoffRefused, match="24 jam"):
        desk.reply(agent, hid, "Halo")


@pytest.mark.parametrize("text", ["", "   ", "x" * 1601])
def test_empty_or_huge_replies_are_refused(db: Database, escalations: Escalations, desk: HandoffDesk, directory: StaffDirectory, text: str) -> None:
    hid = escalations.escalate(contact(db, "+6281200000053"), HandoffReason.REQUESTED).handoff_id
    with pytest.raises(HandoffRefused):
        desk.reply(staff(directory, "agen"), hid, text)


def test_an_sms_reply_longer_than_three_segments_is_refused(db: Database, escalations: Escalations, desk: HandoffDesk, directory: StaffDirectory, transport: RecordingTransport) -> None:
    cid = contact(db, "+6281200000054", channel=Channel.SMS)
    inbound(db, cid, "PETUGAS", channel=Channel.SMS)
    hid = escalations.escalate(cid, HandoffReason.REQUESTED).handoff_id
    with pytest.raises(HandoffRefused, match="3 SMS"):
        desk.reply(staff(directory, "agen"), hid, "kata " * 120)
    assert transport.sent == []


# ---- ending a handoff ---------------------------------------------------------------


def test_hand_back_restarts_rasa_then_tells_the_citizen(db: Database, escalations: Escalations, desk: HandoffDesk, directory: StaffDirectory, rasa: RecordingRasa, transport: RecordingTransport) -> None:
    agent = staff(directory, "agen")
    cid = contact(db, "+6281200000060")
    inbound(db, cid, "halo")
    hid = escalations.escalate(cid, HandoffReason.REQUESTED).handoff_id
    desk.hand_back(agent, hid)
    with db.session() as session:
        key = session.get_one(Contact, cid).conversation_key
    assert rasa.resets == [key]
    row = handoff(db, hid)
    assert (row.status, row.ended_by_id) == (HandoffStatus.RETURNED, agent.id)
    assert transport.sent[-1][1] == BOT_BACK_TEXT
    assert desk.chat(agent, hid).lines[-1].author == "Sistem"
    assert inbound(db, cid, "menu") and handoff(db, hid).waiting_since is None
    with pytest.raises(HandoffRefused):
        desk.reply(agent, hid, "masih di sini?")


def test_hand_back_keeps_the_chat_with_staff_when_rasa_is_down(db: Database, escalations: Escalations, desk: HandoffDesk, directory: StaffDirectory, rasa: RecordingRasa) -> None:
    hid = escalations.escalate(contact(db, "+6281200000061"), HandoffReason.REQUESTED).handoff_id
    rasa.down = True
    with pytest.raises(HandoffRefused, match="Bot tidak dapat dihubungi"):
        desk.hand_back(staff(directory, "agen"), hid)
    assert handoff(db, hid).status == HandoffStatus.WAITING


def test_close_needs_a_known_outcome(db: Database, escalations: Escalations, desk: HandoffDesk, directory: StaffDirectory, transport: RecordingTransport) -> None:
    agent = staff(directory, "agen")
    hid = escalations.escalate(contact(db, "+6281200000062"), HandoffReason.REQUESTED).handoff_id
    with pytest.raises(HandoffRefused):
        desk.close(agent, hid, "whatever")
    desk.close(agent, hid, HandoffOutcome.REFERRED, "Dirujuk ke pendamping PKH\x00")
    row = handoff(db, hid)
    assert (row.status, row.outcome, row.outcome_note) == (HandoffStatus.CLOSED, "referred", "Dirujuk ke pendamping PKH")
    assert transport.sent == []


# ---- transcript, audit, figures ------------------------------------------------------


def test_transcript_masks_niks_unless_revealed_and_both_are_audited(db: Database, escalations: Escalations, desk: HandoffDesk, directory: StaffDirectory) -> None:
    agent, boss = staff(directory, "agen"), staff(directory, "boss", "supervisor")
    cid = contact(db, "+6281200000070")
    inbound(db, cid, f"nik saya {MAKASSAR_NIK}")
    hid = escalations.escalate(cid, HandoffReason.REQUESTED).handoff_id
    assert "7371********0003" in desk.chat(agent, hid).lines[0].body
    with pytest.raises(AccessDenied):
        desk.chat(agent, hid, reveal_nik=True)
    assert MAKASSAR_NIK in desk.chat(boss, hid, reveal_nik=True, ip="10.0.0.9").lines[0].body
    with db.session() as session:
        entries = session.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.target, AuditEntry.ip)).all()
    assert ("agen", "view_chat", f"handoff:{hid}", "") in entries
    assert ("boss", "reveal_nik", f"handoff:{hid}", "10.0.0.9") in entries


def test_media_links_are_kept_only_when_they_are_web_addresses(db: Database, escalations: Escalations, desk: HandoffDesk, directory: StaffDirectory) -> None:
    cid = contact(db, "+6281200000071")
    with db.session() as session:
        session.add(Message(
            contact_id=cid, direction=Direction.INBOUND, channel="whatsapp", provider="twilio", body="",
            status=MessageStatus.RECEIVED,
            media=[{"url": "https://api.twilio.com/m/1", "content_type": "image/jpeg"}, {"url": "javascript:alert(1)"}],
        ))
    hid = escalations.escalate(cid, HandoffReason.REQUESTED).handoff_id
    assert desk.chat(staff(directory, "agen"), hid).lines[0].media == ("https://api.twilio.com/m/1",)


def test_figures_count_today_waiting_and_the_median_first_response(db: Database, escalations: Escalations) -> None:
    now = utcnow()
    ids = []
    for n in range(3):
        cid = contact(db, f"+62812000000{80 + n}")
        inbound(db, cid, "halo")
        ids.append(escalations.escalate(cid, HandoffReason.REQUESTED).handoff_id)
    with db.session() as session:
        for hid, minutes in zip(ids[:2], (10, 30)):
            row = session.get_one(Handoff, hid)
            row.first_response_at = row.created_at + timedelta(minutes=minutes)
            row.waiting_since = None
            row.status = HandoffStatus.CLAIMED
    figures = dashboard_figures(db, now)
    assert figures.conversations_today == 3
    assert (figures.escalations_waiting, figures.escalations_unclaimed) == (1, 1)
    assert figures.median_first_response_seconds == 20 * 60
    assert figures.reports_by_kind_status["pengaduan"]["diterima"] == 0


def test_figures_with_nothing_yet(db: Database) -> None:
    figures = dashboard_figures(db, datetime(2026, 11, 23, 3, tzinfo=timezone.utc))
    assert figures.median_first_response_seconds is None and figures.conversations_today == 0


# ---- sensitive reports reach no officer they name, in any chat of the reporter -----------


def sensitive_report(db: Database, contact_id: int, description: str = "Pak Budi dari kelompok memotong bantuan saya") -> str:
    reports = ReportService(db, Outbox(db, RecordingTransport()))
    return reports.create(ReportDraft(
        kind=ReportKind.PENGADUAN, reporter_contact_id=contact_id, category=ComplaintCategory.POTONGAN_PUNGLI,
        description=description, subject_nik=MAKASSAR_NIK,
    )).reference


def test_a_later_chat_of_a_sensitive_reporter_is_kept_from_the_officer_the_report_names(db: Database, escalations: Escalations, desk: HandoffDesk, directory: StaffDirectory) -> None:
    named = staff(directory, "budi", region="73", name="Budi Santoso")
    other = staff(directory, "ani", region="73", name="Ani Lestari")
    boss = staff(directory, "boss", "supervisor", name="Kepala Dinas")
    register_household(db, "+6281200000031")
    cid = contact(db, "+6281200000031")
    inbound(db, cid, "Pak Budi dari kelompok memotong bantuan saya")
    first = escalations.escalate_report(sensitive_report(db, cid)).handoff_id  # type: ignore[union-attr]
    desk.close(other, first, HandoffOutcome.RESOLVED)
    inbound(db, cid, "PETUGAS")
    later = escalations.escalate(cid, HandoffReason.REQUESTED)
    assert later.created and handoff(db, later.handoff_id).report_reference is None
    assert desk.inbox(named) == []
    with pytest.raises(AccessDenied):
        desk.chat(named, later.handoff_id)
    with pytest.raises(AccessDenied):
        desk.lines_after(named, later.handoff_id, 0)
    with pytest.raises(HandoffRefused):
        desk.assign(boss, later.handoff_id, named.id)
    assert [i.id for i in desk.inbox(other)] == [later.handoff_id]
    assert any("Budi" in line.body for line in desk.chat(other, later.handoff_id).lines)


def test_an_open_handoff_reused_for_a_sensitive_report_takes_its_reference(db: Database, escalations: Escalations) -> None:
    cid = contact(db, "+6281200000032")
    opened = escalations.escalate(cid, HandoffReason.REQUESTED)
    ref = sensitive_report(db, cid)
    again = escalations.escalate_report(ref)
    assert again is not None and (again.handoff_id, again.created) == (opened.handoff_id, False)
    assert handoff(db, opened.handoff_id).report_reference == ref


def test_the_inbox_reads_sensitive_reports_in_a_fixed_number_of_queries(db: Database, escalations: Escalations, desk: HandoffDesk, directory: StaffDirectory) -> None:
    viewer = staff(directory, "ani", name="Ani Lestari")
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    def inbox_queries() -> int:
        statements.clear()
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            desk.inbox(viewer)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return len(statements)

    def add_reporters(first: int, n: int) -> None:
        for number in range(first, first + n):
            cid = contact(db, f"+628120000{number:04d}")
            escalations.escalate_report(sensitive_report(db, cid))

    add_reporters(100, 2)
    few = inbox_queries()
    add_reporters(200, 6)
    assert len(desk.inbox(viewer)) == 8
    assert inbox_queries() == few


# ---- STOP holds for what staff send too --------------------------------------------------


def opt_out(db: Database, contact_id: int) -> None:
    with db.session() as session:
        key = session.get_one(Contact, contact_id).conversation_key
    set_opted_out(db, key, True)


def test_after_stop_a_staff_reply_is_kept_unsent_and_the_officer_is_told(db: Database, escalations: Escalations, desk: HandoffDesk, directory: StaffDirectory, transport: RecordingTransport) -> None:
    agent = staff(directory, "agen")
    cid = contact(db, "+6281200000055")
    inbound(db, cid, "PETUGAS")
    hid = escalations.escalate(cid, HandoffReason.REQUESTED).handoff_id
    opt_out(db, cid)
    result = desk.reply(agent, hid, "Selamat siang, saya petugas.")
    assert transport.sent == []
    assert (result.delivered_to_provider, result.opted_out) == (False, True)
    assert desk.chat(agent, hid).opted_out, "the chat page shows the STOP"
    line = desk.chat(agent, hid).lines[-1]
    assert (line.author, line.status, line.body) == ("Petugas Agen", MessageStatus.OPTED_OUT, "Selamat siang, saya petugas.")
    assert handoff(db, hid).first_response_at is None, "an unsent reply is no first response"
    with db.session() as session:
        assert session.scalar(select(AuditEntry.detail).where(AuditEntry.action == "reply")).endswith("opted_out")


def test_after_stop_hand_back_sends_no_notice(db: Database, escalations: Escalations, desk: HandoffDesk, directory: StaffDirectory, transport: RecordingTransport) -> None:
    agent = staff(directory, "agen")
    cid = contact(db, "+6281200000063")
    inbound(db, cid, "halo")
    hid = escalations.escalate(cid, HandoffReason.REQUESTED).handoff_id
    opt_out(db, cid)
    told = desk.hand_back(agent, hid)
    assert transport.sent == []
    assert told is False
    assert handoff(db, hid).status == HandoffStatus.RETURNED
    line = desk.chat(agent, hid).lines[-1]
    assert (line.author, line.status, line.body) == ("Sistem", MessageStatus.OPTED_OUT, BOT_BACK_TEXT)


def test_after_mulai_staff_replies_go_out_again(db: Database, escalations: Escalations, desk: HandoffDesk, directory: StaffDirectory, transport: RecordingTransport) -> None:
    agent = staff(directory, "agen")
    cid = contact(db, "+6281200000056")
    inbound(db, cid, "PETUGAS")
    hid = escalations.escalate(cid, HandoffReason.REQUESTED).handoff_id
    opt_out(db, cid)
    with db.session() as session:
        key = session.get_one(Contact, cid).conversation_key
    set_opted_out(db, key, False)
    assert not desk.chat(agent, hid).opted_out
    assert desk.reply(agent, hid, "Halo lagi").delivered_to_provider
    assert desk.hand_back(agent, hid) is True
    assert [body for _, body, _ in transport.sent] == ["Halo lagi", BOT_BACK_TEXT]


def test_a_reply_whose_window_closes_between_the_check_and_the_send_is_refused_cleanly(db: Database, escalations: Escalations, transport: RecordingTransport, rasa: RecordingRasa, audit: AuditLog, directory: StaffDirectory) -> None:
    agent = staff(directory, "agen")
    cid = contact(db, "wa-id-7c21", is_phone=False)
    inbound(db, cid, "halo", ago=timedelta(hours=23, minutes=59))
    hid = escalations.escalate(cid, HandoffReason.REQUESTED).handoff_id
    # The first reading of the clock finds the window open; by the send it has closed.
    readings = iter([utcnow(), utcnow()])
    desk = HandoffDesk(db, Outbox(db, transport), rasa, audit, clock=lambda: next(readings, utcnow() + timedelta(minutes=5)))  # type: ignore[arg-type]
    with pytest.raises(HandoffRefused, match="24 jam"):
        desk.reply(agent, hid, "Halo Bu")
    assert transport.sent == []
