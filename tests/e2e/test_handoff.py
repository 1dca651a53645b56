"""Human handoff end to end: signed webhooks, the real Rasa and action server, the
dashboard, and replies through the (fake) Twilio REST API with the real twilio client.

The story: the bot answers; PETUGAS hands the chat to a person; the officer's reply
reaches Twilio; what the citizen writes meanwhile is stored for staff and never
reaches Rasa (its tracker gains no user event); hand back restarts the tracker and
the bot answers again.
"""
from __future__ import annotations

import html
import re

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from app import create_app
from bot.db import Database
from bot.handoff.models import Handoff, HandoffReason, HandoffStatus
from bot.conversation.models import Contact
from tools.processes import E2E_RASA_TOKEN
from tests.support.phones import Phone
from tools.fake_twilio import FakeTwilioApi
from tests.support.staff import make_staff, post_form, signed_in
from tests.support.twilio import SERVICE_NUMBER, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN

_staff_names = itertools.count(1)
_numbers = itertools.count(1)


def new_number() -> str:
    """A number of its own range: these chats stay handed off, so no other test may share one."""
    return f"+62815{next(_numbers):08d}"


@pytest.fixture(scope="module")
def twilio_api() -> Iterator[tuple[FakeTwilioApi, str]]:
    fake = FakeTwilioApi()
    with fake.serve() as server:
        yield fake, server.url


@pytest.fixture(scope="module")
def handoff_app(e2e_db: Database, rasa_url: str, twilio_api: tuple[FakeTwilioApi, str]) -> Flask:
    """The app with Twilio credentials, so staff replies go through the twilio client."""
    return create_app({
        "database_url": e2e_db.url,
        "rasa_url": rasa_url,
        "twilio_auth_token": TEST_AUTH_TOKEN,
        "twilio_account_sid": TEST_ACCOUNT_SID,
        "twilio_sms_from": SERVICE_NUMBER,
        "twilio_whatsapp_from": SERVICE_NUMBER,
        "twilio_api_base": twilio_api[1],
        "public_base_url": "",
        "secret_key": "e2e-secret",
        "rasa_token": E2E_RASA_TOKEN,
    })


def conversation_key(db: Database, number: str) -> str:
    with db.session() as session:
        return session.scalars(select(Contact.conversation_key).where(Contact.address == number)).one()


def open_handoff(db: Database, number: str) -> Handoff:
    with db.session() as session:
        return session.scalars(
            select(Handoff).join(Contact, Handoff.contact_id == Contact.id)
            .where(Contact.address == number).order_by(Handoff.id.desc())
        ).first()  # type: ignore[return-value]


def tracker_events(rasa_url: str, key: str) -> list[dict[str, Any]]:
    response = requests.get(f"{rasa_url}/conversations/{key}/tracker", params={"include_events": "ALL", "token": E2E_RASA_TOKEN}, timeout=10)
    response.raise_for_status()
    return response.json()["events"]


def user_texts(events: list[dict[str, Any]]) -> list[str]:
    return [event.get("text") or "" for event in events if event["event"] == "user"]


def test_escalate_reply_hold_and_hand_back(handoff_app: Flask, e2e_db: Database, rasa_url: str, twilio_api: tuple[FakeTwilioApi, str]) -> None:
    fake, _ = twilio_api
    phone = Phone(handoff_app.test_client(), new_number(), whatsapp=True)
    assert "MENU" in phone.say("halo")

    notice = phone.say("PETUGAS")
    assert "petugas" in notice
    handoff = open_handoff(e2e_db, phone.number)
    assert (handoff.reason, handoff.status) == (HandoffReason.REQUESTED, HandoffStatus.WAITING)

    username = f"petugas{next(_staff_names)}"
    make_staff(handoff_app, username, full_name="Rina Petugas")
    officer = signed_in(handoff_app, username)
    page = f"/staff/chats/{handoff.id}"
    assert "PETUGAS" in officer.get(page).get_data(as_text=True)
    post_form(officer, page, f"{page}/reply", {"body": "Selamat siang, saya Rina dari dinas sosial."})
    assert [(m["to"], m["body"]) for m in fake.sent][-1] == (
        f"whatsapp:{phone.number}", "Selamat siang, saya Rina dari dinas sosial."
    )

    key = conversation_key(e2e_db, phone.number)
    before = user_texts(tracker_events(rasa_url, key))
    # The page polls with the signed token of its audited view, for lines newer than it showed.
    poll_url = html.unescape(re.search(r'data-poll-url="([^"]+)"', officer.get(page).get_data(as_text=True)).group(1))
    assert phone.send("cek bansos saya dong") == []
    assert user_texts(tracker_events(rasa_url, key)) == before, "a handed-off message reached Rasa"
    poll = officer.get(f"{poll_url}&after=0").json["messages"]
    assert poll[-1]["body"] == "cek bansos saya dong" and poll[-1]["author"] == "Warga"

    post_form(officer, page, f"{page}/hand-back")
    assert open_handoff(e2e_db, phone.number).status == HandoffStatus.RETURNED
    assert fake.sent[-1]["to"] == f"whatsapp:{phone.number}" and "MENU" in fake.sent[-1]["body"]
    assert "restart" in [event["event"] for event in tracker_events(rasa_url, key)]

    assert "MENU" in phone.say("halo")
    assert user_texts(tracker_events(rasa_url, key))[-1] == "halo"


def test_rasas_api_refuses_callers_without_the_token(rasa_url: str) -> None:
    tracker = f"{rasa_url}/conversations/somebody/tracker"
    assert requests.get(tracker, timeout=10).status_code == 401
    assert requests.post(f"{tracker}/events", json={"event": "restart"}, timeout=10).status_code == 401
    assert requests.get(tracker, params={"token": E2E_RASA_TOKEN}, timeout=10).status_code == 200


def test_asking_in_words_hands_over_through_the_nlu(handoff_app: Flask, e2e_db: Database) -> None:
    phone = Phone(handoff_app.test_client(), new_number())
    reply = phone.say("mau bicara dengan petugas")
    assert "petugas" in reply
    assert open_handoff(e2e_db, phone.number).reason == HandoffReason.REQUESTED


def test_two_misunderstood_messages_in_a_row_hand_over(handoff_app: Flask, e2e_db: Database) -> None:
    phone = Phone(handoff_app.test_client(), new_number())
    assert "MENU" in phone.say("xqzv wplk")
    assert open_handoff(e2e_db, phone.number) is None
    assert "petugas" in phone.say("brrr zzkt qwp")
    assert open_handoff(e2e_db, phone.number).reason == HandoffReason.NOT_UNDERSTOOD
