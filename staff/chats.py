"""Escalated chats: the inbox, one chat's transcript and the work done on it.

The pages poll small JSON endpoints (staff/static/staff.js) so new messages appear
without a reload; the JSON carries text only and the script inserts it as text.

Reading a transcript is audited (UU PDP), and only the chat page is: its polling
serves lines newer than the ones that audited view showed, never the earlier ones.
The page hands its poller a signed token naming the viewer, the chat and the newest
line it served; the JSON refuses a request without one and never goes back before
it. Nothing is kept in process memory or the session, so it holds across web hosts
and in several tabs at once.
"""
from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import login_required
from itsdangerous import BadSignature, URLSafeTimedSerializer

from bot.channels.window import Way
from bot.conversation.models import Channel
from bot.handoff.models import HandoffStatus
from bot.handoff.service import ChatView, HandoffNotFound, HandoffRefused, InboxItem, TranscriptLine
from bot.handoff.staff_users import SESSION_LIFETIME, AccessDenied
from staff import bp
from staff.auth import client_ip, me, services
from staff.forms import ActionForm, AssignForm, CloseForm, ReplyForm
from staff.media import media_links
from staff.setup import duration, wib

CHANNEL_LABELS = {"sms": "SMS", "whatsapp": "WhatsApp"}
POLL_TOKEN_SALT = "staff.chat-poll"
# A page left open goes on updating for a working day; after that, a reload (and
# with it a new audit entry) is needed to keep reading.
POLL_TOKEN_MAX_AGE = int(SESSION_LIFETIME.total_seconds())


def _media(handoff_id: int, lines: list[TranscriptLine]) -> list[list[dict[str, str | None]]]:
    """Each line's attachments as labels and links to our copies, through this chat."""
    return media_links(
        (line.media for line in lines), lambda key: url_for("staff.chat_media", handoff_id=handoff_id, key=key)
    )


def _line_json(line: TranscriptLine, media: list[dict[str, str | None]]) -> dict[str, Any]:
    return {
        "id": line.id,
        "direction": line.direction,
        "author": line.author,
        "body": line.body,
        "media": media,
        "at": wib(line.at),
        "status": line.status,
        "error_code": line.error_code,
        "channel": CHANNEL_LABELS.get(line.channel, line.channel),
        "fell_back_to_sms": line.fell_back_to_sms,
        "via_template": line.via_template,
    }


def _item_json(item: InboxItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "url": url_for("staff.chat", handoff_id=item.id),
        "status": HandoffStatus.LABELS.get(item.status, item.status),
        "reason": item.reason_label,
        "urgent": item.urgent,
        "channel": CHANNEL_LABELS.get(item.channel, item.channel),
        "contact": item.contact,
        "region": item.region or "nasional",
        "assigned_to": item.assigned_to or "-",
        "waiting": duration(item.waiting_seconds) if item.waiting_seconds is not None else "dibalas",
        "last_text": item.last_text,
    }


def _reply_note(view: ChatView) -> tuple[str, str] | None:
    """(style, sentence): which way a reply goes now, as bot/channels/window.py decides it."""
    route = view.reply_route
    if route is None:
        return None
    if route.way == Way.NONE:
        return "error", f"Balasan tidak bisa dikirim: {route.reason}."
    if route.way == Way.TEMPLATE:
        return "warning", (
            "WhatsApp warga sudah lebih dari 24 jam tidak aktif: warga menerima WhatsApp template "
            "(ada balasan petugas), dan balasan Anda terkirim begitu warga membalas."
        )
    if route.way == Way.SMS:
        return "warning", (
            f"WhatsApp warga sudah lebih dari 24 jam tidak aktif: balasan akan dikirim lewat SMS "
            f"ke {view.contact} (maks. 3 SMS, tanpa emoji)."
        )
    if route.channel == Channel.SMS:
        return "hint", f"Dikirim lewat SMS ke {view.contact} (maks. 3 SMS, tanpa emoji)."
    return "hint", "Dikirim lewat WhatsApp (dalam 24 jam)."


def _poll_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=POLL_TOKEN_SALT)


def _poll_url(view: ChatView) -> str:
    """Where the page polls: signed with what this audited view served to this viewer."""
    seen = {"h": view.id, "s": me().id, "n": view.lines[-1].id if view.lines else 0}
    return url_for("staff.chat_messages", handoff_id=view.id, seen=_poll_signer().dumps(seen))


def _served_up_to(handoff_id: int) -> int:
    """The newest line the audited page view served this viewer; 403 without proof of one."""
    try:
        seen = _poll_signer().loads(request.args.get("seen", ""), max_age=POLL_TOKEN_MAX_AGE)
    except BadSignature:
        abort(403)
    if not isinstance(seen, dict) or seen.get("h") != handoff_id or seen.get("s") != me().id:
        abort(403)
    return int(seen.get("n", 0))


def _render_chat(view: ChatView) -> str:
    staff = services().directory.active_staff() if me().can_assign else []
    assign_form = AssignForm()
    assign_form.assignee.choices = [(person.id, f"{person.display_name} ({person.role})") for person in staff]
    return render_template(
        "staff/chat.html",
        chat=view,
        reply_note=_reply_note(view),
        media=dict(zip((line.id for line in view.lines), _media(view.id, view.lines))),
        poll_url=_poll_url(view),
        reply_form=ReplyForm(),
        assign_form=assign_form,
        close_form=CloseForm(),
        action_form=ActionForm(),
        channel_labels=CHANNEL_LABELS,
        status_labels=HandoffStatus.LABELS,
    )


def _chat_or_error(handoff_id: int, reveal_nik: bool = False) -> ChatView:
    try:
        return services().desk.chat(me(), handoff_id, reveal_nik=reveal_nik, ip=client_ip())
    except HandoffNotFound:
        abort(404)
    except AccessDenied:
        abort(403)


@bp.get("/")
@login_required
def home() -> Any:
    return redirect(url_for("staff.inbox"))


@bp.get("/chats")
@login_required
def inbox() -> str:
    items = services().desk.inbox(me())
    return render_template(
        "staff/inbox.html", items=[_item_json(item) for item in items]
    )


@bp.get("/chats.json")
@login_required
def inbox_json() -> Any:
    return jsonify(items=[_item_json(item) for item in services().desk.inbox(me())])


@bp.get("/chats/<int:handoff_id>")
@login_required
def chat(handoff_id: int) -> str:
    return _render_chat(_chat_or_error(handoff_id))


@bp.post("/chats/<int:handoff_id>/reveal")
@login_required
def chat_reveal(handoff_id: int) -> str:
    if not me().can_reveal_nik:
        abort(403)
    return _render_chat(_chat_or_error(handoff_id, reveal_nik=True))


@bp.get("/chats/<int:handoff_id>/messages.json")
@login_required
def chat_messages(handoff_id: int) -> Any:
    """Lines newer than both `after` and the audited page view the token vouches for."""
    floor = _served_up_to(handoff_id)
    after = request.args.get("after", "0")
    try:
        status, lines = services().desk.lines_after(me(), handoff_id, max(floor, int(after) if after.isdigit() else 0))
    except HandoffNotFound:
        abort(404)
    except AccessDenied:
        abort(403)
    return jsonify(
        status=status,
        status_label=HandoffStatus.LABELS.get(status, status),
        messages=[_line_json(line, media) for line, media in zip(lines, _media(handoff_id, lines))],
    )


def _act(handoff_id: int, action: Any, done: str) -> Any:
    """Run one desk action and come back to the chat with what happened."""
    try:
        action()
    except HandoffNotFound:
        abort(404)
    except AccessDenied as exc:
        flash(str(exc), "error")
    except HandoffRefused as exc:
        flash(str(exc), "error")
    else:
        flash(done, "info")
    return redirect(url_for("staff.chat", handoff_id=handoff_id))


@bp.post("/chats/<int:handoff_id>/claim")
@login_required
def chat_claim(handoff_id: int) -> Any:
    return _act(handoff_id, lambda: services().desk.claim(me(), handoff_id, client_ip()), "Percakapan Anda ambil.")


@bp.post("/chats/<int:handoff_id>/assign")
@login_required
def chat_assign(handoff_id: int) -> Any:
    form = AssignForm()
    form.assignee.choices = [(person.id, person.display_name) for person in services().directory.active_staff()]
    if not form.validate_on_submit():
        flash("Pilih petugas.", "error")
        return redirect(url_for("staff.chat", handoff_id=handoff_id))
    return _act(
        handoff_id,
        lambda: services().desk.assign(me(), handoff_id, form.assignee.data, client_ip()),
        "Percakapan sudah ditugaskan.",
    )


@bp.post("/chats/<int:handoff_id>/reply")
@login_required
def chat_reply(handoff_id: int) -> Any:
    form = ReplyForm()
    if not form.validate_on_submit():
        flash("Balasan kosong atau terlalu panjang.", "error")
        return redirect(url_for("staff.chat", handoff_id=handoff_id))
    try:
        result = services().desk.reply(me(), handoff_id, form.body.data, client_ip())
    except HandoffNotFound:
        abort(404)
    except (AccessDenied, HandoffRefused) as exc:
        flash(str(exc), "error")
        return redirect(url_for("staff.chat", handoff_id=handoff_id))
    if result.opted_out:
        flash(
            "Balasan tidak terkirim: warga sudah mengirim STOP. Balasan baru bisa terkirim "
            "setelah warga mengirim MULAI.",
            "error",
        )
        return redirect(url_for("staff.chat", handoff_id=handoff_id))
    if result.fell_back_to_sms:
        flash(
            "WhatsApp warga sudah lebih dari 24 jam tidak aktif, jadi balasan dikirim lewat SMS.",
            "warning",
        )
    if result.held:
        flash(
            "WhatsApp warga sudah lebih dari 24 jam tidak aktif: warga diberi tahu lewat WhatsApp "
            "template, dan balasan Anda terkirim begitu warga membalas.",
            "warning",
        )
        return redirect(url_for("staff.chat", handoff_id=handoff_id))
    if result.delivered_to_provider:
        flash(f"Balasan terkirim lewat {CHANNEL_LABELS.get(result.channel, result.channel)}.", "info")
    else:
        flash(f"Balasan gagal dikirim (kode {result.error_code or '-'}). Coba lagi nanti.", "error")
    return redirect(url_for("staff.chat", handoff_id=handoff_id))


@bp.post("/chats/<int:handoff_id>/hand-back")
@login_required
def chat_hand_back(handoff_id: int) -> Any:
    """Hand back, and say whether the citizen was told (not after STOP, nor on a failed send)."""
    try:
        told = services().desk.hand_back(me(), handoff_id, client_ip())
    except HandoffNotFound:
        abort(404)
    except (AccessDenied, HandoffRefused) as exc:
        flash(str(exc), "error")
    else:
        if told:
            flash("Percakapan dikembalikan ke bot; warga sudah diberi tahu.", "info")
        else:
            flash(
                "Percakapan dikembalikan ke bot, tetapi pemberitahuan ke warga tidak terkirim "
                "(lihat pesan terakhir).",
                "warning",
            )
    return redirect(url_for("staff.chat", handoff_id=handoff_id))


@bp.post("/chats/<int:handoff_id>/close")
@login_required
def chat_close(handoff_id: int) -> Any:
    form = CloseForm()
    if not form.validate_on_submit():
        flash("Pilih hasil penanganan.", "error")
        return redirect(url_for("staff.chat", handoff_id=handoff_id))
    return _act(
        handoff_id,
        lambda: services().desk.close(me(), handoff_id, form.outcome.data, form.note.data or "", client_ip()),
        "Percakapan ditutup.",
    )
