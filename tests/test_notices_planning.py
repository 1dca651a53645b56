"""Planning notices: H-3, disbursed, failed, postponed; never twice; only to whom it may go."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from bot.db import Database
from bot.conversation.models import Channel, Contact
from bot.notices.planning import NoticePlanner
from bot.notices.models import Notice, NoticeCampaign, NoticeKind, NoticeStatus
from bot.registry.models import Disbursement, DisbursementStatus, Recipient
from tools.notices import (
    CONTENT_SID,
    T0,
    add_disbursement,
    add_recipient,
    day_after,
    notice_settings,
)

Status = DisbursementStatus


def planner(db: Database, at: datetime = T0, **overrides: object) -> NoticePlanner:
    return NoticePlanner(db, notice_settings(db, **overrides), clock=lambda: at)


def notices(db: Database) -> list[Notice]:
    with db.session() as session:
        return list(session.scalars(select(Notice).order_by(Notice.id)))


def test_reminder_three_days_before(db: Database) -> None:
    due = add_disbursement(db, add_recipient(db), day_after(3))
    add_disbursement(db, add_recipient(db), day_after(4))  # its reminder is tomorrow
    report = planner(db).plan()
    assert report.planned == {NoticeKind.REMINDER: 1}
    [notice] = notices(db)
    assert (notice.disbursement_id, notice.kind) == (due, NoticeKind.REMINDER)
    assert notice.status == NoticeStatus.PENDING
    assert notice.not_before == T0
    assert "cair Kamis, 10 Desember 2026 ke KKS Bank BRI" in notice.body
    assert notice.segments == 1


def test_next_days_reminder_waits_for_the_morning_in_its_zone(db: Database) -> None:
    evening = datetime(2026, 12, 7, 14, 0, tzinfo=timezone.utc)  # 21:00 WIB, 23:00 WIT
    for province in ("32", "51", "94"):
        add_disbursement(db, add_recipient(db, province=province), day_after(3))
    planner(db, at=evening).plan()
    opening = {n.zone: n.not_before for n in notices(db)}
    assert opening == {
        "Asia/Jakarta": datetime(2026, 12, 8, 1, 0, tzinfo=timezone.utc),  # 08:00 WIB
        "Asia/Makassar": datetime(2026, 12, 8, 0, 0, tzinfo=timezone.utc),  # 08:00 WITA
        "Asia/Jayapura": datetime(2026, 12, 7, 23, 0, tzinfo=timezone.utc),  # 08:00 WIT
    }


def test_late_schedule_still_gets_its_reminder_but_not_after_the_date(db: Database) -> None:
    tomorrow = add_disbursement(db, add_recipient(db), day_after(1))
    add_disbursement(db, add_recipient(db), day_after(-1))
    planner(db).plan()
    assert [n.disbursement_id for n in notices(db)] == [tomorrow]


def test_reminder_day_is_counted_in_the_recipients_zone(db: Database) -> None:
    # 16:00 UTC on the 7th is already the 8th in Papua (WIT, UTC+9) but not in Java.
    late = datetime(2026, 12, 7, 16, 0, tzinfo=timezone.utc)
    papua = add_disbursement(db, add_recipient(db, province="94"), day_after(4))
    add_disbursement(db, add_recipient(db, province="32"), day_after(4))
    planner(db, at=late).plan()
    assert [n.disbursement_id for n in notices(db)] == [papua]


def test_outcomes_disbursed_failed_postponed(db: Database) -> None:
    paid_at = datetime(2026, 12, 6, 16, 30, tzinfo=timezone.utc)  # 23:30 WIB, 01:30 WIT the 7th
    java = add_recipient(db, province="32")
    papua = add_recipient(db, province="94")
    paid_java = add_disbursement(db, java, day_after(-1), Status.TERSALUR, disbursed_at=paid_at)
    paid_papua = add_disbursement(
        db, papua, day_after(-1), Status.TERSALUR, program="BPNT", disbursed_at=paid_at
    )
    failed = add_disbursement(db, java, day_after(-2), Status.GAGAL, program="BPNT")
    postponed = add_disbursement(db, papua, day_after(2), Status.DITUNDA, channel="PT Pos")
    report = planner(db).plan()
    assert report.planned == {
        NoticeKind.DISBURSED: 2,
        NoticeKind.FAILED: 1,
        NoticeKind.POSTPONED: 1,
    }
    by_disbursement = {n.disbursement_id: n for n in notices(db)}
    # The date of payment is the one where the recipient lives.
    assert "sudah cair Minggu, 6 Desember 2026" in by_disbursement[paid_java].body
    assert "sudah cair Senin, 7 Desember 2026" in by_disbursement[paid_papua].body
    assert "gagal disalurkan Sabtu, 5 Desember 2026" in by_disbursement[failed].body
    assert "di Kantor Pos ditunda dari Rabu, 9 Desember 2026" in by_disbursement[postponed].body
    assert by_disbursement[failed].kind == NoticeKind.FAILED


def test_old_outcomes_are_history_not_news(db: Database) -> None:
    recipient = add_recipient(db)
    add_disbursement(db, recipient, day_after(-90), Status.TERSALUR, period="Tahap 1 2026")
    add_disbursement(db, recipient, day_after(-8), Status.GAGAL, period="Tahap 3 2026")
    recent = add_disbursement(db, recipient, day_after(-7), Status.TERSALUR)
    planner(db).plan()
    assert [n.disbursement_id for n in notices(db)] == [recent]


def test_planning_again_adds_nothing(db: Database) -> None:
    for offset, status in ((2, Status.DIJADWALKAN), (-1, Status.TERSALUR), (-1, Status.GAGAL)):
        add_disbursement(db, add_recipient(db), day_after(offset), status)
    first = planner(db).plan()
    second = planner(db).plan()
    third = planner(db, at=T0 + timedelta(hours=5)).plan()
    assert first.total == 3
    assert second.total == third.total == 0
    assert second.campaign_id is None
    assert len(notices(db)) == 3
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(NoticeCampaign)) == 1


def test_postponed_then_rescheduled_gets_a_reminder_for_the_new_date(db: Database) -> None:
    disbursement = add_disbursement(db, add_recipient(db), day_after(2))
    planner(db).plan()
    with db.session() as session:
        session.get_one(Disbursement, disbursement).status = Status.DITUNDA
    planner(db).plan()
    with db.session() as session:
        row = session.get_one(Disbursement, disbursement)
        row.status, row.scheduled_date = Status.DIJADWALKAN, day_after(10)
    planner(db).plan()
    planner(db, at=T0 + timedelta(days=7)).plan()
    kinds = [(n.kind, n.scheduled_date) for n in notices(db)]
    assert kinds == [
        (NoticeKind.REMINDER, day_after(2)),
        (NoticeKind.POSTPONED, day_after(2)),
        (NoticeKind.REMINDER, day_after(10)),
    ]


def test_nobody_is_planned_who_must_not_get_a_notice(db: Database) -> None:
    soon = day_after(2)
    add_disbursement(db, add_recipient(db, phone=""), soon)
    landline = add_recipient(db, phone="+622150001234")
    add_disbursement(db, landline, soon)
    flagged = add_recipient(db)
    add_disbursement(db, flagged, soon)
    opted_out = add_recipient(db)
    add_disbursement(db, opted_out, soon)
    add_disbursement(db, add_recipient(db), soon, program="PBI-JK", channel=None)
    with db.session() as session:
        row = session.get_one(Recipient, flagged)
        row.flagged_phone = row.phone
        session.add(Contact(address=session.get_one(Recipient, opted_out).phone, opted_out=True))
    report = planner(db).plan()
    assert report.total == 0
    assert report.skipped == {
        "no phone": 1,
        "not a mobile number": 1,
        "number flagged for data cleaning": 1,
        "opted out": 1,
    }
    with db.session() as session:
        # A landline is flagged for data cleaning on the way.
        assert session.get_one(Recipient, landline).flagged_phone == "+622150001234"


def test_opting_back_in_brings_notices_back(db: Database) -> None:
    recipient = add_recipient(db)
    add_disbursement(db, recipient, day_after(2))
    with db.session() as session:
        phone = session.get_one(Recipient, recipient).phone
        session.add(Contact(address=phone, opted_out=True))
    assert planner(db).plan().total == 0
    with db.session() as session:
        session.scalars(select(Contact).where(Contact.address == phone)).one().opted_out = False
    assert planner(db).plan().total == 1


def test_whatsapp_for_smartphones_when_a_template_is_configured(db: Database) -> None:
    add_disbursement(db, add_recipient(db, smartphone=True), day_after(2))
    add_disbursement(db, add_recipient(db, smartphone=False), day_after(2))
    planner(db).plan()
    assert [(n.preferred_channel, n.channel) for n in notices(db)] == [
        (Channel.WHATSAPP, Channel.SMS),  # no template configured: SMS it is
        (Channel.SMS, Channel.SMS),
    ]
    add_disbursement(db, add_recipient(db, smartphone=True), day_after(3))
    planner(db, twilio_notice_content_sid=CONTENT_SID).plan()
    newest = notices(db)[-1]
    assert newest.channel == Channel.WHATSAPP
    assert newest.content_variables["3"] == "Rp975.000"


def test_preview_writes_nothing(db: Database) -> None:
    add_disbursement(db, add_recipient(db), day_after(2))
    preview = planner(db).preview()
    assert preview.total == 1
    assert preview.notices[0]["to_address"].startswith("+62812")
    assert notices(db) == []
