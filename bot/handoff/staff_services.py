"""The services behind the staff dashboard (built with the rest in bot/services.py)."""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from typing import IO

from bot.db import Database
from bot.handoff.audit import AuditAction, AuditLog
from bot.handoff.conversation_export import ConversationExport
from bot.handoff.figures import Figures, dashboard_figures
from bot.handoff.service import HandoffDesk
from bot.media.staff import StaffMedia
from bot.registry.importer import ImportReport, import_disbursements, import_recipients
from bot.conversation.models import utcnow
from bot.handoff.staff_models import StaffRole
from bot.reports.staff_view import StaffReports
from bot.handoff.staff_users import AccessDenied, StaffDirectory, StaffIdentity

IMPORT_KINDS = {
    "recipients": import_recipients,
    "disbursements": import_disbursements,
}


@dataclass
class StaffServices:
    db: Database
    audit: AuditLog
    directory: StaffDirectory
    desk: HandoffDesk
    reports: StaffReports
    conversation_export: ConversationExport
    # Citizens' photos and PDFs, served from the chat and report pages.
    media: StaffMedia

    def figures(self, viewer: StaffIdentity) -> Figures:
        if not viewer.can(StaffRole.SUPERVISOR):
            raise AccessDenied("Ringkasan hanya untuk supervisor dan admin.")
        return dashboard_figures(self.db, utcnow())

    def import_csv(self, viewer: StaffIdentity, kind: str, stream: IO[bytes], filename: str, ip: str = "") -> ImportReport:
        """Run a registry import uploaded by an admin; the audit says who loaded what file."""
        if not viewer.is_admin:
            raise AccessDenied("Impor data hanya untuk admin.")
        importer = IMPORT_KINDS.get(kind)
        if importer is None:
            raise ValueError(f"unknown import kind {kind!r}")
        # Large uploads arrive spooled in a way io.TextIOWrapper cannot read on Python 3.10;
        # a plain temporary file always can.
        with tempfile.TemporaryFile() as copy:
            shutil.copyfileobj(stream, copy)
            copy.seek(0)
            report = importer(self.db, copy)
        self.audit.record(
            viewer, AuditAction.IMPORT, f"import:{kind}",
            f"file={filename[:100]} rows={report.rows} imported={report.imported} bad={len(report.errors)}",
            ip,
        )
        return report
