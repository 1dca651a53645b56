"""Reports: the filtered list, one report with its history, status changes and CSV export."""
from __future__ import annotations

from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required

from bot.conversation.models import utcnow
from bot.rules.regions import PROVINCES
from bot.reports.service import ReportNotFound, StatusChangeNotAllowed
from bot.reports.models import ReportKind, ReportStatus
from bot.handoff.staff_models import StaffRole
from bot.reports.staff_view import ReportDetail, ReportFilters
from bot.handoff.staff_users import AccessDenied
from staff import bp
from staff.auth import client_ip, me, require, services
from staff.forms import ActionForm, ExportForm, StatusForm
from staff.media import media_links

def _filters(args: Any) -> ReportFilters:
    """Filters from the query string; anything unknown is ignored rather than an error."""
    sensitive = {"ya": True, "tidak": False}.get(args.get("sensitive", ""))
    kind, status, province = args.get("kind"), args.get("status"), args.get("province")
    return ReportFilters(
        kind=kind if kind in ReportKind.ALL else None,
        status=status if status in ReportStatus.ALL else None,
        province=province if province in PROVINCES else None,
        sensitive=sensitive,
    )


def _page(detail: ReportDetail) -> str:
    form = StatusForm()
    form.status.choices = [(s, ReportStatus.LABELS[s]) for s in detail.next_statuses]
    return render_template(
        "staff/report.html",
        report=detail,
        attachments=media_links(
            [detail.attachments], lambda key: url_for("staff.report_media", reference=detail.reference, key=key)
        )[0],
        status_form=form,
        action_form=ActionForm(),
        kind_labels=ReportKind.LABELS,
        status_labels=ReportStatus.LABELS,
    )


def _detail_or_error(reference: str, reveal_nik: bool = False) -> ReportDetail:
    try:
        return services().reports.detail(me(), reference, reveal_nik=reveal_nik, ip=client_ip())
    except ReportNotFound:
        abort(404)
    except AccessDenied:
        abort(403)


@bp.get("/reports")
@login_required
def reports_list() -> str:
    filters = _filters(request.args)
    return render_template(
        "staff/reports.html",
        rows=services().reports.list(me(), filters),
        filters=filters,
        provinces=sorted(PROVINCES.values(), key=lambda p: p.name),
        kind_labels=ReportKind.LABELS,
        status_labels=ReportStatus.LABELS,
        export_form=ExportForm(),
        can_export=me().can(StaffRole.SUPERVISOR),
        query=request.query_string.decode("ascii", "ignore"),
    )


@bp.get("/reports/<reference>")
@login_required
def report_detail(reference: str) -> str:
    return _page(_detail_or_error(reference))


@bp.post("/reports/<reference>/reveal")
@require(StaffRole.SUPERVISOR)
def report_reveal(reference: str) -> str:
    return _page(_detail_or_error(reference, reveal_nik=True))


@bp.post("/reports/<reference>/status")
@login_required
def report_status(reference: str) -> Any:
    form = StatusForm()
    form.status.choices = [(s, s) for s in ReportStatus.ALL]
    note = (form.note.data or "").strip()
    if not form.validate_on_submit():
        flash("Pilih status baru.", "error")
    elif form.status.data == ReportStatus.DITOLAK and not note:
        flash("Penolakan wajib disertai catatan alasan untuk pelapor.", "error")
    else:
        try:
            services().reports.change_status(me(), reference, form.status.data, note, client_ip())
        except ReportNotFound:
            abort(404)
        except AccessDenied:
            abort(403)
        except StatusChangeNotAllowed:
            flash("Perubahan status ini tidak diperbolehkan dari status sekarang.", "error")
        else:
            flash("Status diubah; pelapor sudah diberi tahu.", "info")
    return redirect(url_for("staff.report_detail", reference=reference))


@bp.post("/reports/export.csv")
@require(StaffRole.SUPERVISOR)
def reports_export() -> Response:
    form = ExportForm()
    if not form.validate_on_submit():
        abort(400)
    # A generator body makes Werkzeug stream the file as it is read, batch by batch,
    # however many reports there are.
    lines = services().reports.export(me(), _filters(request.args), bool(form.include_nik.data), client_ip())
    filename = f"laporan-{utcnow():%Y%m%d-%H%M}.csv"
    return Response(
        lines,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
