"""Escalated chats in the dashboard: roles, escaping, replies through the Twilio API,
polling, hand back and close, and the audit trail."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html import unescape
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app
from bot.db import Database
from bot.handoff.models import Handoff, HandoffStatus
from bot.conversation.models import Message
from bot.registry.models import Recipient
from bot.handoff.staff_models import AuditEntry
from tools.fake_twilio import FakeTwilioApi
from tests.support.staff import make_staff, post_form, signed_in
from tests.support.twilio import SERVICE_NUMBER, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioSigner, sms_form, whatsapp_form

MESSAGES = "/webhooks/twilio/messages"
PHONE = "+6281234567890"
XSS = "<script>alert(1)</script>"
NIK = "7371014501900003"


@pytest.fixture
def twilio_api() -> Iterator[tuple[FakeTwilioApi, str]]:
    fake = FakeTwilioApi()
    with fake.serve() as server:
        yield fake, server.url


@pytest.fixture
def app(app_config: dict[str, Any], twilio_api: tuple[FakeTwilioApi, str]) -> Flask:
    """The app with Twilio credentials, sending through the fake Twilio API."""
    return create_app({
        **app_config,
        "twilio_account_sid": TEST_ACCOUNT_SID,
        "twilio_sms_from": SERVICE_NUMBER,
        "twilio_whatsapp_from": SERVICE_NUMBER,
        "twilio_api_base": twilio_api[1],
        "twilio_http_timeout": 5.0,
    })


def citizen(client: FlaskClient, text: str, whatsapp: bool = True, phone: str = PHONE) -> list[str]:
    form = whatsapp_form(phone, text) if whatsapp else sms_form(phone, text)
    response = TwilioSigner(TEST_AUTH_TOKEN).post(client, MESSAGES, form)
    assert response.status_code == 200
    return [(m.text or "") for m in ET.fromstring(response.data).iter("Message")]


def handoff_id(db: Database) -> int:
    with db.session() as session:
        return session.scalars(select(Handoff.id).order_by(Handoff.id.desc())).first()  # type: ignore[return-value]


def flashes(client: FlaskClient, path: str) -> list[str]:
    return re.findall(r'class="flash[^"]*"[^>]*>([^<]*)<', client.get(path).get_data(as_text=True))


def poll_url(html: str) -> str:
    """The polling address an (audited) chat page hands its script."""
    match = re.search(r'data-poll-url="([^"]+)"', html)
    assert match, "no transcript on the page"
    return unescape(match.group(1))


def viewed(client: FlaskClient, page: str) -> str:
    """Open the chat page (an audited view) and return where its script polls."""
    return poll_url(client.get(page).get_data(as_text=True))


def poll(client: FlaskClient, url: str, after: int = 0) -> list[dict[str, Any]]:
    response = client.get(f"{url}&after={after}")
    assert response.status_code == 200, response.status_code
    return response.json["messages"]  # type: ignore[no-any-return]


def audit(db: Database) -> list[tuple[str, str, str]]:
    with db.session() as session:
        return list(session.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.target)).tuples())


@pytest.fixture
def escalated(app: Flask, sqlite_db: Database) -> int:
    client = app.test_client()
    citizen(client, "PETUGAS")
    citizen(client, f"{XSS} NIK saya {NIK}")
    return handoff_id(sqlite_db)


def test_citizen_text_is_escaped_in_the_inbox_and_the_chat(app: Flask, escalated: int) -> None:
    make_staff(app, "andi")
    client = signed_in(app, "andi")
    for path in ("/staff/chats", f"/staff/chats/{escalated}"):
        html = client.get(path).get_data(as_text=True)
        assert XSS not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    url = viewed(client, f"/staff/chats/{escalated}")
    citizen(app.test_client(), f"{XSS} lagi")
    response = client.get(f"{url}&after=0")
    assert response.mimetype == "application/json"
    assert [m["body"] for m in response.json["messages"]] == [f"{XSS} lagi"], "JSON carries text; the page inserts it as text"


def test_niks_are_masked_for_agents_and_revealed_to_supervisors_with_an_audit(app: Flask, escalated: int, sqlite_db: Database) -> None:
    make_staff(app, "andi")
    make_staff(app, "sri", role="supervisor")
    agent, boss = signed_in(app, "andi"), signed_in(app, "sri")
    page = f"/staff/chats/{escalated}"
    assert NIK not in agent.get(page).get_data(as_text=True)
    assert "7371********0003" in agent.get(page).get_data(as_text=True)
    assert "Tampilkan NIK" not in agent.get(page).get_data(as_text=True)
    assert post_form(agent, page, f"{page}/reveal").status_code == 403
    revealed = post_form(boss, page, f"{page}/reveal")
    assert revealed.status_code == 200 and NIK in revealed.get_data(as_text=True)
    assert ("sri", "reveal_nik", f"handoff:{escalated}") in audit(sqlite_db)
    assert ("andi", "view_chat", f"handoff:{escalated}") in audit(sqlite_db)
    citizen(app.test_client(), f"NIK saya {NIK}")
    polled = poll(boss, poll_url(revealed.get_data(as_text=True)))
    assert [m["body"] for m in polled] == ["NIK saya 7371********0003"], "polling never reveals"


def test_agents_only_reach_chats_of_their_region(app: Flask, sqlite_db: Database) -> None:
    with sqlite_db.session() as session:
        session.add(Recipient(nik=NIK, name="Siti", birth_date=date(1990, 1, 5), phone=PHONE, province_code="73"))
    citizen(app.test_client(), "PETUGAS")
    hid = handoff_id(sqlite_db)
    make_staff(app, "makassar", region="7371")
    make_staff(app, "bandung", region="32")
    assert signed_in(app, "makassar").get(f"/staff/chats/{hid}").status_code == 200
    bandung = signed_in(app, "bandung")
    assert bandung.get(f"/staff/chats/{hid}").status_code == 403
    assert bandung.get(f"/staff/chats/{hid}/messages.json").status_code == 403
    assert bandung.get("/staff/chats.json").json == {"items": []}


def test_inbox_json_lists_the_chat_with_wait_and_channel(app: Flask, escalated: int) -> None:
    make_staff(app, "andi")
    items = signed_in(app, "andi").get("/staff/chats.json").json["items"]
    assert [(i["id"], i["channel"], i["status"]) for i in items] == [(escalated, "WhatsApp", "Menunggu")]
    assert items[0]["waiting"].endswith("mnt") and items[0]["contact"] == "+62812****7890"


def test_reply_reaches_the_twilio_api_and_the_transcript(app: Flask, escalated: int, twilio_api: tuple[FakeTwilioApi, str], sqlite_db: Database) -> None:
    fake, _ = twilio_api
    make_staff(app, "andi", full_name="Andi Wijaya")
    client = signed_in(app, "andi")
    page = f"/staff/chats/{escalated}"
    url = viewed(client, page)
    response = post_form(client, page, f"{page}/reply", {"body": "Selamat siang Bu, saya Andi dari dinsos."})
    assert response.status_code == 302
    assert [(m["to"], m["from"], m["body"]) for m in fake.sent] == [
        (f"whatsapp:{PHONE}", f"whatsapp:{SERVICE_NUMBER}", "Selamat siang Bu, saya Andi dari dinsos.")
    ]
    assert "Balasan terkirim lewat WhatsApp." in flashes(client, page)
    lines = poll(client, url)
    assert lines[-1]["author"] == "Petugas Andi Wijaya" and lines[-1]["status"] == "queued"
    assert ("andi", "reply", f"handoff:{escalated}") in audit(sqlite_db)
    with sqlite_db.session() as session:
        assert session.get_one(Handoff, escalated).status == HandoffStatus.CLAIMED


def test_whatsapp_outside_24_hours_falls_back_to_sms_and_the_agent_is_told(app: Flask, escalated: int, twilio_api: tuple[FakeTwilioApi, str], sqlite_db: Database) -> None:
    fake, _ = twilio_api
    with sqlite_db.session() as session:
        for message in session.scalars(select(Message)):
            message.created_at -= timedelta(hours=25)
    make_staff(app, "andi")
    client = signed_in(app, "andi")
    page = f"/staff/chats/{escalated}"
    html = client.get(page).get_data(as_text=True)
    assert "akan dikirim lewat SMS" in html
    post_form(client, page, f"{page}/reply", {"body": "Baik Bu, kami cek dulu 🙏"})
    assert [(m["to"], m["from"]) for m in fake.sent] == [(PHONE, SERVICE_NUMBER)]
    assert fake.sent[0]["body"].isascii()
    notes = flashes(client, page)
    assert any("lewat SMS" in note for note in notes)
    assert poll(client, poll_url(html))[-1]["fell_back_to_sms"] is True


def test_a_failed_send_is_reported_to_the_agent(app: Flask, escalated: int, twilio_api: tuple[FakeTwilioApi, str]) -> None:
    fake, _ = twilio_api
    fake.failures[f"whatsapp:{PHONE}"] = (400, 21610)
    make_staff(app, "andi")
    client = signed_in(app, "andi")
    page = f"/staff/chats/{escalated}"
    post_form(client, page, f"{page}/reply", {"body": "Halo"})
    assert any("gagal" in note and "21610" in note for note in flashes(client, page))


def test_new_inbound_messages_arrive_through_polling(app: Flask, escalated: int) -> None:
    make_staff(app, "andi")
    client = signed_in(app, "andi")
    html = client.get(f"/staff/chats/{escalated}").get_data(as_text=True)
    last = int(re.search(r'data-after="(\d+)"', html).group(1))  # type: ignore[union-attr]
    url = poll_url(html)
    assert poll(client, url, last) == []
    assert citizen(app.test_client(), "apakah sudah dibaca?") == []
    new = poll(client, url, last)
    assert [(m["author"], m["body"]) for m in new] == [("Warga", "apakah sudah dibaca?")]


def test_supervisor_assigns_and_agents_cannot(app: Flask, escalated: int, sqlite_db: Database) -> None:
    andi = make_staff(app, "andi")
    budi = make_staff(app, "budi")
    make_staff(app, "sri", role="supervisor")
    page = f"/staff/chats/{escalated}"
    agent = signed_in(app, "andi")
    assert "Tugaskan" not in agent.get(page).get_data(as_text=True)
    post_form(agent, page, f"{page}/assign", {"assignee": str(budi.id)})
    boss = signed_in(app, "sri")
    post_form(boss, page, f"{page}/assign", {"assignee": str(andi.id)})
    with sqlite_db.session() as session:
        assert session.get_one(Handoff, escalated).assigned_to_id == andi.id
    assert ("sri", "assign", f"handoff:{escalated}") in audit(sqlite_db)
    assert ("andi", "assign", f"handoff:{escalated}") not in audit(sqlite_db)


def test_claim_then_a_colleague_is_kept_out(app: Flask, escalated: int) -> None:
    make_staff(app, "andi")
    make_staff(app, "budi")
    page = f"/staff/chats/{escalated}"
    andi, budi = signed_in(app, "andi"), signed_in(app, "budi")
    post_form(andi, page, f"{page}/claim")
    post_form(budi, page, f"{page}/reply", {"body": "Halo"})
    assert any("petugas lain" in note for note in flashes(budi, page))


def test_close_with_an_outcome_from_the_dashboard(app: Flask, escalated: int, sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app.extensions["bansos"].rasa, "reset", lambda sender: None)
    make_staff(app, "andi")
    client = signed_in(app, "andi")
    page = f"/staff/chats/{escalated}"
    post_form(client, page, f"{page}/close", {"outcome": "resolved", "note": "Sudah dijelaskan jadwalnya"})
    with sqlite_db.session() as session:
        row = session.get_one(Handoff, escalated)
        assert (row.status, row.outcome) == (HandoffStatus.CLOSED, "resolved")
    html = client.get(page).get_data(as_text=True)
    assert "Selesai terjawab" in html and "Kirim</button>" not in html


def test_hand_back_with_rasa_down_keeps_the_chat_and_says_so(app: Flask, escalated: int, sqlite_db: Database) -> None:
    make_staff(app, "andi")
    client = signed_in(app, "andi")
    page = f"/staff/chats/{escalated}"
    post_form(client, page, f"{page}/hand-back")
    assert any("Bot tidak dapat dihubungi" in note for note in flashes(client, page))
    with sqlite_db.session() as session:
        assert session.get_one(Handoff, escalated).status == HandoffStatus.WAITING


def test_unknown_chat_is_404(app: Flask) -> None:
    make_staff(app, "andi")
    assert signed_in(app, "andi").get("/staff/chats/999").status_code == 404


# ---- every read of a transcript is audited ---------------------------------------------


def test_polling_serves_no_line_the_audited_page_view_did_not_show(app: Flask, escalated: int, sqlite_db: Database) -> None:
    make_staff(app, "andi")
    make_staff(app, "budi")
    andi, budi = signed_in(app, "andi"), signed_in(app, "budi")
    page = f"/staff/chats/{escalated}"
    for path in (f"{page}/messages.json?after=0", f"{page}/messages.json", f"{page}/messages.json?seen=forged&after=0"):
        assert andi.get(path).status_code == 403, path
    assert ("andi", "view_chat", f"handoff:{escalated}") not in audit(sqlite_db)
    url = viewed(andi, page)
    assert ("andi", "view_chat", f"handoff:{escalated}") in audit(sqlite_db)
    assert poll(andi, url, after=0) == [], "lines the page showed are not served again"
    assert budi.get(f"{url}&after=0").status_code == 403, "a page's token is its viewer's own"
    other = escalated + 1
    assert andi.get(url.replace(f"/chats/{escalated}/", f"/chats/{other}/") + "&after=0").status_code == 403
    citizen(app.test_client(), "pesan baru")
    assert [m["body"] for m in poll(andi, url, after=0)] == ["pesan baru"]


# ---- STOP holds for staff replies ----------------------------------------------------------


def test_the_chat_says_the_citizen_sent_stop_and_a_reply_is_not_sent(app: Flask, escalated: int, twilio_api: tuple[FakeTwilioApi, str]) -> None:
    fake, _ = twilio_api
    assert "MULAI" in citizen(app.test_client(), "STOP")[0], "STOP is still answered"
    make_staff(app, "andi")
    client = signed_in(app, "andi")
    page = f"/staff/chats/{escalated}"
    html = client.get(page).get_data(as_text=True)
    assert "Warga ini sudah mengirim STOP: balasan tidak akan terkirim sampai warga mengirim MULAI." in html
    post_form(client, page, f"{page}/reply", {"body": "Halo Bu, saya Andi."})
    assert fake.sent == []
    notes = flashes(client, page)
    assert any(note.startswith("Balasan tidak terkirim: warga sudah mengirim STOP") for note in notes)
    assert "tidak dikirim: warga sudah STOP" in client.get(page).get_data(as_text=True)


def test_a_tapped_choice_shows_staff_its_title_and_the_bot_keeps_its_payload(app: Flask, escalated: int, sqlite_db: Database) -> None:
    make_staff(app, "andi")
    client = signed_in(app, "andi")
    url = viewed(client, f"/staff/chats/{escalated}")
    tap = {**whatsapp_form(PHONE, "Potongan / pungutan liar"), "ListId": "2", "ListTitle": "Potongan / pungutan liar"}
    assert TwilioSigner(TEST_AUTH_TOKEN).post(app.test_client(), MESSAGES, tap).status_code == 200
    assert [m["body"] for m in poll(client, url)][-1] == "Potongan / pungutan liar"
    assert "Potongan / pungutan liar" in client.get("/staff/chats").get_data(as_text=True)
    with sqlite_db.session() as session:
        stored = session.scalars(select(Message).where(Message.direction == "in").order_by(Message.id.desc())).first()
        assert (stored.body, stored.tapped_title) == ("2", "Potongan / pungutan liar")
