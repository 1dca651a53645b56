"""Conversations in Redis (RASA_TRACKER_STORE_URL): a half-filled form outlives the Rasa
replica that started it, killed without warning, and goes on at another replica on the
same store, as when the app sends a conversation to its second choice."""
from __future__ import annotations

import os
import re
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from flask import Flask
from sqlalchemy import select

from app import create_app
from bot.db import Database
from bot.reports.models import Report
from scripts.rasa_model import ensure_model
from tests.support.phones import Phone, new_number
from tests.support.twilio import TEST_AUTH_TOKEN
from tools.processes import E2E_RASA_TOKEN, action_server, rasa_replica

# A database of its own on the local Redis, apart from the rate limit's keys.
STORE_URL = "redis://127.0.0.1:6379/5"
# Short, so the test can tell Rasa's expiry from none at all.
EXPIRY_SECONDS = 600


@dataclass(frozen=True)
class Store:
    """The test's corner of the tracker store: its key prefix and a client to look in."""

    prefix: str
    client: redis.Redis

    def trackers(self) -> list[str]:
        return sorted(self.client.scan_iter(f"{self.prefix}:tracker:*"))


@pytest.fixture
def store() -> Iterator[Store]:
    client = redis.Redis.from_url(STORE_URL, socket_timeout=2, decode_responses=True)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        pytest.skip(f"Redis is unreachable at {STORE_URL} ({exc.__class__.__name__}): this test needs redis-server")
    # Rasa takes letters and digits only; unique, so runs never read each other's trackers.
    found = Store(f"e2e{uuid.uuid4().hex[:12]}", client)
    yield found
    keys = list(client.scan_iter(f"{found.prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def app_on(db: Database, rasa_url: str) -> Flask:
    """The app as the e2e fixtures build it, talking to the one replica at `rasa_url`."""
    return create_app(
        {
            "database_url": db.url,
            "rasa_url": rasa_url,
            "twilio_auth_token": TEST_AUTH_TOKEN,
            "twilio_account_sid": "",
            "public_base_url": "",
            "secret_key": "e2e-secret",
            "rasa_token": E2E_RASA_TOKEN,
        }
    )


def test_a_form_half_filled_at_a_killed_replica_goes_on_at_another(
    e2e_db: Database, tmp_path: Path, store: Store
) -> None:
    model = ensure_model(quiet=True)
    number = new_number()
    first_dir, second_dir = tmp_path / "rasa1", tmp_path / "rasa2"
    first_dir.mkdir()
    second_dir.mkdir()
    replica = {
        "tracker_store_url": STORE_URL, "tracker_key_prefix": store.prefix, "tracker_expiry_seconds": EXPIRY_SECONDS,
    }
    with action_server(e2e_db.url, tmp_path) as action_url:
        with rasa_replica(model, action_url, first_dir, **replica) as first:
            phone = Phone(app_on(e2e_db, first.url).test_client(), number)
            assert "untuk siapa" in phone.say("USUL").lower()
            assert "NIK kepala keluarga yang diusulkan" in phone.say("2")
            assert "alamat" in phone.say("Mbah Sarinah").lower()

            [key] = store.trackers()
            assert 0 < store.client.ttl(key) <= EXPIRY_SECONDS, "Rasa sets RASA_TRACKER_EXPIRY_SECONDS on the key"
            # No shutdown hook runs: what Rasa had not stored yet is lost.
            os.kill(first.process.pid, signal.SIGKILL)
            first.process.wait(timeout=10)

        with rasa_replica(model, action_url, second_dir, **replica) as second:
            assert second.url != first.url
            phone = Phone(app_on(e2e_db, second.url).test_client(), number)
            assert "alasan" in phone.say("Kp Sukamaju RT 02 RW 05 Desa Cibodas Kec Pacet Kab Cianjur").lower()
            assert "Ceritakan singkat kondisi" in phone.say("1")
            assert "Ringkasan usulan" in phone.say("Nenek tinggal sendiri, rumahnya hampir roboh")
            reply = phone.say("ya")
            assert "dengan nomor USL-" in reply and "TIKET USL-" in reply
            assert store.trackers() == [key], "the second replica went on with the same conversation"

    reference = re.search(r"USL-\d{8}-[A-HJ-NP-Z2-9]{4}", reply)
    assert reference, reply
    with e2e_db.session() as session:
        report = session.scalars(select(Report).where(Report.reference == reference.group())).one()
        # Answered to the first replica, filed by the second.
        assert report.subject_name == "Mbah Sarinah"
        assert report.subject_address.startswith("Kp Sukamaju")
