"""Citizens' photos and PDFs kept by us: through the signed webhook and the local fake
Twilio API, a media item is downloaded with the account's credentials, checked,
stored, deleted at Twilio, and served only to the officers who may see its chat or
report; a wrong type or too big a file is refused with a reply; an unreachable Twilio
is tried again later; `bansos purge` takes the files with the chat."""
from __future__ import annotations

import hashlib
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select, text, update

from app import create_app
from scripts.run_scaled import scaled_environment
from bot.config import Settings
from bot.conversation import replies
from bot.conversation.models import Contact, Message, utcnow
from bot.conversation.retention import purge_chats
from bot.conversation.retention_cli import purge
from bot.db import Database
from bot.handoff.models import Handoff
from bot.handoff.staff_models import AuditEntry
from bot.media.checks import MediaRefused, checked_type
from bot.media.intake import Download, MediaIntake, record_media, size_label
from bot.rules.smstext import format_for_channel
from bot.media.models import MediaContent, MediaItem, MediaRefusal, MediaStatus
from bot.media.store import DatabaseMediaStore, LocalMediaStore, MediaMissing, make_media_store
from bot.registry.models import Recipient
from bot.reports.models import ComplaintCategory, ReportKind
from bot.reports.service import ReportDraft
from bot.services import Services
from tools.fake_twilio import FakeTwilioApi
from tests.support.staff import make_staff, signed_in
from tests.support.twilio import SERVICE_NUMBER, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioSigner, whatsapp_form

MESSAGES = "/webhooks/twilio/messages"
PHONE = "+6281234567890"
NIK = "7371014501900003"
MAX_BYTES = 4096
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 500 + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x02" * 300
PDF = b"%PDF-1.4\n" + b"3" * 300 + b"\n%%EOF"


@pytest.fixture
def app(db: Database, twilio_api: FakeTwilioApi, rasa: Any, tmp_path: Path) -> Flask:
    """The app with Twilio credentials, its REST API the local fake, its media under tmp_path."""
    return create_app(host_config(db, twilio_api, rasa, tmp_path / "media"))


def host_config(db: Database, twilio_api: FakeTwilioApi, rasa: Any, media_dir: Path, **settings: Any) -> dict[str, Any]:
    """One host's settings; `settings` overrides them (MEDIA_STORE, for one)."""
    return {
        "database_url": db.url,
        "rasa_url": rasa.url,
        "rasa_timeout": 2.0,
        "twilio_auth_token": TEST_AUTH_TOKEN,
        "twilio_account_sid": TEST_ACCOUNT_SID,
        "twilio_sms_from": SERVICE_NUMBER,
        "twilio_whatsapp_from": SERVICE_NUMBER,
        "twilio_api_base": twilio_api.url,  # type: ignore[attr-defined]
        "twilio_http_timeout": 5.0,
        "public_base_url": "",
        "replay_wait_seconds": 2.0,
        "media_dir": str(media_dir),
        "media_max_bytes": MAX_BYTES,
        **settings,
    }


def services(app: Flask) -> Services:
    return app.extensions["bansos"]


def send(app: Flask, text: str, media: list[tuple[str, str]] | None = None, phone: str = PHONE) -> list[str]:
    """A signed WhatsApp message from the citizen; the TwiML answer's texts."""
    form = whatsapp_form(phone, text, media)
    response = TwilioSigner(TEST_AUTH_TOKEN).post(app.test_client(), MESSAGES, form)
    assert response.status_code == 200
    return [(m.text or "") for m in ET.fromstring(response.data).iter("Message")]


def media_url(twilio_api: FakeTwilioApi, content: bytes, content_type: str) -> str:
    return twilio_api.url + twilio_api.media.add(content, content_type)  # type: ignore[attr-defined]


def items(db: Database) -> list[MediaItem]:
    with db.session() as session:
        return list(session.scalars(select(MediaItem).order_by(MediaItem.id)))


def wait_for(db: Database, done: Callable[[list[MediaItem]], bool], seconds: float = 10.0) -> list[MediaItem]:
    """The media rows once `done` holds for them (the webhook fetches in the background)."""
    deadline = time.monotonic() + seconds
    while True:
        found = items(db)
        if found and done(found):
            return found
        assert time.monotonic() < deadline, f"media never settled: {[(i.status, i.last_error) for i in found]}"
        time.sleep(0.05)


def settled(found: list[MediaItem]) -> bool:
    return all(item.next_attempt_at is None for item in found)


def audit(db: Database) -> list[tuple[str, str, str, str]]:
    with db.session() as session:
        return [(e.actor, e.action, e.target, e.detail) for e in session.scalars(select(AuditEntry))]


def register_citizen(db: Database) -> None:
    """The citizen's household is registered in Makassar (7371), so their chats go there."""
    with db.session() as session:
        session.add(Recipient(nik=NIK, name="Siti", birth_date=date(1990, 1, 5), phone=PHONE, province_code="73"))


# ---- end to end through the webhook --------------------------------------------------


def test_a_photo_in_a_chat_is_kept_served_to_its_region_and_deleted_at_twilio(
    app: Flask, db: Database, twilio_api: FakeTwilioApi, tmp_path: Path
) -> None:
    register_citizen(db)
    send(app, "PETUGAS")
    url = media_url(twilio_api, JPEG, "image/jpeg")
    send(app, "ini foto kartu KKS saya", [(url, "image/jpeg")])

    [item] = wait_for(db, settled)
    assert (item.status, item.content_type, item.size) == (MediaStatus.STORED, "image/jpeg", len(JPEG))
    assert item.sha256 == hashlib.sha256(JPEG).hexdigest()
    assert (tmp_path / "media" / item.key[:2] / item.key).read_bytes() == JPEG
    media_sid = url.rsplit("/", 1)[1]
    assert twilio_api.media.deleted == [media_sid]
    assert requests.get(url, auth=(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN), timeout=5).status_code == 404

    with db.session() as session:
        hid = session.scalars(select(Handoff.id)).one()
    make_staff(app, "makassar", region="7371")
    make_staff(app, "bandung", region="32")
    officer = signed_in(app, "makassar")
    page = officer.get(f"/staff/chats/{hid}").get_data(as_text=True)
    ours = f"/staff/chats/{hid}/media/{item.key}"
    assert ours in page and twilio_api.url not in page  # type: ignore[attr-defined]

    served = officer.get(ours)
    assert served.status_code == 200 and served.data == JPEG
    assert served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in served.headers["Cache-Control"]
    assert served.headers["Content-Disposition"].startswith("inline")
    assert ("makassar", "view_media", f"handoff:{hid}", f"media:{item.key}") in audit(db)

    other = signed_in(app, "bandung")
    assert other.get(ours).status_code == 403
    assert not [entry for entry in audit(db) if entry[:2] == ("bandung", "view_media")]
    assert officer.get(f"/staff/chats/{hid}/media/{'0' * 32}").status_code == 404

    # A photo arriving while the page is open reaches it by polling, as a link to our copy.
    poll = unescape(re.search(r'data-poll-url="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    send(app, "", [(media_url(twilio_api, PNG, "image/png"), "image/png")])
    newer = wait_for(db, lambda found: len(found) == 2 and settled(found))[1]
    [line] = [m for m in officer.get(poll).json["messages"] if m["media"]]
    assert line["media"] == [{"label": "Lampiran 1 (foto)", "url": f"/staff/chats/{hid}/media/{newer.key}"}]
    # A file is served only through the chat it belongs to, even to a supervisor who sees all.
    send(app, "PETUGAS", phone="+6281299990000")
    with db.session() as session:
        another = session.scalars(select(Handoff.id).where(Handoff.id != hid)).one()
    make_staff(app, "sri", role="supervisor")
    supervisor = signed_in(app, "sri")
    assert supervisor.get(ours).status_code == 200
    assert supervisor.get(f"/staff/chats/{another}/media/{item.key}").status_code == 404
    assert officer.get(f"/staff/chats/{hid}/media/..%2F..%2Fbansos.db").status_code == 404


def test_report_evidence_is_served_for_the_report_and_outlives_the_chat(
    app: Flask, db: Database, twilio_api: FakeTwilioApi, tmp_path: Path
) -> None:
    url = media_url(twilio_api, PDF, "application/pdf")
    send(app, "bukti pembayaran", [(url, "application/pdf")])
    [item] = wait_for(db, settled)
    assert (item.status, item.content_type) == (MediaStatus.STORED, "application/pdf")
    # What the report form does with the message (actions/reports.py): its media become evidence.
    with db.session() as session:
        contact = session.scalars(select(Contact)).one()
        message_id = session.scalars(select(Message.id).where(Message.direction == "in")).one()
    report_service = services(app).reports
    evidence = report_service.media_of_message(contact.conversation_key, message_id)
    created = report_service.create(ReportDraft(
        kind=ReportKind.PENGADUAN,
        reporter_contact_id=contact.id,
        category=ComplaintCategory.DANA_BELUM_DITERIMA,
        description="Dana belum diterima sejak tahap 3.",
        province_code="32",
        attachments=evidence,
    ))
    make_staff(app, "bandung", region="32")
    make_staff(app, "makassar", region="7371")
    officer = signed_in(app, "bandung")
    ours = f"/staff/reports/{created.reference}/media/{item.key}"
    assert ours in officer.get(f"/staff/reports/{created.reference}").get_data(as_text=True)
    served = officer.get(ours)
    assert served.status_code == 200 and served.data == PDF
    assert served.headers["Content-Disposition"].startswith("attachment")
    assert ("bandung", "view_media", f"report:{created.reference}", f"media:{item.key}") in audit(db)
    assert signed_in(app, "makassar").get(ours).status_code == 403

    store = LocalMediaStore(tmp_path / "media")
    purged = purge_chats(db, retention_days=1, now=utcnow() + timedelta(days=2), media_store=store)
    assert purged.messages >= 1 and purged.media_files == 0
    # The purge ended the officer's sign-in too (it had expired by then): sign in again.
    assert signed_in(app, "bandung").get(ours).data == PDF, "a report keeps its evidence when the chat goes"


def test_purge_deletes_the_stored_files_with_the_chat(
    app: Flask, db: Database, twilio_api: FakeTwilioApi, tmp_path: Path
) -> None:
    send(app, "foto rumah", [(media_url(twilio_api, PNG, "image/png"), "image/png")])
    [item] = wait_for(db, settled)
    store = LocalMediaStore(tmp_path / "media")
    later = utcnow() + timedelta(days=2)
    assert purge_chats(db, retention_days=1, now=later, dry_run=True, media_store=store).media_files == 1
    assert store.open(item.key).read() == PNG
    assert purge_chats(db, retention_days=1, now=later, media_store=store).media_files == 1
    assert items(db) == []
    with pytest.raises(MediaMissing):
        store.open(item.key)


def test_with_the_database_store_another_host_serves_the_photo_and_purge_deletes_it(
    db: Database, twilio_api: FakeTwilioApi, rasa: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two hosts (MEDIA_STORE=database), each with its own disk: host A fetches the
    photo, host B serves it to the officer, and `bansos purge` deletes it from any host."""
    a, b = (
        create_app(host_config(db, twilio_api, rasa, tmp_path / host, media_store="database"))
        for host in ("a", "b")
    )
    try:
        register_citizen(db)
        send(a, "PETUGAS")
        send(a, "ini foto kartu KKS saya", [(media_url(twilio_api, JPEG, "image/jpeg"), "image/jpeg")])
        [item] = wait_for(db, settled)
        assert item.status == MediaStatus.STORED
        assert not any(tmp_path.rglob(item.key)), "no host keeps the copy on its own disk"
        with db.session() as session:
            hid = session.scalars(select(Handoff.id)).one()
        make_staff(b, "makassar", region="7371")
        served = signed_in(b, "makassar").get(f"/staff/chats/{hid}/media/{item.key}")
        assert served.status_code == 200 and served.data == JPEG

        with db.session() as session:
            session.execute(update(Message).values(created_at=utcnow() - timedelta(days=3)))
        monkeypatch.setenv("DATABASE_URL", db.url)
        monkeypatch.setenv("MEDIA_STORE", "database")
        result = CliRunner().invoke(purge, ["--days", "1"])
        assert result.exit_code == 0, result.output
        assert "1 stored photos/PDFs" in result.output
        with db.session() as session:
            assert session.scalars(select(MediaContent.key)).all() == []
        assert items(db) == []
    finally:
        for host in (a, b):
            services(host).db.dispose()


@pytest.mark.parametrize(
    ("declared", "content", "hide_length", "reply"),
    [
        ("video/mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100, False, replies.MEDIA_WRONG_TYPE),
        ("image/jpeg", b"MZ\x90\x00 not a photo" + b"\x00" * 100, False, replies.MEDIA_WRONG_TYPE),
        ("image/jpeg", JPEG + b"\x00" * MAX_BYTES, False, replies.MEDIA_TOO_BIG),
        ("image/jpeg", JPEG + b"\x00" * MAX_BYTES, True, replies.MEDIA_TOO_BIG),
    ],
    ids=["video", "not-an-image", "too-big", "too-big-without-length"],
)
def test_a_refused_attachment_gets_a_clear_reply_and_the_text_is_still_answered(
    app: Flask, db: Database, twilio_api: FakeTwilioApi, rasa: Any, tmp_path: Path,
    declared: str, content: bytes, hide_length: bool, reply: str,
) -> None:
    twilio_api.media.hide_length = hide_length
    url = media_url(twilio_api, content, declared)
    answer = send(app, "ini buktinya", [(url, declared)])
    assert answer == ["Halo, ada yang bisa dibantu?"]
    assert [turn["message"] for turn in rasa.received] == ["ini buktinya"]

    [item] = wait_for(db, settled)
    expected = MediaRefusal.TOO_BIG if reply == replies.MEDIA_TOO_BIG else MediaRefusal.WRONG_TYPE
    assert (item.status, item.refusal) == (MediaStatus.REFUSED, expected)
    assert [m["body"] for m in twilio_api.sent] == [reply.format(limit=size_label(MAX_BYTES))]
    assert twilio_api.sent[0]["to"] == f"whatsapp:{PHONE}"
    assert twilio_api.media.deleted == [url.rsplit("/", 1)[1]], "a refused file is not left at Twilio either"
    assert not (tmp_path / "media").exists() or not any((tmp_path / "media").rglob("*"))


def test_two_refused_attachments_of_one_message_get_one_reply(app: Flask, db: Database, twilio_api: FakeTwilioApi) -> None:
    send(app, "", [(media_url(twilio_api, b"x" * 50, "video/mp4"), "video/mp4"),
                   (media_url(twilio_api, b"y" * 50, "audio/ogg"), "audio/ogg")])
    found = wait_for(db, lambda found: len(found) == 2 and settled(found))
    assert [item.status for item in found] == [MediaStatus.REFUSED, MediaStatus.REFUSED]
    assert len(twilio_api.sent) == 1


class _HeldDownloads:
    """A provider whose downloads all wait until the test lets them go, then serve a video."""

    def __init__(self, workers: int) -> None:
        self.arrived = threading.Barrier(workers + 1)
        self.go = threading.Event()

    def download(self, url: str, max_bytes: int) -> Download:
        self.arrived.wait(10)
        assert self.go.wait(10)
        return Download(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100, "video/mp4")

    def discard(self, url: str) -> None:
        return None


def test_two_workers_refusing_two_items_of_one_message_at_once_reply_once(
    db: Database, twilio_api: FakeTwilioApi, rasa: Any, tmp_path: Path
) -> None:
    """Two hosts' workers refuse a message's two items at the same moment: one reply."""
    if not db.is_postgres:
        pytest.skip("SQLite lets one writer in at a time: the race needs PostgreSQL")
    app = create_app(host_config(db, twilio_api, rasa, tmp_path / "media"))
    try:
        with db.session() as session:
            contact = Contact(address=PHONE)
            session.add(contact)
            session.flush()
            message = Message(contact_id=contact.id, direction="in", channel="whatsapp", provider="twilio", status="received")
            session.add(message)
            session.flush()
            urls = [f"{twilio_api.url}/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Messages/MM{'a' * 32}/Media/ME{n * 32}"  # type: ignore[attr-defined]
                    for n in "bc"]
            record_media(session, message.id, [{"url": url, "content_type": "image/jpeg"} for url in urls], utcnow())
            message_id = message.id
        source = _HeldDownloads(workers=2)
        hosts = [MediaIntake(db, LocalMediaStore(tmp_path / "media"), source, services(app).outbox, services(app).settings)
                 for _ in range(2)]
        workers = [threading.Thread(target=host.run_due) for host in hosts]
        for worker in workers:
            worker.start()
        source.arrived.wait(10)
        # Both items are claimed and downloaded; hold their rows so that both refusals
        # are written at the same moment, as two hosts' would be.
        with db.session() as holder:
            holder.execute(select(MediaItem.id).with_for_update())
            source.go.set()
            deadline = time.monotonic() + 10
            while holder.scalar(text(
                "SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted AND pg_backend_pid() = ANY(pg_blocking_pids(pid))"
            )) < 2:
                assert time.monotonic() < deadline, "the workers never reached the refusal"
                time.sleep(0.05)
        for worker in workers:
            worker.join(10)
        assert [item.status for item in items(db)] == [MediaStatus.REFUSED, MediaStatus.REFUSED]
        with db.session() as session:
            replied = session.scalars(select(Message.body).where(Message.in_reply_to_id == message_id)).all()
        assert replied == [format_for_channel(replies.MEDIA_WRONG_TYPE.format(limit=size_label(MAX_BYTES)), "whatsapp")]
    finally:
        services(app).db.dispose()


def test_twilio_unreachable_is_tried_again_later(app: Flask, db: Database, twilio_api: FakeTwilioApi, tmp_path: Path) -> None:
    twilio_api.media.errors = [503]
    url = media_url(twilio_api, JPEG, "image/jpeg")
    send(app, "foto", [(url, "image/jpeg")])
    [item] = wait_for(db, lambda found: found[0].attempts == 1 and found[0].last_error is not None)
    assert (item.status, item.last_error) == (MediaStatus.PENDING, "download: http 503")
    assert item.next_attempt_at is not None and item.next_attempt_at > utcnow()
    assert services(app).media.run_due() == 0, "not before its time"

    assert services(app).media.run_due(now=utcnow() + timedelta(minutes=2)) == 1
    [item] = items(db)
    assert (item.status, item.next_attempt_at) == (MediaStatus.STORED, None)
    assert (tmp_path / "media" / item.key[:2] / item.key).read_bytes() == JPEG
    assert twilio_api.media.deleted == [url.rsplit("/", 1)[1]]


def test_wrong_credentials_keep_the_item_for_later(app: Flask, db: Database, twilio_api: FakeTwilioApi) -> None:
    twilio_api.media.auth_token = "another-token"
    send(app, "foto", [(media_url(twilio_api, JPEG, "image/jpeg"), "image/jpeg")])
    [item] = wait_for(db, lambda found: found[0].last_error is not None)
    assert (item.status, item.last_error) == (MediaStatus.PENDING, "download: http 401")
    assert twilio_api.media.deleted == []


def test_a_url_outside_twilio_is_never_sent_the_credentials(app: Flask, db: Database, twilio_api: FakeTwilioApi) -> None:
    asked: list[Any] = []
    with_foreign_host = "http://127.0.0.1:9/2010-04-01/Accounts/" + TEST_ACCOUNT_SID + "/Messages/MM" + "a" * 32 + "/Media/ME" + "b" * 32
    send(app, "foto", [(with_foreign_host, "image/jpeg")])
    [item] = wait_for(db, settled)
    assert (item.status, item.last_error) == (MediaStatus.GONE, "not a Twilio media URL")
    asked.extend(r for r in twilio_api.server.requests if "/Media/" in r[1])  # type: ignore[attr-defined]
    assert asked == []


# ---- the parts ------------------------------------------------------------------------


def test_local_store_puts_opens_replaces_and_deletes(tmp_path: Path) -> None:
    store = LocalMediaStore(tmp_path)
    key = "ab" + "0" * 30
    store.put(key, b"first", "image/jpeg")
    store.put(key, b"second", "image/jpeg")
    with store.open(key) as stored:
        assert stored.read() == b"second"
    assert (tmp_path / "ab" / key).stat().st_mode & 0o077 == 0, "readable by the app's user only"
    store.delete(key)
    store.delete(key)
    with pytest.raises(MediaMissing):
        store.open(key)


@pytest.mark.parametrize("key", ["../../etc/passwd", "AB" + "0" * 30, "0" * 31, "", "0" * 32 + "/x"])
def test_local_store_refuses_what_is_not_a_key(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError):
        LocalMediaStore(tmp_path).open(key)


def test_database_store_puts_opens_replaces_and_deletes(db: Database) -> None:
    store = DatabaseMediaStore(db)
    key = "cd" + "1" * 30
    store.put(key, b"first", "image/jpeg")
    store.put(key, b"second", "image/png")
    with store.open(key) as stored:
        assert stored.read() == b"second"
    with db.session() as session:
        assert session.scalars(select(MediaContent.content_type)).all() == ["image/png"]
    store.delete(key)
    store.delete(key)
    with pytest.raises(MediaMissing):
        store.open(key)
    with pytest.raises(ValueError):
        store.put("../" + key, b"x", "image/jpeg")


def test_the_scaled_shape_keeps_media_in_the_database() -> None:
    """`make run-scaled` runs two web hosts: a copy on one host's disk would be a 404 on the other."""
    assert scaled_environment({})["MEDIA_STORE"] == "database"
    assert scaled_environment({"MEDIA_STORE": "local"})["MEDIA_STORE"] == "local", "a shared volume stays possible"


def test_media_store_setting_picks_the_store_and_refuses_an_unknown_one(sqlite_db: Database, tmp_path: Path) -> None:
    settings = Settings(media_dir=str(tmp_path))
    assert isinstance(make_media_store(settings, sqlite_db), LocalMediaStore)
    assert isinstance(make_media_store(replace(settings, media_store="database"), sqlite_db), DatabaseMediaStore)
    with pytest.raises(ValueError, match="MEDIA_STORE"):
        make_media_store(replace(settings, media_store="s3"), sqlite_db)


@pytest.mark.parametrize(
    ("served", "content", "stored"),
    [
        ("image/jpeg", JPEG, "image/jpeg"),
        ("image/png; charset=binary", PNG, "image/png"),
        ("image/png", JPEG, "image/jpeg"),
        ("image/webp", b"RIFF\x00\x01\x00\x00WEBPVP8 ", "image/webp"),
        ("application/pdf", PDF, "application/pdf"),
    ],
)
def test_the_stored_type_is_what_the_bytes_are(served: str, content: bytes, stored: str) -> None:
    assert checked_type(served, content, MAX_BYTES) == stored


@pytest.mark.parametrize(
    ("served", "content", "reason"),
    [
        ("image/svg+xml", b"<svg onload=alert(1)>", MediaRefusal.WRONG_TYPE),
        ("text/html", b"<html>", MediaRefusal.WRONG_TYPE),
        ("image/jpeg", PDF, MediaRefusal.WRONG_TYPE),
        ("application/pdf", JPEG, MediaRefusal.WRONG_TYPE),
        ("image/jpeg", b"", MediaRefusal.WRONG_TYPE),
        ("image/jpeg", JPEG + b"\x00" * MAX_BYTES, MediaRefusal.TOO_BIG),
    ],
)
def test_what_is_not_a_photo_or_pdf_within_the_limit_is_refused(served: str, content: bytes, reason: str) -> None:
    with pytest.raises(MediaRefused) as refused:
        checked_type(served, content, MAX_BYTES)
    assert refused.value.reason == reason


@pytest.mark.parametrize(("limit", "label"), [(5 * 1024 * 1024, "5 MB"), (512 * 1024, "512 KB"), (100, "1 KB")])
def test_the_limit_is_said_as_citizens_read_it(limit: int, label: str) -> None:
    assert size_label(limit) == label


def test_only_urls_a_provider_could_send_are_recorded(sqlite_db: Database) -> None:
    now = utcnow()
    with sqlite_db.session() as session:
        contact = Contact(address=PHONE)
        session.add(contact)
        session.flush()
        message = Message(contact_id=contact.id, direction="in", channel="whatsapp", provider="twilio", status="received")
        session.add(message)
        session.flush()
        record_media(session, message.id, [
            {"url": "https://api.twilio.com/2010-04-01/x", "content_type": "image/jpeg\x00"},
            {"url": "javascript:alert(1)", "content_type": "image/jpeg"},
            {"url": "https://api.twilio.com/\x00", "content_type": "image/jpeg"},
            {"url": "https://api.twilio.com/" + "a" * 600, "content_type": "image/jpeg"},
            "not a dict",
        ], now)
    [item] = items(sqlite_db)
    assert (item.position, item.declared_type, item.status) == (0, "image/jpeg", MediaStatus.PENDING)
    assert len(item.key) == 32
