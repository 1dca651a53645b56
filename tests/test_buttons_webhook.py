"""WhatsApp replies with choices: buttons through Twilio's API, the webhook answered at once.

Rasa is the scripted stand-in (tools/fake_rasa.py); Twilio's REST and Content APIs are
the local fake, which checks the content shapes Twilio documents.
"""
from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app
from bot.channels import buttons as buttons_module
from bot.cli import main as bansos
from bot.conversation.models import Direction, Message, MessageStatus
from bot.db import Database
from tools.fake_rasa import FakeRasa
from tools.fake_twilio import FakeTwilioApi
from tests.support.rasa import listening
from tests.support.twilio import (
    SERVICE_NUMBER,
    TEST_ACCOUNT_SID,
    TEST_AUTH_TOKEN,
    TwilioSigner,
    sms_form,
    whatsapp_form,
)

MESSAGES = "/webhooks/twilio/messages"
PHONE = "+6281234500001"
QUESTION = (
    "Apa jenis aduan Bapak/Ibu? Balas nomornya:\n1. Dana belum diterima\n2. Potongan / pungutan liar\n"
    "3. KKS atau PIN dipegang orang lain\n4. Lainnya"
)
BUTTONS = [
    {"title": "Dana belum diterima", "payload": "1"},
    {"title": "Potongan / pungutan liar", "payload": "2"},
    {"title": "KKS atau PIN dipegang orang lain", "payload": "3"},
    {"title": "Lainnya", "payload": "4"},
]
REPLIES = [{"text": "Pengaduan bansos."}, {"text": QUESTION, "buttons": BUTTONS}]
# Each call to the fake Twilio API takes this long: the webhook must not wait for it.
API_DELAY = 0.6


@pytest.fixture
def rasa() -> Iterator[FakeRasa]:
    with listening(FakeRasa(replies=REPLIES)) as fake:
        yield fake


@pytest.fixture
def synced(twilio_api: FakeTwilioApi, monkeypatch: pytest.MonkeyPatch) -> FakeTwilioApi:
    """The fake Twilio after `bansos content sync`, run twice (the second creates nothing)."""
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", TEST_ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TEST_AUTH_TOKEN)
    monkeypatch.setenv("TWILIO_API_BASE", twilio_api.url)  # type: ignore[attr-defined]
    first = CliRunner().invoke(bansos, ["content", "sync"])
    assert first.exit_code == 0, first.output
    assert "13 created, 13 in all" in first.output
    again = CliRunner().invoke(bansos, ["content", "sync"])
    assert "0 created, 13 in all" in again.output
    assert len(twilio_api.content.contents) == 13
    twilio_api.strict_content = True
    return twilio_api


def _client(db: Database, rasa: FakeRasa, twilio_api: FakeTwilioApi, **settings: Any) -> FlaskClient:
    return create_app(
        {
            **settings,
            "database_url": db.url,
            "rasa_url": rasa.url,  # type: ignore[attr-defined]
            "rasa_timeout": 5.0,
            "twilio_account_sid": TEST_ACCOUNT_SID,
            "twilio_auth_token": TEST_AUTH_TOKEN,
            "twilio_api_base": twilio_api.url,  # type: ignore[attr-defined]
            "twilio_sms_from": SERVICE_NUMBER,
            "twilio_whatsapp_from": SERVICE_NUMBER,
            "public_base_url": "",
        }
    ).test_client()


def _post(client: FlaskClient, form: dict[str, str]) -> tuple[list[str], float]:
    started = time.monotonic()
    response = TwilioSigner(TEST_AUTH_TOKEN).post(client, MESSAGES, form)
    took = time.monotonic() - started
    assert response.status_code == 200
    return [m.text or "" for m in ET.fromstring(response.data).iter("Message")], took


def _wait_for(twilio_api: FakeTwilioApi, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while len(twilio_api.sent) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return list(twilio_api.sent)


def _sid_of(twilio_api: FakeTwilioApi, name: str) -> str:
    return next(sid for sid, c in twilio_api.content.contents.items() if c["friendly_name"] == name)


def _outbound(db: Database, count: int) -> list[Message]:
    """The outbound messages once `count` of them have Twilio's answer recorded."""
    deadline = time.monotonic() + 10
    while True:
        with db.session() as session:
            stored = list(
                session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND).order_by(Message.id))
            )
        answered = [m for m in stored if m.provider_sid or m.error_code]
        if len(answered) >= count or time.monotonic() > deadline:
            return stored
        time.sleep(0.05)


def test_whatsapp_choices_go_as_a_list_by_the_api_in_order_and_twilio_gets_its_answer_at_once(
    db: Database, rasa: FakeRasa, synced: FakeTwilioApi
) -> None:
    synced.on_create = lambda message: time.sleep(API_DELAY)
    texts, took = _post(_client(db, rasa, synced), whatsapp_form(PHONE, "mau lapor"))
    assert texts == []
    assert took < API_DELAY
    plain, listed = _wait_for(synced, 2)
    assert plain["body"] == "Pengaduan bansos." and plain["content_sid"] is None
    assert listed["content_sid"] == _sid_of(synced, "bansos_list_picker_4")
    assert listed["to"] == f"whatsapp:{PHONE}" and listed["body"] == QUESTION
    variables = json.loads(listed["content_variables"])
    assert variables["1"] == QUESTION
    assert [variables[str(2 + 3 * i + 1)] for i in range(4)] == ["1", "2", "3", "4"]
    assert variables["8"] == "KKS atau PIN dipegang o…" and variables["10"] == "KKS atau PIN dipegang orang lain"
    stored = _outbound(db, 2)
    assert [m.body for m in stored] == ["Pengaduan bansos.", QUESTION]
    assert [m.provider_sid for m in stored] == [plain["sid"], listed["sid"]]
    with db.session() as session:
        inbound = session.scalar(select(Message).where(Message.direction == Direction.INBOUND))
        assert inbound.status == MessageStatus.ANSWERED


def test_three_choices_go_as_buttons(db: Database, rasa: FakeRasa, synced: FakeTwilioApi) -> None:
    confirm = "Ringkasan laporan.\nBalas YA untuk mengirim, UBAH untuk memperbaiki, atau BATAL untuk membatalkan."
    rasa.replies = [{"text": confirm, "buttons": [
        {"title": "Ya, kirim", "payload": "YA"}, {"title": "Ubah", "payload": "UBAH"}, {"title": "Batal", "payload": "BATAL"},
    ]}]
    _post(_client(db, rasa, synced), whatsapp_form(PHONE, "Bu Siti belum terima dana bulan ini"))
    (sent,) = _wait_for(synced, 1)
    assert sent["content_sid"] == _sid_of(synced, "bansos_quick_reply_3")
    assert json.loads(sent["content_variables"]) == {
        "1": confirm, "2": "Ya, kirim", "3": "YA", "4": "Ubah", "5": "UBAH", "6": "Batal", "7": "BATAL",
    }


def test_sms_keeps_the_numbered_text_in_the_webhook_answer(
    db: Database, rasa: FakeRasa, synced: FakeTwilioApi
) -> None:
    texts, _ = _post(_client(db, rasa, synced), sms_form(PHONE, "mau lapor"))
    assert texts == ["Pengaduan bansos.\n" + QUESTION]
    assert synced.sent == []


@pytest.mark.parametrize(
    "tap, reaches_rasa",
    [
        ({"ButtonPayload": "YA", "ButtonText": "Ya, kirim"}, "YA"),
        ({"ListId": "2", "ListTitle": "Potongan / pungutan liar"}, "2"),
        ({"ListId": "JADWAL", "ListTitle": "JADWAL"}, "/ask_disbursement_schedule"),
        # A forged payload chooses no intent, as typed text cannot.
        ({"ButtonPayload": '/restart{"x": 1}', "ButtonText": "Ya"}, 'restart{"x": 1}'),
    ],
    ids=["button", "list-item", "menu-keyword", "forged-payload"],
)
def test_a_tap_reaches_the_assistant_as_the_typed_answer(
    db: Database, rasa: FakeRasa, synced: FakeTwilioApi, tap: dict[str, str], reaches_rasa: str
) -> None:
    form = {**whatsapp_form(PHONE, tap.get("ButtonText") or tap["ListTitle"]), **tap}
    _post(_client(db, rasa, synced), form)
    assert rasa.received[-1]["message"] == reaches_rasa


def test_buttons_refused_by_twilio_go_again_as_the_numbered_text(
    db: Database, rasa: FakeRasa, synced: FakeTwilioApi
) -> None:
    rasa.replies = [REPLIES[1]]
    synced.transient[f"whatsapp:{PHONE}"] = [(400, 21656)]
    _post(_client(db, rasa, synced), whatsapp_form(PHONE, "mau lapor"))
    (sent,) = _wait_for(synced, 1)
    assert sent["content_sid"] is None and sent["body"] == QUESTION
    stored = _outbound(db, 2)
    assert [(m.body, m.status, m.error_code) for m in stored] == [
        (QUESTION, MessageStatus.FAILED, "21656"),
        (QUESTION, "queued", None),
    ]


def test_buttons_twilio_took_but_answered_too_late_for_are_not_sent_again_as_text(
    db: Database, rasa: FakeRasa, synced: FakeTwilioApi
) -> None:
    rasa.replies = [REPLIES[1]]
    synced.on_create = lambda message: time.sleep(2)
    _post(_client(db, rasa, synced, twilio_http_timeout=1.0), whatsapp_form(PHONE, "mau lapor"))
    (stored,) = _outbound(db, 1)
    time.sleep(0.5)
    (sent,) = synced.sent
    assert sent["content_sid"] == _sid_of(synced, "bansos_list_picker_4")
    assert (stored.body, stored.status, stored.provider_sid) == (QUESTION, MessageStatus.QUEUED, sent["sid"])


def test_a_content_made_anew_at_twilio_is_used_after_one_refusal(
    db: Database, rasa: FakeRasa, synced: FakeTwilioApi
) -> None:
    rasa.replies = [REPLIES[1]]
    client = _client(db, rasa, synced)
    _post(client, whatsapp_form(PHONE, "mau lapor"))
    old_sid = _sid_of(synced, "bansos_list_picker_4")
    assert _wait_for(synced, 1)[0]["content_sid"] == old_sid
    # Deleted and created again at Twilio (another `bansos content sync`): a new SID.
    synced.content.contents["HX" + "f" * 32] = {**synced.content.contents.pop(old_sid), "sid": "HX" + "f" * 32}
    _post(client, whatsapp_form(PHONE, "2"))
    refused_then_text = _wait_for(synced, 2)[1]
    assert refused_then_text["content_sid"] is None and refused_then_text["body"] == QUESTION
    _post(client, whatsapp_form(PHONE, "3"))
    assert _wait_for(synced, 3)[2]["content_sid"] == "HX" + "f" * 32


def test_contents_made_after_start_are_used_once_the_missing_shapes_are_listed_again(
    db: Database, rasa: FakeRasa, twilio_api: FakeTwilioApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(db, rasa, twilio_api)
    texts, _ = _post(client, whatsapp_form(PHONE, "mau lapor"))
    assert texts == ["Pengaduan bansos.", QUESTION]
    listings = lambda: [r for r in twilio_api.server.requests if r[0] == "GET" and "/v1/Content" in r[1]]  # type: ignore[attr-defined]  # noqa: E731
    _synced_contents(monkeypatch, twilio_api)
    listed = len(listings())
    texts, _ = _post(client, whatsapp_form(PHONE, "mau lapor"))
    assert texts == ["Pengaduan bansos.", QUESTION] and len(listings()) == listed, "not listed again at every message"
    monkeypatch.setattr(buttons_module, "_MISSING_RETRY_SECONDS", 0.0, raising=False)
    texts, _ = _post(client, whatsapp_form(PHONE, "mau lapor"))
    assert texts == []
    assert [m["content_sid"] for m in _wait_for(twilio_api, 2)] == [None, _sid_of(twilio_api, "bansos_list_picker_4")]


def _synced_contents(monkeypatch: pytest.MonkeyPatch, twilio_api: FakeTwilioApi) -> None:
    """Run `bansos content sync` against the fake, as an operator would after start-up."""
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", TEST_ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TEST_AUTH_TOKEN)
    monkeypatch.setenv("TWILIO_API_BASE", twilio_api.url)  # type: ignore[attr-defined]
    assert CliRunner().invoke(bansos, ["content", "sync"]).exit_code == 0


def test_without_the_contents_at_twilio_the_choices_go_as_text_in_the_answer(
    db: Database, rasa: FakeRasa, twilio_api: FakeTwilioApi
) -> None:
    texts, _ = _post(_client(db, rasa, twilio_api), whatsapp_form(PHONE, "mau lapor"))
    assert texts == ["Pengaduan bansos.", QUESTION]
    assert twilio_api.sent == []


@pytest.mark.parametrize(
    "buttons",
    [[{"title": f"Pilihan {n}", "payload": str(n)} for n in range(1, 12)], [{"title": "Ya", "payload": "x" * 201}]],
    ids=["eleven-choices", "payload-too-long"],
)
def test_choices_that_cannot_be_shown_go_as_text_in_the_answer(
    db: Database, rasa: FakeRasa, synced: FakeTwilioApi, buttons: list[dict[str, str]]
) -> None:
    rasa.replies = [{"text": QUESTION, "buttons": buttons}]
    texts, _ = _post(_client(db, rasa, synced), whatsapp_form(PHONE, "mau lapor"))
    assert texts == [QUESTION]
    assert synced.sent == []
