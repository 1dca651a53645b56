"""Citizens' photos and PDFs, served from our media store through the page they belong to.

The officer's browser never goes to Twilio (whose links ask for the account's
password); it gets our copy, only through a chat or report page the officer may
open (bot/media/staff.py decides and audits), with headers that keep it from being
read as anything else, cached on the way, or run as a page.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Optional

from flask import Response, abort, send_file
from flask_login import login_required

from bot.handoff.service import HandoffNotFound
from bot.handoff.staff_users import AccessDenied
from bot.media.models import MediaStatus
from bot.media.staff import MediaFile, MediaNotFound
from bot.reports.service import ReportNotFound
from staff import bp
from staff.auth import client_ip, me, services


# What a page says of an attachment it has no copy of (yet).
_NOTES = {
    MediaStatus.PENDING: "sedang diambil",
    MediaStatus.REFUSED: "ditolak: bukan foto/PDF atau terlalu besar",
}
_NO_COPY = "tidak tersedia"


def media_links(
    pages_urls: Iterable[Sequence[str]], link: Callable[[str], str]
) -> list[list[dict[str, Optional[str]]]]:
    """For each list of provider URLs a page shows: a label and our link (None without a copy).

    `link(key)` is the route of the page the files belong to.
    """
    pages_urls = [list(urls) for urls in pages_urls]
    refs = services().media.refs(url for urls in pages_urls for url in urls)
    pages = []
    for urls in pages_urls:
        links: list[dict[str, Optional[str]]] = []
        for index, url in enumerate(urls, start=1):
            ref = refs.get(url)
            if ref is not None and ref.key is not None:
                kind = "foto" if ref.is_image else "PDF"
                links.append({"label": f"Lampiran {index} ({kind})", "url": link(ref.key)})
            else:
                note = _NOTES.get(ref.status, _NO_COPY) if ref is not None else _NO_COPY
                links.append({"label": f"Lampiran {index} ({note})", "url": None})
        pages.append(links)
    return pages


def _send(file: MediaFile) -> Response:
    # Photos show in the page; a PDF is downloaded, never opened as a page of ours.
    response = send_file(
        file.stream,
        mimetype=file.content_type,
        as_attachment=not file.is_image,
        download_name=file.filename,
        conditional=False,
        etag=False,
        max_age=0,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.get("/chats/<int:handoff_id>/media/<key>")
@login_required
def chat_media(handoff_id: int, key: str) -> Response:
    try:
        return _send(services().media.for_chat(me(), handoff_id, key, client_ip()))
    except (HandoffNotFound, MediaNotFound):
        abort(404)
    except AccessDenied:
        abort(403)


@bp.get("/reports/<reference>/media/<key>")
@login_required
def report_media(reference: str, key: str) -> Response:
    try:
        return _send(services().media.for_report(me(), reference, key, client_ip()))
    except (ReportNotFound, MediaNotFound):
        abort(404)
    except AccessDenied:
        abort(403)
