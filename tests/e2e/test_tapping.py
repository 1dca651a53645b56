"""A WhatsApp citizen files a complaint by tapping: through the signed webhook, the real
Rasa and action servers, and the local fake Twilio REST and Content APIs (which refuse
content shapes Twilio refuses, and any ContentSid it did not create).

The questions that offer choices come through Twilio's API as a list or buttons; the
citizen's taps come back as Twilio posts them (ListId, ButtonPayload beside the shown
title in Body) and are answered exactly as the typed number or word.
"""
from __future__ import annotations

import itertools
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from bot.channels.buttons import ButtonContents
from bot.channels.twilio import make_client
from bot.config import Settings
from bot.db import Database
from bot.reports.models import ComplaintCategory, ReportKind
from tools.fake_twilio import FakeTwilioApi
from tools.processes import E2E_RASA_TOKEN
from tests.e2e.test_reports import reference_in, stored
from tests.support.twilio import SERVICE_NUMBER, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioSigner, whatsapp_form

_numbers = itertools.count(1)
# Seconds to wait for the replies a turn sends through Twilio's API.
_API_WAIT = 20.0


def _twilio_settings(base: str) -> dict[str, Any]:
    return {
        "twilio_account_sid": TEST_ACCOUNT_SID,
        "twilio_auth_token": TEST_AUTH_TOKEN,
        "twilio_sms_from": SERVICE_NUMBER,
        "twilio_whatsapp_from": SERVICE_NUMBER,
        "twilio_api_base": base,
    }


@pytest.fixture(scope="module")
def fake_twilio() -> Iterator[FakeTwilioApi]:
    """The fake Twilio with our contents created, as `bansos content sync` does at deploy."""
    fake = FakeTwilioApi(strict_content=True)
    with fake.serve() as server:
        fake.url = server.url  # type: ignore[attr-defined]
        ButtonContents(make_client(Settings().with_overrides(_twilio_settings(server.url)))).sync()
        yield fake


@pytest.fixture(scope="module")
def buttons_app(e2e_db: Database, rasa_url: str, fake_twilio: FakeTwilioApi) -> Flask:
    return create_app({
        "database_url": e2e_db.url,
        "rasa_url": rasa_url,
        "public_base_url": "",
        "secret_key": "e2e-secret",
        "rasa_token": E2E_RASA_TOKEN,
        **_twilio_settings(fake_twilio.url),  # type: ignore[attr-defined]
    })


@dataclass
class Seen:
    """One message on the citizen's phone: its text, and the content that shows it."""

    body: str
    content: str | None = None
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def taps(self) -> list[str]:
        """The ids of the buttons or list items: what each tap sends."""
        if self.content is None:
            return []
        width = 2 if "quick_reply" in self.content else 3
        return [self.variables[str(2 + width * i + 1)] for i in range((len(self.variables) - 1) // width)]

    def title_of(self, tap: str) -> str:
        """The title shown on the button or list item whose id is `tap`."""
        assert tap in self.taps, (tap, self.taps)
        width = 2 if "quick_reply" in (self.content or "") else 3
        return self.variables[str(2 + width * self.taps.index(tap))]


@dataclass
class TappingPhone:
    client: FlaskClient
    number: str
    twilio: FakeTwilioApi

    def _post(self, form: dict[str, str]) -> list[Seen]:
        before = len(self._by_api())
        started = time.monotonic()
        response = TwilioSigner(TEST_AUTH_TOKEN).post(self.client, "/webhooks/twilio/messages", form)
        assert response.status_code == 200
        assert time.monotonic() - started < 12, "Twilio waits 15 s for the webhook"
        texts = [Seen(m.text or "") for m in ET.fromstring(response.data).iter("Message")]
        if texts:
            return texts
        deadline = time.monotonic() + _API_WAIT
        while len(self._by_api()) == before and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)  # the rest of the turn, sent in order after the first
        return self._by_api()[before:]

    def _by_api(self) -> list[Seen]:
        names = {sid: c["friendly_name"] for sid, c in self.twilio.content.contents.items()}
        return [
            Seen(m["body"], names.get(m["content_sid"]), json.loads(m["content_variables"] or "{}"))
            for m in list(self.twilio.sent)
            if m["to"] == f"whatsapp:{self.number}"
        ]

    def type(self, text: str) -> list[Seen]:
        return self._post(whatsapp_form(self.number, text))

    def tap_item(self, seen: Seen, item_id: str) -> list[Seen]:
        """Pick a list item as WhatsApp does: Body is the shown title, ListId its id."""
        title = seen.title_of(item_id)
        return self._post({**whatsapp_form(self.number, title), "ListId": item_id, "ListTitle": title})

    def tap_button(self, seen: Seen, payload: str) -> list[Seen]:
        """Tap a quick-reply button: Body is its title, ButtonPayload its id."""
        title = seen.title_of(payload)
        return self._post({**whatsapp_form(self.number, title), "ButtonText": title, "ButtonPayload": payload})


@pytest.fixture
def phone(buttons_app: Flask, fake_twilio: FakeTwilioApi) -> TappingPhone:
    return TappingPhone(buttons_app.test_client(), f"+62816{next(_numbers):08d}", fake_twilio)


def _one(seen: list[Seen]) -> Seen:
    assert len(seen) == 1, seen
    return seen[0]


def test_a_complaint_completed_by_tapping(phone: TappingPhone, e2e_db: Database) -> None:
    categories = _one(phone.type("ADU"))
    assert "jenis aduan" in categories.body and "1. Dana belum diterima" in categories.body
    assert categories.content == "bansos_list_picker_7"
    assert categories.taps == ["1", "2", "3", "4", "5", "6", "7"]

    assert "isi aduan" in _one(phone.tap_item(categories, "1")).body
    assert "LEWATI" in _one(phone.type("Dana PKH tahap 3 belum masuk ke rekening KKS saya")).body
    assert "alamat" in _one(phone.type("lewati")).body
    assert "foto bukti" in _one(phone.type("lewati")).body
    summary = _one(phone.type("lewati"))
    assert "Ringkasan pengaduan" in summary.body and "Dana belum diterima" in summary.body
    assert summary.content == "bansos_quick_reply_3"
    assert summary.taps == ["YA", "UBAH", "BATAL"]

    filed = phone.tap_button(summary, "YA")
    report = stored(e2e_db, reference_in("\n".join(seen.body for seen in filed)))
    assert report.kind == ReportKind.PENGADUAN
    assert report.category == ComplaintCategory.DANA_BELUM_DITERIMA
    assert report.description == "Dana PKH tahap 3 belum masuk ke rekening KKS saya"


def test_the_menu_is_a_list_and_a_tapped_keyword_works_as_typed(phone: TappingPhone) -> None:
    menu = _one(phone.type("MENU"))
    assert menu.content == "bansos_list_picker_8" and "JADWAL" in menu.taps
    assert "NIK" in " ".join(seen.body for seen in phone.tap_item(menu, "JADWAL"))
