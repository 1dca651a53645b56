"""DriverStatement: SQLAlchemy's statement, sent by the driver, with SQLAlchemy's rules kept.

Every message a citizen sends is stored through it (bot/conversation/arrival.py), on
SQLite and on PostgreSQL, so what it must keep of `Connection.execute` is tested here:
the values' processing (UTC times, JSON), the IN lists, and the exceptions the callers'
retry and replay rules catch, without the citizen's words in them.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from bot.conversation.models import Contact, Direction, Message, MessageStatus
from bot.db import Database, DriverStatement
from tools.databases import migrated_database, postgres_base_url

_messages = Message.__table__


def _contact(db: Database) -> int:
    with db.session() as session:
        contact = Contact(address="+6281234500077")
        session.add(contact)
        session.flush()
        return contact.id


def _insert(db: Database) -> DriverStatement:
    names = ("contact_id", "direction", "channel", "provider", "provider_sid", "body", "media", "status",
             "created_at", "updated_at")
    statement = _messages.insert().values({name: bindparam(name) for name in names}).returning(_messages.c.id)
    return DriverStatement(statement, db.engine.dialect)


def _row(contact_id: int, sid: str, at: datetime) -> dict[str, object]:
    return {"contact_id": contact_id, "direction": Direction.INBOUND, "channel": "sms", "provider": "twilio",
            "provider_sid": sid, "body": "CEK 3201010101800001", "media": [{"url": "https://example.org/a"}],
            "status": MessageStatus.RECEIVED, "created_at": at, "updated_at": at}


def test_values_are_processed_as_sqlalchemy_would_and_read_back_by_the_orm(db: Database) -> None:
    contact_id = _contact(db)
    # A time given in WIB is stored as the same instant, and JSON as JSON.
    at = datetime(2026, 12, 3, 15, 0, tzinfo=timezone(timedelta(hours=7)))
    with db.transaction() as connection:
        (message_id,) = _insert(db).run(connection, _row(contact_id, "SM-driver-1", at)).fetchone()

    with db.session() as session:
        stored = session.get_one(Message, message_id)
        assert stored.created_at == at and stored.created_at.tzinfo is not None
        assert stored.media == [{"url": "https://example.org/a"}]
        assert stored.body == "CEK 3201010101800001"


def test_an_in_list_is_written_out_once_with_its_values(db: Database) -> None:
    contact_id = _contact(db)
    with db.transaction() as connection:
        _insert(db).run(connection, _row(contact_id, "SM-driver-2", datetime.now(timezone.utc)))
    unsettled = DriverStatement(
        select(_messages.c.provider_sid).where(
            _messages.c.contact_id == bindparam("contact_id"),
            _messages.c.status.in_([MessageStatus.RECEIVED, MessageStatus.AT_RASA]),
        ),
        db.engine.dialect,
    )
    with db.transaction() as connection:
        assert unsettled.run(connection, {"contact_id": contact_id}).fetchall() == [("SM-driver-2",)]


def test_a_repeated_provider_id_raises_sqlalchemys_integrity_error_without_the_message(db: Database) -> None:
    contact_id = _contact(db)
    insert, now = _insert(db), datetime.now(timezone.utc)
    with db.transaction() as connection:
        insert.run(connection, _row(contact_id, "SM-driver-3", now))

    with pytest.raises(IntegrityError) as raised, db.transaction() as connection:
        insert.run(connection, _row(contact_id, "SM-driver-3", now))

    assert not raised.value.connection_invalidated
    assert "3201010101800001" not in str(raised.value), "what the citizen wrote stays out of tracebacks"


def test_an_in_list_of_values_that_need_processing_is_refused_when_built(db: Database) -> None:
    times = [datetime.now(timezone.utc)]
    with pytest.raises(ValueError, match="IN list"):
        DriverStatement(select(_messages.c.id).where(_messages.c.created_at.in_(times)), db.engine.dialect)


def test_an_autocommit_unit_commits_each_statement_and_leaves_the_pool_transactional(tmp_path: Path) -> None:
    """On PostgreSQL each statement of `Database.autocommit` is committed as it runs, even
    when the unit then fails; the pooled connection it used (the pool holds one here)
    then runs transactions again, which roll back on an error."""
    if not postgres_base_url():
        pytest.skip("PostgreSQL variant: set TEST_DATABASE_URL to run it")
    with migrated_database("postgresql", tmp_path) as migrated:
        db = Database(migrated.url, pool_size=1, max_overflow=0)
        try:
            contact_id = _contact(db)
            now = datetime.now(timezone.utc)
            with pytest.raises(RuntimeError), db.autocommit() as connection:
                _insert(db).run(connection, _row(contact_id, "SM-auto", now))
                raise RuntimeError("the unit fails after its statement")
            with pytest.raises(RuntimeError), db.transaction() as connection:
                _insert(db).run(connection, _row(contact_id, "SM-in-transaction", now))
                raise RuntimeError("the transaction fails")
            with db.session() as session:
                assert session.scalars(select(Message.provider_sid)).all() == ["SM-auto"]
        finally:
            db.dispose()
