"""End-to-end fixtures: one trained model, one real Rasa server and one real action
server per test session, in front of a session database. Each test talks as its own
phone number, so conversations never mix."""
from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from bot.db import Database
from bot.demo import DEMO_PERSONAS, Persona, seed_demo
from scripts.rasa_model import ensure_model
from tests.support.processes import action_server, rasa_server
from tests.support.twilio import TEST_AUTH_TOKEN, TwilioSigner, sms_form, whatsapp_form


_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def e2e_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def e2e_db(e2e_workdir: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{e2e_workdir / 'e2e.db'}")
    db.upgrade()
    seed_demo(db, recipients=40)
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def rasa_url(e2e_db: Database, e2e_workdir: Path) -> Iterator[str]:
    model = ensure_model(quiet=True)
    with action_server(e2e_db.url, e2e_workdir) as action_url:
        with rasa_server(model, action_url, e2e_workdir) as url:
            yield url


@pytest.fixture(scope="session")
def e2e_app(e2e_db: Database, rasa_url: str) -> Flask:
    return create_app(
        {
            "database_url": e2e_db.url,
            "rasa_url": rasa_url,
            "twilio_auth_token": TEST_AUTH_TOKEN,
            "twilio_account_sid": "",
            "public_base_url": "",
            "secret_key": "e2e-secret",
        }
    )


@dataclass
class Phone:
    """A citizen's phone talking to the app through signed Twilio webhooks."""

    client: FlaskClient
    number: str
    whatsapp: bool = False

    def send(self, text: str, media: list[tuple[str, str]] | None = None) -> list[str]:
        form: dict[str, Any] = (
            whatsapp_form(self.number, text, media) if self.whatsapp else sms_form(self.number, text)
        )
        response = TwilioSigner(TEST_AUTH_TOKEN).post(self.client, "/webhooks/twilio/messages", form)
        assert response.status_code == 200, response.data
        return [(m.text or "") for m in ET.fromstring(response.data).iter("Message")]

    def say(self, text: str) -> str:
        """All replies to `text` as one string, for assertions on content."""
        return "\n".join(self.send(text))


PERSONAS: dict[str, Persona] = {persona.key: persona for persona in DEMO_PERSONAS}


def persona_phone(client: FlaskClient, key: str, whatsapp: bool = False) -> Phone:
    """The phone registered to a demo household."""
    number = PERSONAS[key].phone
    assert number, f"persona {key} has no phone"
    return Phone(client, number, whatsapp=whatsapp)


def new_number() -> str:
    return f"+62813{next(_numbers):08d}"


@pytest.fixture
def sms_phone(e2e_app: Flask) -> Phone:
    return Phone(e2e_app.test_client(), new_number())


@pytest.fixture
def wa_phone(e2e_app: Flask) -> Phone:
    return Phone(e2e_app.test_client(), new_number(), whatsapp=True)
