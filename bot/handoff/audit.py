"""The audit log: who saw which personal data and who changed what, when.

UU PDP expects a public-service controller to be able to show who processed whose
data. Services call `record` before they hand personal data out (if the entry cannot
be written, the data is not shown) and `record_in` inside the unit of work of a
change, so the change and its entry commit or fail together. Details never carry a
whole NIK: callers write references and ids, and the text is masked again here.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.db import Database
from bot.conversation.models import utcnow
from bot.rules.nik import mask_niks
from bot.handoff.staff_models import AUDIT_DETAIL_MAX_CHARS, USERNAME_MAX_CHARS, AuditEntry

if TYPE_CHECKING:
    from bot.handoff.staff_users import StaffIdentity

ANONYMOUS = "-"
PAGE_SIZE = 100


class AuditAction:
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    ACCOUNT_LOCKED = "account_locked"
    LOGOUT = "logout"
    USER_CREATED = "user_created"
    USER_UPDATED = "user_updated"
    USER_UNLOCKED = "user_unlocked"
    PASSWORD_SET = "password_set"
    VIEW_CHAT = "view_chat"
    REVEAL_NIK = "reveal_nik"
    CLAIM = "claim"
    ASSIGN = "assign"
    REPLY = "reply"
    HAND_BACK = "hand_back"
    CLOSE = "close"
    VIEW_REPORT = "view_report"
    # A citizen's photo or PDF opened from a chat or a report (bot/media/staff.py).
    VIEW_MEDIA = "view_media"
    REPORT_STATUS = "report_status"
    EXPORT_REPORTS = "export_reports"
    EXPORT_CONVERSATIONS = "export_conversations"
    # Written when a conversation export's stream ends, with how many rows left.
    EXPORT_FINISHED = "export_finished"
    IMPORT = "import"
    VIEW_AUDIT = "view_audit"

    ALL = (
        LOGIN, LOGIN_FAILED, ACCOUNT_LOCKED, LOGOUT, USER_CREATED, USER_UPDATED, USER_UNLOCKED,
        PASSWORD_SET, VIEW_CHAT, REVEAL_NIK, CLAIM, ASSIGN, REPLY, HAND_BACK, CLOSE, VIEW_REPORT, VIEW_MEDIA,
        REPORT_STATUS, EXPORT_REPORTS, EXPORT_CONVERSATIONS, EXPORT_FINISHED, IMPORT, VIEW_AUDIT,
    )


@dataclass(frozen=True)
class AuditView:
    at: datetime
    actor: str
    action: str
    target: str
    detail: str
    ip: str


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditView]
    total: int
    page: int
    pages: int


class AuditLog:
    """Appends entries and lists them, newest first, for admins."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def record(
        self, actor: StaffIdentity | None, action: str, target: str, detail: str = "", ip: str = ""
    ) -> None:
        """Write one entry in its own unit of work."""
        with self.db.session() as session:
            self.record_in(session, actor, action, target, detail, ip)

    def record_in(
        self,
        session: Session,
        actor: StaffIdentity | None,
        action: str,
        target: str,
        detail: str = "",
        ip: str = "",
    ) -> None:
        """Add an entry to a unit of work that is changing something."""
        session.add(
            AuditEntry(
                at=self.clock(),
                actor_id=actor.id if actor else None,
                actor=(actor.username if actor else ANONYMOUS)[:USERNAME_MAX_CHARS],
                action=action,
                target=mask_niks(target)[:80],
                detail=mask_niks(detail)[:AUDIT_DETAIL_MAX_CHARS],
                ip=(ip or "")[:45],
            )
        )

    def page(
        self, page: int = 1, action: str | None = None, actor: str | None = None, target: str | None = None
    ) -> AuditPage:
        """One page of entries matching every filter given, newest first."""
        query = select(AuditEntry)
        if action:
            query = query.where(AuditEntry.action == action)
        if actor:
            query = query.where(AuditEntry.actor == actor.strip().lower())
        if target:
            query = query.where(AuditEntry.target == target.strip())
        with self.db.session() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            pages = max(1, -(-total // PAGE_SIZE))
            page = min(max(page, 1), pages)
            rows = session.scalars(
                query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                .offset((page - 1) * PAGE_SIZE)
                .limit(PAGE_SIZE)
            ).all()
            entries = [
                AuditView(row.at, row.actor, row.action, row.target, row.detail, row.ip) for row in rows
            ]
        return AuditPage(entries, total, page, pages)
