"""Typed models of the people who work the dashboard, and the audit log of what they saw and did.

Staff account lifecycle, drawn once:

    active ──(5 failed logins)──▶ locked for 15 minutes ──(time passes / admin unlocks)──▶ active
       └────(admin deactivates)──▶ inactive ──(admin reactivates)──▶ active

Each sign-in is a `StaffLoginSession` row, and the cookie carries only its random id
(the row keeps a hash of it). A signed cookie alone cannot be taken back, so ending a
session means ending its row: logout ends that one, and a password change,
deactivation or role change ends all of that user's rows. Every web host reads the
same rows, so an ended session is dead everywhere at once.

The audit log is append-only: the services write an entry for every view of
personal data and every change; nothing updates or deletes one.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.db import Base
from bot.conversation.models import utcnow

USERNAME_MAX_CHARS = 64
FULL_NAME_MAX_CHARS = 200
# A Kemendagri code: a province ("32") or a regency ("3201").
REGION_MAX_CHARS = 8
PHONE_MAX_CHARS = 20
AUDIT_DETAIL_MAX_CHARS = 500


class StaffRole:
    """Roles, each allowed what the ones before it are.

    agent: escalated chats and reports of their own region.
    supervisor: everything in every region, assigns chats, may reveal a whole NIK.
    admin: also staff accounts, data imports and the audit log.
    """

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"

    ALL = (AGENT, SUPERVISOR, ADMIN)
    RANK = {AGENT: 0, SUPERVISOR: 1, ADMIN: 2}


class StaffUser(Base):
    """A dashboard account; `region` limits what an agent sees (None: national)."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_MAX_CHARS), unique=True)
    full_name: Mapped[str] = mapped_column(String(FULL_NAME_MAX_CHARS), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=StaffRole.AGENT)
    region: Mapped[Optional[str]] = mapped_column(String(REGION_MAX_CHARS), default=None)
    # E.164; where a supervisor's daily summary of new clusters goes (bot/reports/signal_alerts.py).
    phone: Mapped[Optional[str]] = mapped_column(String(PHONE_MAX_CHARS), default=None)
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[Optional[datetime]] = mapped_column(default=None)
    last_login_at: Mapped[Optional[datetime]] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class StaffLoginSession(Base):
    """One sign-in on one browser, alive while not ended and not past `expires_at`.

    `id_hash` is the SHA-256 of the id in the cookie: a copy of this table (a backup,
    a read-only replica) gives nobody a session. `expires_at` moves forward with use.
    """

    __tablename__ = "staff_sessions"
    __table_args__ = (Index("ix_staff_sessions_user", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    ended_at: Mapped[Optional[datetime]] = mapped_column(default=None)


class AuditEntry(Base):
    """Who did or saw what, when: `target` names the object ("report:ADU-…", "handoff:12")."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_actor_at", "actor", "at"),
        Index("ix_audit_log_target", "target"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("staff_users.id"), default=None)
    # Kept as text too, so the log still reads right if an account is renamed.
    actor: Mapped[str] = mapped_column(String(USERNAME_MAX_CHARS))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(80), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    ip: Mapped[str] = mapped_column(String(45), default="")
