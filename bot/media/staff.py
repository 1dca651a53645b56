"""Citizens' media as staff see it: only in a chat or report they may open, audited.

Every file is served through the page it belongs to (a chat's transcript, a report's
evidence), under that page's own rule: the officer must be allowed to open the page
(bot/handoff/service.py for chats, bot/reports/staff_view.py for reports), and the
file must be one that page shows. Each file handed out leaves an audit entry first.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import select

from bot.db import Database
from bot.handoff.audit import AuditAction, AuditLog
from bot.handoff.service import HandoffDesk
from bot.handoff.staff_users import StaffIdentity
from bot.media.checks import IMAGE_TYPES
from bot.media.models import MediaItem, MediaStatus
from bot.media.store import MediaMissing, MediaStore
from bot.reports.staff_view import StaffReports

_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "application/pdf": "pdf"}


class MediaNotFound(LookupError):
    """No such file on this page, or no copy of it (any more)."""


@dataclass(frozen=True)
class MediaRef:
    """One attachment as a page lists it: our copy's key once stored, else why there is none."""

    status: str
    key: str | None = None
    content_type: str | None = None

    @property
    def is_image(self) -> bool:
        return self.content_type in IMAGE_TYPES


@dataclass(frozen=True)
class MediaFile:
    key: str
    content_type: str
    size: int
    filename: str
    stream: BinaryIO

    @property
    def is_image(self) -> bool:
        return self.content_type in IMAGE_TYPES


class StaffMedia:
    """Finds and serves our copies for the dashboard's chat and report pages."""

    def __init__(
        self, db: Database, store: MediaStore, audit: AuditLog, desk: HandoffDesk, reports: StaffReports
    ) -> None:
        self.db = db
        self.store = store
        self.audit = audit
        self.desk = desk
        self.reports = reports

    def refs(self, urls: Iterable[str]) -> dict[str, MediaRef]:
        """What a page may show for each provider URL it lists (an unknown URL: nothing)."""
        wanted = set(urls)
        if not wanted:
            return {}
        with self.db.session() as session:
            items = session.execute(
                select(MediaItem.source_url, MediaItem.status, MediaItem.key, MediaItem.content_type)
                .where(MediaItem.source_url.in_(wanted))
                .order_by(MediaItem.id)
            ).all()
        found: dict[str, MediaRef] = {}
        for item in items:
            stored = item.status == MediaStatus.STORED
            found.setdefault(
                item.source_url,
                MediaRef(item.status, item.key if stored else None, item.content_type if stored else None),
            )
        return found

    def for_chat(self, viewer: StaffIdentity, handoff_id: int, key: str, ip: str = "") -> MediaFile:
        """A file of a chat's transcript; raises HandoffNotFound, AccessDenied or MediaNotFound."""
        _, lines = self.desk.lines_after(viewer, handoff_id, 0)
        shown = {url for line in lines for url in line.media}
        return self._serve(viewer, key, shown, f"handoff:{handoff_id}", ip)

    def for_report(self, viewer: StaffIdentity, reference: str, key: str, ip: str = "") -> MediaFile:
        """A file of a report's evidence; raises ReportNotFound, AccessDenied or MediaNotFound."""
        with self.db.session() as session:
            report = self.reports.open_in(session, viewer, reference)
            shown = {attachment.url for attachment in report.attachments}
            target = f"report:{report.reference}"
        return self._serve(viewer, key, shown, target, ip)

    def _serve(self, viewer: StaffIdentity, key: str, shown: set[str], target: str, ip: str) -> MediaFile:
        with self.db.session() as session:
            item = session.scalar(
                select(MediaItem).where(MediaItem.key == key, MediaItem.status == MediaStatus.STORED)
            )
            if item is None or item.source_url not in shown:
                raise MediaNotFound(key)
            self.audit.record_in(session, viewer, AuditAction.VIEW_MEDIA, target, f"media:{key}", ip)
            content_type, size, position = item.content_type or "", item.size or 0, item.position
        try:
            stream = self.store.open(key)
        except MediaMissing as exc:
            raise MediaNotFound(key) from exc
        filename = f"lampiran-{position + 1}-{key[:8]}.{_EXTENSIONS.get(content_type, 'bin')}"
        return MediaFile(key, content_type, size, filename, stream)
