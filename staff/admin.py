"""Supervisor figures and the admin pages: staff accounts, data imports and the audit log."""
from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from bot.handoff.audit import AuditAction
from bot.registry.importer import ImportFileError
from bot.reports.models import ReportKind, ReportStatus
from bot.handoff.staff_models import StaffRole
from bot.handoff.staff_users import InvalidStaffUser, check_phone
from staff import bp
from staff.auth import client_ip, me, require, services
from staff.forms import ROLE_LABELS, ActionForm, ImportForm, PasswordForm, UserCreateForm, UserEditForm


@bp.get("/overview")
@require(StaffRole.SUPERVISOR)
def overview() -> str:
    return render_template(
        "staff/overview.html",
        figures=services().figures(me()),
        kinds=ReportKind.ALL,
        statuses=ReportStatus.ALL,
        kind_labels=ReportKind.LABELS,
        status_labels=ReportStatus.LABELS,
    )


@bp.route("/admin/users", methods=["GET", "POST"])
@require(StaffRole.ADMIN)
def admin_users() -> Any:
    form = UserCreateForm()
    if form.validate_on_submit():
        try:
            services().directory.create_user(
                form.username.data, form.password.data, form.role.data, form.full_name.data,
                form.region.data, actor=me(), ip=client_ip(),
            )
        except InvalidStaffUser as exc:
            flash(str(exc), "error")
        else:
            flash(f"Akun {form.username.data.strip().lower()} dibuat.", "info")
            return redirect(url_for("staff.admin_users"))
    elif request.method == "POST":
        flash("Periksa isian: kata sandi minimal 10 karakter.", "error")
    return render_template(
        "staff/users.html", users=services().directory.list_users(), form=form, role_labels=ROLE_LABELS
    )


@bp.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
@require(StaffRole.ADMIN)
def admin_user(user_id: int) -> Any:
    user = services().directory.get_user(user_id)
    if user is None:
        abort(404)
    form = UserEditForm(obj=user) if request.method == "GET" else UserEditForm()
    if form.validate_on_submit():
        try:
            # The number is checked first, so a bad one leaves role, region and status unchanged too.
            check_phone(form.phone.data)
            services().directory.update_user(
                user_id, form.role.data, form.region.data, bool(form.active.data), me(), client_ip()
            )
            services().directory.set_phone(user_id, form.phone.data, me(), client_ip())
        except InvalidStaffUser as exc:
            flash(str(exc), "error")
        else:
            flash("Akun diperbarui.", "info")
        return redirect(url_for("staff.admin_user", user_id=user_id))
    return render_template(
        "staff/user.html", user=user, form=form, password_form=PasswordForm(), action_form=ActionForm(),
        role_labels=ROLE_LABELS,
    )


@bp.post("/admin/users/<int:user_id>/password")
@require(StaffRole.ADMIN)
def admin_user_password(user_id: int) -> Any:
    form = PasswordForm()
    if not form.validate_on_submit():
        flash("Kata sandi minimal 10 karakter dan kedua isian harus sama.", "error")
    else:
        try:
            services().directory.set_password(user_id, form.password.data, me(), client_ip())
        except InvalidStaffUser as exc:
            flash(str(exc), "error")
        else:
            flash("Kata sandi diganti; sesi lama akun itu berakhir.", "info")
    return redirect(url_for("staff.admin_user", user_id=user_id))


@bp.post("/admin/users/<int:user_id>/unlock")
@require(StaffRole.ADMIN)
def admin_user_unlock(user_id: int) -> Any:
    try:
        services().directory.unlock(user_id, me(), client_ip())
    except InvalidStaffUser:
        abort(404)
    flash("Kunci akun dibuka.", "info")
    return redirect(url_for("staff.admin_user", user_id=user_id))


@bp.route("/admin/import", methods=["GET", "POST"])
@require(StaffRole.ADMIN)
def admin_import() -> Any:
    form = ImportForm()
    report = None
    if form.validate_on_submit():
        upload = form.file.data
        try:
            report = services().import_csv(me(), form.kind.data, upload.stream, upload.filename or "", client_ip())
        except ImportFileError as exc:
            flash(f"Berkas tidak dapat diimpor: {exc}", "error")
    return render_template("staff/import.html", form=form, report=report)


@bp.get("/admin/audit")
@require(StaffRole.ADMIN)
def admin_audit() -> str:
    page_arg = request.args.get("page", "1")
    action = request.args.get("action") or None
    actor = request.args.get("actor") or None
    target = request.args.get("target") or None
    services().audit.record(me(), AuditAction.VIEW_AUDIT, "audit", f"page={page_arg[:8]}", client_ip())
    page = services().audit.page(
        page=int(page_arg) if page_arg.isdigit() else 1,
        action=action if action in AuditAction.ALL else None,
        actor=actor,
        target=target,
    )
    return render_template(
        "staff/audit.html", page=page, actions=AuditAction.ALL, action=action, actor=actor or "", target=target or ""
    )
