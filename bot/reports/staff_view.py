"""Reports as staff see them: scoped to their region, masked, and audited.

`ReportService` owns the reports and their lifecycle; this module adds who may see
what. An agent sees the reports routed to their region; nobody sees a sensitive
report that names them (bot.reports.service.may_handle). Opening a report, revealing a NIK,
exporting and changing a status each leave an audit entry, written before the data
is handed out. The list page and the export read the same visible reports; only the
page stops at LIST_LIMIT.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.handoff.audit import AuditAction, AuditLog
from bot.db import Database
from bot.conversation.models import Contact, utcnow
from bot.rules.nik import mask_nik, mask_niks
from bot.rules.phone import mask_phone
from bot.rules.regions import PROVINCES
from bot.reports.service import ReportNotFound, ReportService, ReportView, export_lines, may_handle
from bot.reports.models import PROPOSED_FOR_CHOICES, Report, ReportStatus, category_label, choice_label
from bot.reports.refs import normalise_reference
from bot.handoff.staff_users import AccessDenied, StaffIdentity

# A page of the dashboard, not a file: beyond this, filters or the export serve better.
LIST_LIMIT = 500


@dataclass(frozen=True)
class ReportFilters:
    kind: str | None = None
    status: str | None = None
    province: str | None = None
    sensitive: bool | None = None

    def describe(self) -> str:
        parts = [f"{name}={value}" for name, value in vars(self).items() if value is not None]
        return " ".join(parts) or "all"


@dataclass(frozen=True)
class ReportRow:
    reference: str
    kind: str
    category_label: str
    status: str
    is_sensitive: bool
    province_name: str
    routed_to: str | None
    masked_nik: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ReportHistoryLine:
    at: datetime
    event: str
    from_status: str | None
    to_status: str
    actor: str
    note: str


@dataclass(frozen=True)
class ReportDetail:
    reference: str
    kind: str
    category_label: str
    proposed_for_label: str | None
    status: str
    next_statuses: tuple[str, ...]
    is_sensitive: bool
    province_name: str
    regency: str | None
    district: str | None
    village: str | None
    routed_to: str | None
    nik: str
    nik_revealed: bool
    subject_name: str | None
    subject_address: str | None
    description: str
    reporter: str
    reporter_channel: str
    attachments: tuple[str, ...]
    history: list[ReportHistoryLine]
    created_at: datetime


def may_see_report(viewer: StaffIdentity, report: Report) -> bool:
    """The one rule for every staff view of a report: their region, and not named in it if sensitive.

    Call it inside a session (may_handle reads the report's events).
    """
    return viewer.may_see_region(report.routed_to) and may_handle(report, viewer.display_name)


def _province_name(code: str | None) -> str:
    found = PROVINCES.get(code or "")
    return found.name if found else "-"


class StaffReports:
    """The dashboard's report pages, on top of ReportService."""

    def __init__(
        self, db: Database, reports: ReportService, audit: AuditLog, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.reports = reports
        self.audit = audit
        self.clock = clock

    @staticmethod
    def _may_see(viewer: StaffIdentity, report: Report) -> bool:
        return may_see_report(viewer, report)

    def open_in(self, session: Session, viewer: StaffIdentity, reference: str) -> Report:
        """The report `reference` names, with its events and evidence, read in `session`
        for a viewer who may see it: the one check of every page (and file) of a report.

        Raises ReportNotFound or AccessDenied.
        """
        ref = normalise_reference(reference)
        report = session.scalar(
            select(Report)
            .where(Report.reference == ref)
            .options(selectinload(Report.events), selectinload(Report.attachments))
        ) if ref else None
        if report is None:
            raise ReportNotFound(reference)
        if not self._may_see(viewer, report):
            raise AccessDenied("Laporan ini bukan wilayah atau wewenang Anda.")
        return report

    def _visible(self, viewer: StaffIdentity, filters: ReportFilters) -> Iterator[ReportView]:
        """Every matching report the viewer may see, in filing order, read in batches."""
        return self.reports.iter_reports(
            kind=filters.kind,
            status=filters.status,
            province=filters.province,
            sensitive=filters.sensitive,
            keep=lambda report: self._may_see(viewer, report),
        )

    def list(self, viewer: StaffIdentity, filters: ReportFilters) -> list[ReportRow]:
        """The first LIST_LIMIT matching reports the viewer may see, in filing order."""
        return [
            ReportRow(
                reference=view.reference,
                kind=view.kind,
                category_label=category_label(view.kind, view.category) or view.category,
                status=view.status,
                is_sensitive=view.is_sensitive,
                province_name=_province_name(view.province_code),
                routed_to=view.routed_to,
                masked_nik=view.masked_nik,
                created_at=view.created_at,
                updated_at=view.updated_at,
            )
            for view in islice(self._visible(viewer, filters), LIST_LIMIT)
        ]

    def detail(self, viewer: StaffIdentity, reference: str, reveal_nik: bool = False, ip: str = "") -> ReportDetail:
        """One report with its history; the view (and a NIK reveal) is audited first."""
        if reveal_nik and not viewer.can_reveal_nik:
            raise AccessDenied("Peran Anda tidak boleh membuka NIK utuh.")
        with self.db.session() as session:
            report = self.open_in(session, viewer, reference)
            self.audit.record_in(session, viewer, AuditAction.VIEW_REPORT, f"report:{report.reference}", "", ip)
            if reveal_nik:
                self.audit.record_in(session, viewer, AuditAction.REVEAL_NIK, f"report:{report.reference}", "", ip)
            reporter = session.get_one(Contact, report.reporter_contact_id)
            nik = report.subject_nik or ""
            if nik and not reveal_nik:
                nik = mask_nik(nik)

            def text(value: str | None) -> str:
                return (value or "") if reveal_nik else mask_niks(value or "")

            return ReportDetail(
                reference=report.reference,
                kind=report.kind,
                category_label=category_label(report.kind, report.category) or report.category,
                proposed_for_label=choice_label(PROPOSED_FOR_CHOICES, report.proposed_for),
                status=report.status,
                next_statuses=tuple(
                    s for s in ReportStatus.ALL if s in ReportStatus.TRANSITIONS.get(report.status, ())
                ),
                is_sensitive=report.is_sensitive,
                province_name=_province_name(report.province_code),
                regency=report.regency,
                district=report.district,
                village=report.village,
                routed_to=report.routed_to,
                nik=nik,
                nik_revealed=reveal_nik,
                subject_name=text(report.subject_name) or None,
                subject_address=text(report.subject_address),
                description=text(report.description),
                reporter=mask_phone(reporter.address),
                reporter_channel=report.reporter_channel,
                attachments=tuple(
                    a.url for a in report.attachments if a.url.startswith(("https://", "http://"))
                ),
                history=[
                    ReportHistoryLine(e.at, e.event, e.from_status, e.to_status, e.actor, text(e.note))
                    for e in report.events
                ],
                created_at=report.created_at,
            )

    def change_status(
        self, viewer: StaffIdentity, reference: str, to_status: str, note: str, ip: str = ""
    ) -> None:
        """Move a report the viewer may see; ReportService tells the reporter."""
        with self.db.session() as session:
            report = self.open_in(session, viewer, reference)
            from_status = report.status
        self.reports.change_status(report.reference, to_status, viewer.username, note)
        self.audit.record(
            viewer, AuditAction.REPORT_STATUS, f"report:{report.reference}", f"{from_status}->{to_status}", ip
        )

    def export(
        self, viewer: StaffIdentity, filters: ReportFilters, include_nik: bool, ip: str = ""
    ) -> Iterator[str]:
        """The CSV export (bot.reports.service.export_lines) of every report the viewer may see.

        Exports are for supervisors: a whole region's personal data leaves the system.
        The refusal and the audit entry happen here, before the first line is read;
        the lines come lazily, so the caller streams an export of any size.
        """
        if not viewer.can_assign:
            raise AccessDenied("Ekspor hanya untuk supervisor dan admin.")
        lines = export_lines(self._visible(viewer, filters), include_nik)
        self.audit.record(
            viewer, AuditAction.EXPORT_REPORTS, "reports",
            filters.describe() + (" include_nik" if include_nik else ""), ip,
        )
        return lines
