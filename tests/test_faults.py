"""Faults, one part at a time: the citizen gets a short answer or a later follow-up, the
message is kept, nothing is sent twice, and the service recovers when the part is back.

Rasa refused, slow or silent is covered in tests/test_webhook_twilio.py; here are the
action server down behind a real Rasa, the Twilio API refusing outbound messages,
SQLite locked by another writer, a server process killed mid-request, the follow-up
job bringing answers once Rasa is back, and /readyz naming what is down.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import event, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.engine import make_url

from app import create_app
from bot.conversation import replies
from bot.config import Settings
from bot import db as db_module
from bot.db import Database
from bot.registry.demo import seed_demo
from bot.conversation.followup import retry_followups
from bot.conversation.turns import DEFAULT_POLICY
from bot.conversation.models import Direction, Message, MessageStatus, utcnow
from bot.services import Services, build_services
from scripts.rasa_model import ensure_model
from tools.databases import migrated_database, postgres_base_url
from tools.fake_rasa import FakeRasa
from tools.fake_twilio import FakeTwilioApi
from tools.processes import E2E_RASA_TOKEN, ROOT, action_server, free_port, rasa_server
from tests.support.twilio import (
    SERVICE_NUMBER,
    TEST_ACCOUNT_SID,
    TEST_AUTH_TOKEN,
    TwilioSigner,
    sms_form,
)

MESSAGES = "/webhooks/twilio/messages"
PHONE = "+6281234567890"
RASA_ANSWER = "Halo, ada yang bisa dibantu?"


def replies_of(response: Any) -> list[str]:
    assert response.status_code == 200, response.data
    return [(m.text or "") for m in ET.fromstring(response.data).iter("Message")]


def wait_until(condition: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def inbound(db: Database, sid: str) -> Message:
    with db.session() as session:
        return session.scalars(select(Message).where(Message.provider_sid == sid)).one()


def later() -> Any:
    """A clock past every follow-up wait, so a test need not sleep through them."""
    return utcnow() + DEFAULT_POLICY.lease + DEFAULT_POLICY.retry_after


def service_settings(db: Database, rasa_url: str, twilio_api: FakeTwilioApi) -> Settings:
    """What the scheduler process running the follow-up job would have."""
    return Settings().with_overrides(
        {
            "database_url": db.url,
            "rasa_url": rasa_url,
            "rasa_token": E2E_RASA_TOKEN,
            "rasa_timeout": 2.0,
            "twilio_account_sid": TEST_ACCOUNT_SID,
            "twilio_auth_token": TEST_AUTH_TOKEN,
            "twilio_api_base": twilio_api.url,  # type: ignore[attr-defined]
            "twilio_sms_from": SERVICE_NUMBER,
            "twilio_whatsapp_from": SERVICE_NUMBER,
            "twilio_http_timeout": 2.0,
        }
    )


@contextmanager
def follow_up_services(db: Database, rasa_url: str, twilio_api: FakeTwilioApi) -> Iterator[Services]:
    services = build_services(service_settings(db, rasa_url, twilio_api))
    try:
        yield services
    finally:
        services.db.dispose()


def api_posts(twilio_api: FakeTwilioApi) -> int:
    """Every message-create request the fake Twilio API received, refused ones too."""
    return sum(1 for method, _, _ in twilio_api.server.requests if method == "POST")  # type: ignore[attr-defined]


# ---- Rasa down, then back: the follow-up job answers, exactly once -------------------


def test_rasa_down_then_back_the_follow_up_answers_exactly_once(
    app_config: dict[str, Any], signer: TwilioSigner, sqlite_db: Database, rasa: FakeRasa, twilio_api: FakeTwilioApi
) -> None:
    rasa.down = True
    client = create_app({**app_config, "rasa_url": rasa.url}).test_client()  # type: ignore[attr-defined]
    form = sms_form(PHONE, "cek bansos")
    assert replies_of(signer.post(client, MESSAGES, form)) == [replies.SERVICE_DOWN]
    assert inbound(sqlite_db, form["MessageSid"]).status == MessageStatus.NEEDS_FOLLOWUP

    rasa.down = False
    with follow_up_services(sqlite_db, rasa.url, twilio_api) as services:  # type: ignore[attr-defined]
        now = later()
        runs: list[int] = []
        threads = [threading.Thread(target=lambda: runs.append(retry_followups(services, now=now))) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(runs) == [0, 0, 1]
        assert retry_followups(services, now=now + DEFAULT_POLICY.retry_after * 2) == 0
    assert [(m["to"], m["body"]) for m in twilio_api.sent] == [(PHONE, RASA_ANSWER)]
    assert inbound(sqlite_db, form["MessageSid"]).status == MessageStatus.ANSWERED
    assert [r["message"] for r in rasa.received] == ["cek bansos"]


# ---- the replies not stored after Rasa answered: never answered twice ---------------


@dataclass
class FailingStoreAfterRasa(FakeRasa):
    """Rasa answers; from that moment every write to the messages table fails, as if the
    database went away between Rasa's answer and storing it."""

    failing: bool = False

    def respond(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        answer = super().respond(method, path, body)
        if path == "/webhooks/rest/webhook":
            self.failing = True
        return answer


def fail_writes_to_messages(db: Database, rasa: FailingStoreAfterRasa) -> None:
    def refuse(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if rasa.failing and statement.lstrip().upper().startswith(("INSERT INTO MESSAGES", "UPDATE MESSAGES")):
            raise OperationalError(statement, parameters, sqlite3.OperationalError("disk I/O error"))

    event.listen(db.engine, "before_cursor_execute", refuse)


def test_replies_not_stored_after_rasa_answered_are_never_answered_twice(
    app_config: dict[str, Any], signer: TwilioSigner, sqlite_db: Database, twilio_api: FakeTwilioApi
) -> None:
    rasa = FailingStoreAfterRasa()
    with rasa.serve() as server:
        app = create_app({**app_config, "rasa_url": server.url})
        fail_writes_to_messages(app.extensions["bansos"].db, rasa)
        form = sms_form(PHONE, "JADWAL")
        assert replies_of(signer.post(app.test_client(), MESSAGES, form)) == [RASA_ANSWER], "the citizen has the answer"
        assert inbound(sqlite_db, form["MessageSid"]).status == MessageStatus.AT_RASA
        rasa.failing = False
        wait_until(lambda: inbound(sqlite_db, form["MessageSid"]).status == MessageStatus.ANSWERED)
        with follow_up_services(sqlite_db, server.url, twilio_api) as services:
            now = later()
            assert retry_followups(services, now=now) == 0
    assert [r["message"] for r in rasa.received] == ["/ask_disbursement_schedule"], "Rasa ran the turn once"
    assert twilio_api.sent == [], "the answer went out once, in the webhook's reply"
    with sqlite_db.session() as session:
        kept = session.scalars(select(Message.body).where(Message.direction == Direction.OUTBOUND)).all()
    assert kept == [RASA_ANSWER], "the replies were stored once the database was back"


def test_an_answer_rasa_gave_after_the_time_out_is_sent_without_running_the_turn_again(
    app_config: dict[str, Any], signer: TwilioSigner, sqlite_db: Database, twilio_api: FakeTwilioApi
) -> None:
    rasa = FakeRasa(delay=1.5)
    with rasa.serve() as server:
        client = create_app({**app_config, "rasa_url": server.url, "rasa_timeout": 0.5}).test_client()
        form = sms_form(PHONE, "JADWAL")
        assert replies_of(signer.post(client, MESSAGES, form)) == [], "busy, not down: no apology"
        wait_until(lambda: bool(rasa.trackers))
        rasa.delay = 0
        with follow_up_services(sqlite_db, server.url, twilio_api) as services:
            assert retry_followups(services, now=later()) == 1
    assert [r["message"] for r in rasa.received] == ["/ask_disbursement_schedule"]
    assert [(m["to"], m["body"]) for m in twilio_api.sent] == [(PHONE, RASA_ANSWER)]


# ---- the action server down, behind the real Rasa server ----------------------------


@pytest.mark.e2e
def test_action_server_down_with_real_rasa_apologises_keeps_the_message_and_follows_up(
    tmp_path: Path, signer: TwilioSigner, twilio_api: FakeTwilioApi
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'faults.db'}")
    db.upgrade()
    seed_demo(db, recipients=0)
    action_port = free_port()
    with rasa_server(ensure_model(quiet=True), f"http://127.0.0.1:{action_port}/webhook", tmp_path) as rasa_url:
        client = create_app(
            {"database_url": db.url, "rasa_url": rasa_url, "rasa_token": E2E_RASA_TOKEN,
             "twilio_auth_token": TEST_AUTH_TOKEN, "twilio_account_sid": "", "public_base_url": ""}
        ).test_client()
        greeting = replies_of(signer.post(client, MESSAGES, sms_form(PHONE, "halo")))
        assert "Asisten Bansos" in greeting[0], "answers without a custom action still work"
        form = sms_form(PHONE, "MENU")
        assert replies_of(signer.post(client, MESSAGES, form)) == [replies.SERVICE_DOWN]
        assert inbound(db, form["MessageSid"]).status == MessageStatus.NEEDS_FOLLOWUP

        with action_server(db.url, tmp_path, port=action_port), follow_up_services(db, rasa_url, twilio_api) as services:
            assert retry_followups(services, now=later()) == 1
    assert inbound(db, form["MessageSid"]).status == MessageStatus.ANSWERED
    [menu] = twilio_api.sent
    assert menu["to"] == PHONE and "JADWAL" in menu["body"]
    db.dispose()


# ---- the Twilio API refusing outbound messages ----------------------------------------


@pytest.mark.parametrize("http_status, code", [(429, 20429), (500, 20500)])
def test_twilio_api_refusing_a_follow_up_is_recorded_and_never_sent_twice(
    sqlite_db: Database, rasa: FakeRasa, twilio_api: FakeTwilioApi, http_status: int, code: int
) -> None:
    twilio_api.failures[PHONE] = (http_status, code)
    with follow_up_services(sqlite_db, rasa.url, twilio_api) as services:  # type: ignore[attr-defined]
        client = create_app({"database_url": sqlite_db.url, "rasa_url": "http://127.0.0.1:9",
                             "twilio_auth_token": TEST_AUTH_TOKEN, "twilio_account_sid": ""}).test_client()
        form = sms_form(PHONE, "halo")
        TwilioSigner(TEST_AUTH_TOKEN).post(client, MESSAGES, form)
        now = later()
        assert retry_followups(services, now=now) == 1
        del twilio_api.failures[PHONE]
        assert retry_followups(services, now=now + DEFAULT_POLICY.retry_after * 2) == 0
    assert api_posts(twilio_api) == 1 and twilio_api.sent == []
    with sqlite_db.session() as session:
        outbound = session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND, Message.status != MessageStatus.REPLIED)).one()
        assert (outbound.status, outbound.error_code, outbound.body) == (MessageStatus.FAILED, str(code), RASA_ANSWER)
    assert inbound(sqlite_db, form["MessageSid"]).status == MessageStatus.ANSWERED


# ---- SQLite locked by another writer --------------------------------------------------


@contextmanager
def write_lock(db: Database, seconds: float) -> Iterator[threading.Thread]:
    """Hold SQLite's write lock from another connection, as a long import would."""
    path = make_url(db.url).database
    held = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    try:
        yield thread
    finally:
        thread.join()


def test_database_locked_for_a_moment_the_webhook_waits_and_answers(
    signer: TwilioSigner, sqlite_db: Database, rasa: FakeRasa
) -> None:
    client = create_app({"database_url": sqlite_db.url, "rasa_url": rasa.url,  # type: ignore[attr-defined]
                         "twilio_auth_token": TEST_AUTH_TOKEN, "twilio_account_sid": ""}).test_client()
    form = sms_form(PHONE, "halo")
    with write_lock(sqlite_db, 1.0):
        started = time.monotonic()
        answer = replies_of(signer.post(client, MESSAGES, form))
        waited = time.monotonic() - started
    assert answer == [RASA_ANSWER]
    assert waited >= 0.8, "the lock was really held while the webhook ran"
    assert inbound(sqlite_db, form["MessageSid"]).status == MessageStatus.ANSWERED


def test_database_locked_past_the_busy_timeout_asks_for_a_resend_then_recovers(
    signer: TwilioSigner, sqlite_db: Database, rasa: FakeRasa
) -> None:
    client = create_app({"database_url": sqlite_db.url, "rasa_url": rasa.url,  # type: ignore[attr-defined]
                         "twilio_auth_token": TEST_AUTH_TOKEN, "twilio_account_sid": ""}).test_client()
    with write_lock(sqlite_db, 6.5):
        assert replies_of(signer.post(client, MESSAGES, sms_form(PHONE, "halo"))) == [replies.STORAGE_DOWN]
    assert rasa.received == [], "nothing is processed that was not stored"
    assert replies_of(signer.post(client, MESSAGES, sms_form(PHONE, "halo"))) == [RASA_ANSWER]


# ---- PostgreSQL cutting the pool's connections ----------------------------------------


@pytest.mark.skipif(not postgres_base_url(), reason="PostgreSQL variant: set TEST_DATABASE_URL to run it")
@pytest.mark.parametrize("idle_for_a_ping", [True, False], ids=["idle-pinged", "cut-within-the-idle-window"])
def test_postgresql_cutting_pooled_connections_the_next_message_is_answered_not_refused(
    idle_for_a_ping: bool, signer: TwilioSigner, rasa: FakeRasa, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL restarted, or a firewall cut idle connections: the citizen's next
    message is stored and answered, never met with "please send again". A connection
    idle past PING_AFTER_IDLE_SECONDS is pinged and replaced before use; one cut within
    that window fails its first statement, and the message is stored again on a fresh one."""
    with migrated_database("postgresql", tmp_path) as db:
        app = create_app({"database_url": db.url, "rasa_url": rasa.url,  # type: ignore[attr-defined]
                          "twilio_auth_token": TEST_AUTH_TOKEN, "twilio_account_sid": ""})
        opened: list[int] = []
        event.listen(app.extensions["bansos"].db.engine, "connect",
                     lambda dbapi_connection, _record: opened.append(dbapi_connection.info.backend_pid))
        client = app.test_client()
        assert replies_of(signer.post(client, MESSAGES, sms_form(PHONE, "halo"))) == [RASA_ANSWER]
        assert opened, "the app's pool holds connections"
        with db.engine.connect() as admin:
            cut = admin.scalar(text("SELECT count(*) FROM unnest(CAST(:pids AS int[])) AS pid "
                                    "WHERE pg_terminate_backend(pid)"), {"pids": opened})
        assert cut == len(opened)
        monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0 if idle_for_a_ping else 3600.0)
        if idle_for_a_ping:
            # Every unit of work, not only the webhook's: the probe's connection is replaced too.
            assert client.get("/readyz").get_json()["checks"]["database"] == "ok"
        form = sms_form(PHONE, "halo lagi")
        assert replies_of(signer.post(client, MESSAGES, form)) == [RASA_ANSWER]
        assert inbound(db, form["MessageSid"]).status == MessageStatus.ANSWERED
        assert len(rasa.received) == 2


# ---- a server process killed mid-request ---------------------------------------------


@contextmanager
def gunicorn(port: int, config: dict[str, Any], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The app under gunicorn, in a session of its own so the whole server can be killed."""
    command = [
        sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
        "--threads", "4", f"app:create_app({config!r})",
    ]
    with log.open("ab") as out:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"gunicorn did not start:\n{log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)


def post_until_the_server_dies(url: str, form: dict[str, str], headers: dict[str, str]) -> None:
    """The first delivery: its connection dies with the server."""
    try:
        requests.post(url, data=form, headers=headers, timeout=20)
    except requests.RequestException:
        pass


def test_process_killed_mid_request_the_retry_is_answered_exactly_once(
    tmp_path: Path, signer: TwilioSigner, sqlite_db: Database, rasa: FakeRasa, twilio_api: FakeTwilioApi
) -> None:
    """SIGKILL while Rasa thinks: the message stays `at_rasa`; Twilio's retry finds it and
    processes nothing again; the follow-up job sends Rasa's answer once, through the outbox."""
    port = free_port()
    url = f"http://127.0.0.1:{port}{MESSAGES}"
    config = {
        "database_url": sqlite_db.url, "rasa_url": rasa.url, "rasa_timeout": 10.0,  # type: ignore[attr-defined]
        "twilio_auth_token": TEST_AUTH_TOKEN, "twilio_account_sid": "", "public_base_url": "",
        "replay_wait_seconds": 1.0,
    }
    form = sms_form(PHONE, "JADWAL")
    headers = signer.headers(url, form)
    log = tmp_path / "gunicorn.log"
    rasa.delay = 8.0
    with gunicorn(port, config, log) as server:
        first = threading.Thread(target=post_until_the_server_dies, args=(url, form, headers))
        first.start()
        wait_until(lambda: bool(rasa.received))
        assert inbound(sqlite_db, form["MessageSid"]).status == MessageStatus.AT_RASA
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(10)
        first.join(10)
    rasa.delay = 0.0

    with gunicorn(port, config, log):
        retry = requests.post(url, data=form, headers=headers, timeout=20)
        assert retry.status_code == 200
        assert RASA_ANSWER not in retry.text, "the retry waited for the dead request, processing nothing"
    assert len(rasa.received) == 1, "the retry of a stored message is not processed again"
    assert inbound(sqlite_db, form["MessageSid"]).status == MessageStatus.AT_RASA
    # Two minutes on, when the job runs, Rasa has long finished the dead request's turn.
    wait_until(lambda: bool(rasa.trackers))

    with follow_up_services(sqlite_db, rasa.url, twilio_api) as services:  # type: ignore[attr-defined]
        now = later()
        assert retry_followups(services, now=now) == 1
        assert retry_followups(services, now=now + DEFAULT_POLICY.retry_after * 2) == 0
    assert [(m["to"], m["body"]) for m in twilio_api.sent] == [(PHONE, RASA_ANSWER)]
    assert inbound(sqlite_db, form["MessageSid"]).status == MessageStatus.ANSWERED
    assert len(rasa.received) == 1, "Rasa's answer came from its tracker; the turn was not run again"


# ---- /readyz names what is down -------------------------------------------------------


@pytest.mark.parametrize(
    "database_url, rasa_up, expected",
    [
        pytest.param(None, True, {"database": "ok", "rasa": "ok"}, id="all up"),
        pytest.param("postgresql://nobody@127.0.0.1:1/none", True, {"database": "down", "rasa": "ok"}, id="database down"),
        pytest.param(None, False, {"database": "ok", "rasa": "down"}, id="rasa down"),
        pytest.param("postgresql://nobody@127.0.0.1:1/none", False, {"database": "down", "rasa": "down"}, id="both down"),
    ],
)
def test_readyz_names_what_is_down(
    sqlite_db: Database, rasa: FakeRasa, database_url: str | None, rasa_up: bool, expected: dict[str, str]
) -> None:
    rasa.down = not rasa_up
    client = create_app({"database_url": database_url or sqlite_db.url, "rasa_url": rasa.url,  # type: ignore[attr-defined]
                         "twilio_auth_token": TEST_AUTH_TOKEN}).test_client()
    response = client.get("/readyz")
    assert response.get_json()["checks"] == expected
    assert response.status_code == (200 if rasa_up and database_url is None else 503)
