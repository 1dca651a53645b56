"""End-to-end fixtures: one trained model, one real Rasa server and one real action
server per test session, in front of a session database. Each test talks as its own
phone number, so conversations never mix."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from bot.db import Database
from bot.registry.demo import seed_demo
from scripts.rasa_model import ensure_model
from tools.processes import E2E_RASA_TOKEN, action_server, rasa_server
from tests.support.phones import Phone, new_number
from tests.support.twilio import TEST_AUTH_TOKEN


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
            "rasa_token": E2E_RASA_TOKEN,
        }
    )


@pytest.fixture
def sms_phone(e2e_app: Flask) -> Phone:
    return Phone(e2e_app.test_client(), new_number())


@pytest.fixture
def wa_phone(e2e_app: Flask) -> Phone:
    return Phone(e2e_app.test_client(), new_number(), whatsapp=True)
