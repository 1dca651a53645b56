"""Storing an arriving message, and its replies, in as few statements as the rules allow.

Every message a citizen sends runs this, so its CPU is most of the app's (issue 15):
building SQLAlchemy statements cost more of our CPU than PostgreSQL's running them, a
Session's bookkeeping more than its statements, and every statement is a round trip.
The statements are therefore built once per process, with bound parameters, compiled
once, and sent on the driver's own connection (`bot/db.py` `DriverStatement`) within
a bare SQLAlchemy connection's transaction (`Database.transaction`), past the ORM and
past SQLAlchemy's execution, which cost more CPU than psycopg's.

On PostgreSQL a message is usually stored by one statement in autocommit
(`store_at_once`), which does all of the below at once and stores nothing when it
cannot tell that its snapshot saw every claim (`_at_once_statement` says when). Then,
and on SQLite, storing a message is a transaction of:

1. the sender's row, touched (`UPDATE … RETURNING`, with the database's clock on
   PostgreSQL): this also locks it, as every host's turn claims do
   (bot/conversation/turns.py), until the message is stored; a first message creates
   the row instead;
2. on PostgreSQL, the message's `INSERT … SELECT`: its SELECT claims the turn
   (`at_rasa`, stamped with the database's clock) when the webhook holds a Rasa slot
   and no earlier message of the sender holds this one back or is at Rasa now, and its
   RETURNING reads what the rules need: whether a handoff is open, the sender's
   messages in the flood window (bot/conversation/limits.py), and whether a WhatsApp
   message waits held for the window (bot/channels/later.py). It must be a statement
   of its own after the lock: a PostgreSQL statement sees what was committed when it
   began, so a check inside the locking statement would miss a claim another host
   committed while this one waited for the row (unless, as `store_at_once` checks,
   nobody wrote the row meanwhile). SQLite reads the facts with one
   SELECT and inserts the message with a second statement.

The replies and the message's new status are one statement in autocommit on
PostgreSQL (`store_replies`). An open handoff and attachments take the ORM's paths, in a
Session joined to the storing transaction; they are rare.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean, Connection, Interval, Text, and_, bindparam, case, exists, func, literal, literal_column,
    select, true, update,
)
from sqlalchemy.dialects import postgresql

from bot.conversation.limits import InboundPolicy
from bot.conversation.models import Contact, Direction, Message, MessageStatus, new_conversation_key, utcnow
from bot.conversation.turns import TurnPolicy
from bot.db import Database, DriverStatement
from bot.handoff.models import Handoff, HandoffStatus
from bot.rules.phone import Address

_contacts = Contact.__table__
_messages = Message.__table__
_handoffs = Handoff.__table__
# What the webhook gives of an arriving message; the store decides its status and times.
_STORED_COLUMNS = (
    "contact_id", "direction", "channel", "provider", "provider_sid", "body", "media", "tapped_title",
)


@dataclass(frozen=True)
class Facts:
    """What the rules need to know of a sender as their message is stored."""

    handoff_open: bool
    # The sender's other inbound messages in the flood window: let through, and refused.
    passed: int
    refused: int
    # Something waits held for the sender's WhatsApp window (bot/channels/later.py).
    held: bool


class ArrivalStatements:
    """The statements of an arriving message, built once for a process's policies."""

    def __init__(self, turns: TurnPolicy, inbound: InboundPolicy, db: Database) -> None:
        self.turns = turns
        self.inbound = inbound
        self.postgres = postgres = db.is_postgres
        dialect = db.engine.dialect
        touched = (
            update(_contacts)
            .where(_contacts.c.address == bindparam("sender"))
            .values(last_channel=bindparam("seen_on"), last_seen_at=bindparam("seen_at"))
        )
        # The database's clock, read once the row is locked: claims are judged by it on
        # every host (bot/conversation/turns.py). SQLite is one host: its clock is ours.
        self._touch = DriverStatement(touched.returning(
            _contacts.c.id, _contacts.c.conversation_key, *([func.clock_timestamp()] if postgres else [])
        ), dialect)
        first = {name: bindparam(name) for name in (
            "address", "is_phone", "conversation_key", "last_channel", "opted_out", "created_at", "last_seen_at")}
        self._first = DriverStatement(_contacts.insert().values(first).returning(
            _contacts.c.id, _contacts.c.conversation_key, *([func.clock_timestamp()] if postgres else [])
        ), dialect)
        settle = (
            update(_messages)
            .where(_messages.c.id == bindparam("message_id"))
            .values(status=bindparam("new_status"), updated_at=bindparam("settled_at"))
        )
        self._settle = DriverStatement(settle, dialect)
        if postgres:
            self._store = DriverStatement(self._store_statement(), dialect)
            self._at_once = DriverStatement(self._at_once_statement(touched), dialect)
            self._replies = DriverStatement(self._replies_statement(settle), dialect)
        else:
            self._facts = DriverStatement(
                select(*(value.label(name) for name, value in self._bound_facts().items())), dialect
            )
            inserted = {name: bindparam(name) for name in (*_STORED_COLUMNS, "status", "created_at", "updated_at")}
            self._insert = DriverStatement(_messages.insert().values(inserted).returning(_messages.c.id), dialect)
            self._insert_reply = _messages.insert()

    @staticmethod
    def _fact_columns(contact_id: Any, oldest: Any, failing_since: Any, claimed_after: Any) -> dict[str, Any]:
        """Each fact, by name, as a subquery on the sender `contact_id`, the turn's cut-offs
        (`at - max_age`, `at - blocks_for`, `at - lease` on the database's clock `at`) and
        the bound parameters `now` and `window_start` (this host's clock)."""
        m = _messages.c
        sender = m.contact_id == contact_id
        inbound = and_(sender, m.direction == Direction.INBOUND)
        in_window = and_(inbound, m.created_at > bindparam("window_start"), m.created_at <= bindparam("now"))
        limited = m.status == MessageStatus.RATE_LIMITED
        recent = and_(inbound, m.created_at > oldest)
        holding = TurnPolicy.blocking_since(m, oldest, failing_since)
        at_rasa = TurnPolicy.live_claim_since(m, claimed_after)
        return {
            "handoff_open": exists().where(
                _handoffs.c.contact_id == contact_id, _handoffs.c.status.in_(HandoffStatus.OPEN)
            ),
            "passed": select(func.count()).where(in_window, ~limited).scalar_subquery(),
            "refused": select(func.count()).where(in_window, limited).scalar_subquery(),
            "turn_free": ~exists().where(recent, holding | at_rasa),
            "held": exists().where(sender, m.status == MessageStatus.HELD),
        }

    @classmethod
    def _bound_facts(cls) -> dict[str, Any]:
        """The facts on the bound parameters `contact_id`, `oldest`, `failing_since` and
        `claimed_after`, which `store` gives."""
        return cls._fact_columns(*(bindparam(name) for name in ("contact_id", "oldest", "failing_since", "claimed_after")))

    def _store_statement(self) -> Any:
        """PostgreSQL's: the message inserted already claimed when its turn is free, the
        facts in its RETURNING. The statement began after `touch` took the lock, so it
        sees every claim committed before; neither its SELECT nor its RETURNING sees the
        row it inserts, as the facts of the two-statement form do not."""
        facts = self._bound_facts()
        free = select(facts.pop("turn_free").label("turn_free")).subquery()
        claimed = and_(bindparam("claim", type_=Boolean), free.c.turn_free)
        c = _messages.c
        row = select(
            *(bindparam(name, type_=c[name].type) for name in _STORED_COLUMNS),
            case((claimed, MessageStatus.AT_RASA), else_=MessageStatus.RECEIVED),
            bindparam("now", type_=c.created_at.type),
            case((claimed, bindparam("at", type_=c.updated_at.type)), else_=bindparam("now", type_=c.updated_at.type)),
        ).select_from(free)
        return (
            _messages.insert()
            .from_select([*_STORED_COLUMNS, "status", "created_at", "updated_at"], row)
            .returning(c.id, c.status, *(value.label(name) for name, value in facts.items()))
        )

    def _at_once_statement(self, touched: Any) -> Any:
        """PostgreSQL's one statement, in autocommit: the sender's row touched (or created,
        on a first message), the facts read, and the message inserted (claimed when its
        turn is free), as `touch`, `first_contact` and `store` do in a transaction of
        three round trips besides.

        A statement sees what was committed when it began, and `store` must see every
        claim committed while it waited for the sender's row. So the row is touched
        only if it is still the version this statement's snapshot has (`xmin` names the
        transaction that wrote a row's version): should another host have stored a
        message or claimed a turn of the sender meanwhile (both write the row: `touch`,
        and `Turns.claim`), the lock wait ends on a newer version, nothing is touched
        or inserted, and the caller stores the message by `touch` and `store`. So it
        does when another message of a new sender is creating their row at this
        moment, and while a handoff is open (its row changes in the message's own
        transaction, bot/handoff/service.py)."""
        seen = _contacts.alias("seen")
        found = select(literal_column("seen.xmin")).select_from(seen).where(seen.c.address == bindparam("sender"))
        returned = (_contacts.c.id, _contacts.c.conversation_key, func.clock_timestamp().label("at"))
        known = touched.where(literal_column("contacts.xmin") == found.scalar_subquery()).returning(*returned)
        k = _contacts.c
        created = postgresql.insert(_contacts).from_select(
            ["address", "is_phone", "conversation_key", "last_channel", "opted_out", "created_at", "last_seen_at"],
            select(
                bindparam("sender", type_=k.address.type), bindparam("is_phone", type_=k.is_phone.type),
                bindparam("conversation_key", type_=k.conversation_key.type),
                bindparam("seen_on", type_=k.last_channel.type), literal(False, k.opted_out.type),
                bindparam("seen_at", type_=k.created_at.type), bindparam("seen_at", type_=k.last_seen_at.type),
            ).where(~found.exists()),
        ).on_conflict_do_nothing(index_elements=["address"]).returning(*returned)
        sender = select(*known.cte("known_sender").c).union_all(select(*created.cte("new_sender").c)).cte("sender")
        at = sender.c.at
        spans = {name: bindparam(name, value=getattr(self.turns, name), type_=Interval)
                 for name in ("max_age", "blocks_for", "lease")}
        facts = self._fact_columns(sender.c.id, at - spans["max_age"], at - spans["blocks_for"], at - spans["lease"])
        seen_now = select(*sender.c, *(value.label(name) for name, value in facts.items())).cte("facts")
        claimed = and_(bindparam("claim", type_=Boolean), seen_now.c.turn_free)
        c = _messages.c
        now = bindparam("now", type_=c.created_at.type)
        row = select(
            seen_now.c.id,
            *(bindparam(name, type_=c[name].type) for name in _STORED_COLUMNS[1:]),
            case((claimed, MessageStatus.AT_RASA), else_=MessageStatus.RECEIVED),
            now,
            case((claimed, seen_now.c.at), else_=now),
        ).where(~seen_now.c.handoff_open)
        inserted = (
            _messages.insert()
            .from_select([*_STORED_COLUMNS, "status", "created_at", "updated_at"], row)
            .returning(c.id, c.status)
            .cte("inserted")
        )
        f = seen_now.c
        return select(
            f.id, f.conversation_key, f.at, f.passed, f.refused, f.held, inserted.c.id, inserted.c.status,
        ).select_from(seen_now.outerjoin(inserted, true()))

    def touch(self, connection: Connection, address: Address, now: datetime) -> tuple[int, str, datetime] | None:
        """The sender's id, conversation key and the database's clock; None when the
        sender has no row yet (their first message)."""
        row = self._touch.run(connection, {"sender": address.value, "seen_on": address.channel, "seen_at": now}
                              ).fetchone()
        return None if row is None else _with_clock(row, now)

    def first_contact(self, connection: Connection, address: Address, now: datetime) -> tuple[int, str, datetime]:
        """Create the contact of a sender's first message; its id, conversation key and the
        database's clock, as `touch` gives them. Two first messages at once: the second
        raises IntegrityError (`address` is unique)."""
        row = self._first.run(connection, {
            "address": address.value,
            "is_phone": address.is_phone,
            "conversation_key": new_conversation_key(),
            "last_channel": address.channel,
            "opted_out": False,
            "created_at": now,
            "last_seen_at": now,
        }).fetchone()
        return _with_clock(row, now)

    def store(
        self, connection: Connection, values: dict[str, Any], claim: bool, now: datetime, at: datetime
    ) -> tuple[int, bool, Facts]:
        """Insert the message of `values` (`_STORED_COLUMNS`), claimed when `claim` and its
        turn is free; its id, whether it was claimed, and the rules' facts. Run after
        `touch` locked the sender's row. `now` is this host's clock, which stamps
        messages; `at`, the database's, judges and stamps claims."""
        turns = self.turns
        params = {
            "contact_id": values["contact_id"],
            "now": now,
            "window_start": now - self.inbound.window,
            "oldest": at - turns.max_age,
            "failing_since": at - turns.blocks_for,
            "claimed_after": at - turns.lease,
        }
        if self.postgres:
            message_id, status, handoff_open, passed, refused, held = self._store.run(
                connection, {**params, **values, "claim": claim, "at": at}
            ).fetchone()
            return message_id, status == MessageStatus.AT_RASA, Facts(bool(handoff_open), passed, refused, bool(held))
        handoff_open, passed, refused, turn_free, held = self._facts.run(connection, params).fetchone()
        # No earlier message of the sender holds this one back, and none is at Rasa now.
        claimed = claim and bool(turn_free)
        (message_id,) = self._insert.run(connection, {
            **values,
            "status": MessageStatus.AT_RASA if claimed else MessageStatus.RECEIVED,
            "created_at": now,
            "updated_at": at if claimed else now,
        }).fetchone()
        return message_id, claimed, Facts(bool(handoff_open), passed, refused, bool(held))

    def store_at_once(
        self, db: Database, address: Address, values: dict[str, Any], claim: bool, now: datetime
    ) -> Arrived | None:
        """Store the message of `values` (`_STORED_COLUMNS` but `contact_id`) in one
        statement in autocommit, claimed when `claim` and its turn is free; None when it
        must be stored by `touch` and `store` instead: on SQLite, while a handoff is
        open, or when another host wrote the sender's row while this statement waited
        for it (`_at_once_statement`)."""
        if not self.postgres:
            return None
        with db.autocommit() as connection:
            row = self._at_once.run(connection, {
                **values,
                "sender": address.value,
                "is_phone": address.is_phone,
                "conversation_key": new_conversation_key(),
                "seen_on": address.channel,
                "seen_at": now,
                "now": now,
                "window_start": now - self.inbound.window,
                "claim": claim,
            }).fetchone()
        if row is None or row[6] is None:
            return None
        contact_id, conversation_key, at, passed, refused, held, message_id, status = row
        return Arrived(contact_id, conversation_key, at, message_id, status == MessageStatus.AT_RASA,
                       Facts(False, passed, refused, bool(held)))

    def store_replies(self, db: Database, message: Answered, texts: list[str], status: str) -> None:
        """The replies to `message`, in order, and its new status, reading nothing.

        On PostgreSQL one statement on a connection in autocommit, atomic by itself: the
        replies come from an array of their texts, and the status changes in a
        data-modifying WITH; no BEGIN or COMMIT makes a round trip of its own. SQLite
        has neither: two statements in a transaction there.
        """
        now = utcnow()
        params = {
            "message_id": message.message_id,
            "new_status": status,
            "settled_at": now,
            "reply_contact_id": message.contact_id,
            "reply_channel": message.channel,
            "reply_provider": message.provider,
            "reply_at": now,
        }
        if self.postgres:
            with db.autocommit() as connection:
                if texts:
                    self._replies.run(connection, {**params, "reply_bodies": texts})
                else:
                    self._settle.run(connection, params)
            return
        with db.transaction() as connection:
            if texts:
                connection.execute(self._insert_reply, [self._reply_row(message, text, now) for text in texts])
            self._settle.run(connection, params)

    @staticmethod
    def _reply_row(message: Answered, text: str, now: datetime) -> dict[str, Any]:
        return {
            "contact_id": message.contact_id,
            "direction": Direction.OUTBOUND,
            "channel": message.channel,
            "provider": message.provider,
            "in_reply_to_id": message.message_id,
            "body": text,
            "media": [],
            "status": MessageStatus.REPLIED,
            "created_at": now,
            "updated_at": now,
        }

    @staticmethod
    def _replies_statement(settle: Any) -> Any:
        """PostgreSQL's: `INSERT … SELECT … FROM unnest(:texts) WITH ORDINALITY`, the
        replies' ids in the order of their texts, with the status update as a WITH."""
        c = _messages.c
        texts = func.unnest(bindparam("reply_bodies", type_=postgresql.ARRAY(Text))).table_valued(
            "body", with_ordinality="position"
        ).render_derived()
        at = bindparam("reply_at", type_=c.created_at.type)
        rows = select(
            bindparam("reply_contact_id", type_=c.contact_id.type),
            literal(Direction.OUTBOUND, c.direction.type),
            bindparam("reply_channel", type_=c.channel.type),
            bindparam("reply_provider", type_=c.provider.type),
            bindparam("message_id", type_=c.in_reply_to_id.type),
            texts.c.body,
            literal([], c.media.type),
            literal(MessageStatus.REPLIED, c.status.type),
            at,
            at,
        ).order_by(texts.c.position)
        columns = ["contact_id", "direction", "channel", "provider", "in_reply_to_id", "body", "media", "status",
                   "created_at", "updated_at"]
        return _messages.insert().from_select(columns, rows).add_cte(settle.cte("settled"))


def _with_clock(row: Any, now: datetime) -> tuple[int, str, datetime]:
    """A contact's id and conversation key, and the database's clock: PostgreSQL's from
    the row, this host's `now` on SQLite, whose statements return none."""
    return row[0], row[1], (row[2] if len(row) > 2 else now)


@dataclass(frozen=True)
class Arrived:
    """A message stored by `store_at_once`, and what the webhook needs of its sender."""

    contact_id: int
    conversation_key: str
    # The database's clock as the message was stored: its claim's stamp when claimed.
    at: datetime
    message_id: int
    claimed: bool
    facts: Facts


@dataclass(frozen=True)
class Answered:
    """The message the replies answer, as they need it."""

    message_id: int
    contact_id: int
    channel: str
    provider: str
