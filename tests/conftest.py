"""Shared fixtures: fresh databases, the Flask app, and correctly signed Twilio requests."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from bot.db import Database
from tools.fake_rasa import FakeRasa
from tools.fake_twilio import FakeTwilioApi
from tools.databases import BACKENDS, migrated_database, postgres_base_url
from tests.support.twilio import TEST_AUTH_TOKEN, TwilioSigner
from tests.support.rasa import listening

# A developer's own .env (written by `make run`) must not leak into the tests, and every
# process the tests start needs a SECRET_KEY, as in production.
os.environ["ENV_FILE"] = os.devnull
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")


# The slow part of the suite, by place: what starts the real Rasa and action servers,
# Chromium, Kannel, or trains and evaluates the NLU. `make test-fast` leaves it out.
_SLOW_PLACES = ("tests/e2e/", "tests/browser/", "tests/test_nlu_gate.py", "tests/test_dialogue_stories.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        place = Path(str(item.fspath)).relative_to(config.rootpath).as_posix()
        if place.startswith(_SLOW_PLACES) or item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.slow)


def _backend_params() -> list[Any]:
    return [
        pytest.param(
            backend,
            marks=pytest.mark.skipif(
                backend == "postgresql" and not postgres_base_url(),
                reason="PostgreSQL variant: set TEST_DATABASE_URL to run it",
            ),
        )
        for backend in BACKENDS
    ]


@pytest.fixture(params=_backend_params())
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh, migrated database: SQLite, and PostgreSQL when TEST_DATABASE_URL is set."""
    with migrated_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    """A fresh SQLite database for tests that are about behaviour, not the backend."""
    with migrated_database("sqlite", tmp_path) as database:
        yield database


@pytest.fixture
def app_config(sqlite_db: Database) -> dict[str, Any]:
    """Settings for an app with no Rasa behind it (port 9 refuses connections)."""
    return {
        "database_url": sqlite_db.url,
        "rasa_url": "http://127.0.0.1:9",
        "rasa_timeout": 2.0,
        "twilio_auth_token": TEST_AUTH_TOKEN,
        "twilio_account_sid": "",
        "public_base_url": "",
        "replay_wait_seconds": 2.0,
    }


@pytest.fixture
def app(app_config: dict[str, Any]) -> Flask:
    return create_app(app_config)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def rasa() -> Iterator[FakeRasa]:
    """Rasa as a scripted local stand-in (`.url`), recording every turn it is asked to run."""
    with listening(FakeRasa()) as fake:
        yield fake


@pytest.fixture
def twilio_api() -> Iterator[FakeTwilioApi]:
    """Twilio's REST API as a local fake; `.url` is its base, `.server` the HTTP server."""
    fake = FakeTwilioApi()
    with fake.serve() as server:
        fake.url = server.url  # type: ignore[attr-defined]
        fake.server = server  # type: ignore[attr-defined]
        yield fake


@pytest.fixture
def signer() -> TwilioSigner:
    return TwilioSigner(TEST_AUTH_TOKEN)
