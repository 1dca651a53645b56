"""Conversation exports for supervisors: one chat's whole conversation, or a region's in a period.

The CSV comes from bot.handoff.conversation_export, which refuses agents and audits
every export before its first line; a generator body makes Werkzeug stream it, batch
by batch, however many messages there are.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Response, abort, render_template

from bot.conversation.models import utcnow
from bot.handoff.conversation_export import InvalidExport, Period
from bot.handoff.service import HandoffNotFound
from bot.handoff.staff_models import StaffRole
from bot.handoff.staff_users import AccessDenied
from bot.rules.regions import PROVINCES
from staff import bp
from staff.auth import client_ip, me, require, services
from staff.forms import ConversationExportForm, ExportForm


def _csv(lines: Iterator[str], name: str) -> Response:
    filename = f"{name}-{utcnow():%Y%m%d-%H%M}.csv"
    return Response(
        lines, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


def _form() -> ConversationExportForm:
    form = ConversationExportForm()
    provinces = sorted(PROVINCES.values(), key=lambda p: p.name)
    form.province.choices = [("", "semua")] + [(p.code, p.name) for p in provinces]
    return form


def _page(form: ConversationExportForm, error: str = "") -> str:
    return render_template("staff/conversations_export.html", form=form, error=error)


@bp.get("/conversations/export")
@require(StaffRole.SUPERVISOR)
def conversations_export_form() -> str:
    return _page(_form())


@bp.post("/conversations/export.csv")
@require(StaffRole.SUPERVISOR)
def conversations_export() -> Any:
    """Bad input comes back on the form, as typed, with what to correct."""
    form = _form()
    if not form.validate_on_submit():
        return _page(form), 400
    province, regency = form.province.data or "", (form.regency.data or "").strip()
    if regency and province and not regency.startswith(province):
        return _page(form, "Kode kabupaten/kota tidak berada di provinsi yang dipilih."), 400
    try:
        lines = services().conversation_export.for_region(
            me(), regency or province or None, Period(form.first.data, form.last.data),
            bool(form.include_nik.data), client_ip(),
        )
    except InvalidExport as exc:
        return _page(form, str(exc)), 400
    except AccessDenied:
        abort(403)
    return _csv(lines, "percakapan")


@bp.post("/chats/<int:handoff_id>/export.csv")
@require(StaffRole.SUPERVISOR)
def chat_export(handoff_id: int) -> Response:
    form = ExportForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        lines = services().conversation_export.for_chat(me(), handoff_id, bool(form.include_nik.data), client_ip())
    except HandoffNotFound:
        abort(404)
    except AccessDenied:
        abort(403)
    return _csv(lines, f"percakapan-{handoff_id}")
