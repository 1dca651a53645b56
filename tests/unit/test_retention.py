"""Retention: old chat logs go, reports, handoff records and opt-outs stay."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from bot.db import Database
from bot.handoff.models import Handoff, HandoffMessage
from bot.conversation.models import Contact, Direction, Message, MessageStatus
from bot.reports.models import Report
from bot.conversation.retention import purge_chats
from bot.conversation.retention_cli import purge
from bot.handoff.staff_models import StaffLoginSession, StaffUser
from bot.media.store import LocalMediaStore

# The CLI purges against the real clock, so the history is dated from it too.
NOW = datetime.now(timezone.utc).replace(microsecond=0)
OLD = NOW - timedelta(days=400)
RECENT = NOW - timedelta(days=30)


def add_contact(db: Database, address: str, last_seen: datetime = OLD, opted_out: bool = False) -> int:
    with db.session() as session:
        contact = Contact(address=address, last_seen_at=last_seen, opted_out=opted_out)
        session.add(contact)
        session.flush()
        return contact.id


def add_message(
    db: Database, contact_id: int, at: datetime, direction: str = Direction.INBOUND, reply_to: int | None = None
) -> int:
    with db.session() as session:
        message = Message(
            contact_id=contact_id, direction=direction, channel="sms", provider="twilio",
            body="CEK 3201015503880003", status=MessageStatus.ANSWERED, created_at=at,
            in_reply_to_id=reply_to,
        )
        session.add(message)
        session.flush()
        return message.id


def add_report(db: Database, contact_id: int) -> None:
    with db.session() as session:
        session.add(
            Report(
                reference="ADU-20251020-K7QX", kind="pengaduan", reporter_contact_id=contact_id,
                reporter_channel="sms", category="dana_belum_cair", description="dana belum cair",
                created_at=OLD,
            )
        )


def add_handoff(db: Database, contact_id: int, staff_reply_id: int) -> None:
    with db.session() as session:
        handoff = Handoff(contact_id=contact_id, reason="requested", channel="sms", status="closed", created_at=OLD)
        session.add(handoff)
        session.flush()
        session.add(HandoffMessage(handoff_id=handoff.id, message_id=staff_reply_id, created_at=OLD))


def count(db: Database, model: type) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def history(db: Database) -> dict[str, int]:
    """Five kinds of contact, each with old and recent chat where it makes sense."""
    ids = {
        "forgotten": add_contact(db, "+6281200000001"),
        "active": add_contact(db, "+6281200000002", last_seen=RECENT),
        "reporter": add_contact(db, "+6281200000003"),
        "handed_off": add_contact(db, "+6281200000004"),
        "opted_out": add_contact(db, "+6281200000005", opted_out=True),
    }
    for contact_id in ids.values():
        question = add_message(db, contact_id, OLD)
        add_message(db, contact_id, OLD, Direction.OUTBOUND, reply_to=question)
    old_question = add_message(db, ids["active"], OLD + timedelta(days=34, hours=23, minutes=59))
    add_message(db, ids["active"], RECENT, Direction.OUTBOUND, reply_to=old_question)
    add_message(db, ids["active"], RECENT)
    add_report(db, ids["reporter"])
    add_handoff(db, ids["handed_off"], add_message(db, ids["handed_off"], OLD, Direction.OUTBOUND))
    return ids


@pytest.fixture
def media_store(tmp_path: Path) -> LocalMediaStore:
    """Where the purge deletes stored media (tests/test_media.py covers what it deletes)."""
    return LocalMediaStore(tmp_path / "media")


def test_old_chat_goes_and_everything_that_must_stay_stays(media_store: LocalMediaStore, db: Database, history: dict[str, int]) -> None:
    report = purge_chats(db, media_store=media_store, retention_days=365, now=NOW)
    assert (report.messages, report.staff_reply_links, report.contacts) == (12, 1, 1)
    assert report.cutoff == NOW - timedelta(days=365)
    with db.session() as session:
        left = session.scalars(select(Message)).all()
        assert {m.created_at for m in left} == {RECENT}
        assert all(m.in_reply_to_id is None for m in left), "a kept reply forgets the deleted question"
        addresses = set(session.scalars(select(Contact.address)))
    assert addresses == {"+6281200000002", "+6281200000003", "+6281200000004", "+6281200000005"}
    assert (count(db, Report), count(db, Handoff), count(db, HandoffMessage)) == (1, 1, 0)


def test_dry_run_counts_the_same_and_deletes_nothing(media_store: LocalMediaStore, db: Database, history: dict[str, int]) -> None:
    before = count(db, Message)
    dry = purge_chats(db, media_store=media_store, retention_days=365, now=NOW, dry_run=True)
    assert count(db, Message) == before
    assert count(db, Contact) == 5
    real = purge_chats(db, media_store=media_store, retention_days=365, now=NOW)
    assert (dry.messages, dry.staff_reply_links, dry.contacts) == (real.messages, real.staff_reply_links, real.contacts)
    assert dry.dry_run and not real.dry_run


def test_deletes_in_batches_and_a_second_run_finds_nothing(media_store: LocalMediaStore, db: Database) -> None:
    contact_id = add_contact(db, "+6281200000009", last_seen=RECENT)
    for _ in range(11):
        add_message(db, contact_id, OLD)
    assert purge_chats(db, media_store=media_store, now=NOW, batch=3).messages == 11
    again = purge_chats(db, media_store=media_store, now=NOW)
    assert (again.messages, again.contacts) == (0, 0)


def test_a_shorter_period_reaches_more_recent_chat(media_store: LocalMediaStore, db: Database, history: dict[str, int]) -> None:
    assert purge_chats(db, media_store=media_store, retention_days=7, now=NOW).messages == 14
    assert count(db, Message) == 0


def test_the_period_is_at_least_a_day(media_store: LocalMediaStore, db: Database) -> None:
    with pytest.raises(ValueError):
        purge_chats(db, media_store=media_store, retention_days=0)


def test_cli_prints_counts_and_dry_run_keeps_data(db: Database, history: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", db.url)
    runner = CliRunner()
    dry = runner.invoke(purge, ["--dry-run", "--days", "3650"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith("dry run: would delete 0 chat messages")
    result = runner.invoke(purge, [])
    assert result.exit_code == 0, result.output
    assert "deleted 12 chat messages" in result.output
    assert "1 staff-reply links, 1 contacts" in result.output
    assert runner.invoke(purge, ["--days", "0"]).exit_code == 2


def test_ended_and_expired_staff_sign_ins_go_and_live_ones_stay(media_store: LocalMediaStore, db: Database) -> None:
    with db.session() as session:
        officer = StaffUser(username="rina", password_hash="x")
        session.add(officer)
        session.flush()
        for name, ended, expires in (
            ("logged-out", NOW - timedelta(hours=1), NOW + timedelta(hours=7)),
            ("expired", None, NOW - timedelta(minutes=1)),
            ("live", None, NOW + timedelta(hours=3)),
        ):
            session.add(StaffLoginSession(id_hash=name.ljust(64, "0"), user_id=officer.id, ended_at=ended, expires_at=expires))
    assert purge_chats(db, media_store=media_store, now=NOW, dry_run=True).staff_sessions == 2
    assert purge_chats(db, media_store=media_store, now=NOW).staff_sessions == 2
    with db.session() as session:
        assert session.scalars(select(StaffLoginSession.id_hash)).all() == ["live".ljust(64, "0")]
