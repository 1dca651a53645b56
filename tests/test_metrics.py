"""/metrics as an operator's Prometheus sees it, after a scripted conversation.

The conversation goes through the signed Twilio webhook with the scripted Rasa, as
the other webhook tests do; the figures are read back from the endpoint, parsed with
prometheus_client's own parser. Counters live for the whole test process, so each
test compares a scrape after with one before.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from app import create_app
from bot.channels.twilio import TwilioTransport
from bot.conversation.followup import retry_followups
from bot.conversation.models import Contact, Direction, Message, MessageStatus, utcnow
from bot.db import Database
from bot.handoff.models import Handoff, HandoffReason
from bot.notices.dispatcher import Dispatcher
from bot.notices.models import Notice
from bot.notices.planning import NoticePlanner
from bot.scrape import build_registry
from bot.services import Services
from tests.support.twilio import TEST_AUTH_TOKEN, TwilioSigner, sms_form, whatsapp_form
from tools.fake_rasa import FakeRasa
from tools.fake_twilio import FakeTwilioApi
from tools.notices import T0, add_disbursement, add_recipient, day_after, notice_settings

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = "/webhooks/twilio/messages"
STATUS = "/webhooks/twilio/status"
TOKEN = "metrics-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PHONE = "+6281234567801"
OTHER_PHONE = "+6281234567802"
NIK = "3201014501900003"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(client: FlaskClient) -> tuple[str, Samples]:
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    return text, parse(text)


@pytest.fixture
def app(app_config: dict[str, Any], rasa: FakeRasa) -> Flask:
    return create_app({**app_config, "rasa_url": rasa.url, "metrics_token": TOKEN})  # type: ignore[attr-defined]


def test_a_scripted_conversation_shows_in_the_metrics(
    client: FlaskClient, signer: TwilioSigner, rasa: FakeRasa
) -> None:
    _, before = scrape(client)
    first = sms_form(PHONE, f"halo, NIK saya {NIK}")
    assert signer.post(client, MESSAGES, first).status_code == 200
    assert signer.post(client, MESSAGES, first).status_code == 200  # Twilio's retry
    assert signer.post(client, MESSAGES, whatsapp_form(PHONE, "PETUGAS")).status_code == 200
    assert signer.post(client, MESSAGES, whatsapp_form(PHONE, "tolong")).status_code == 200
    rasa.down = True
    assert signer.post(client, MESSAGES, sms_form(OTHER_PHONE, "halo")).status_code == 200
    report = {"MessageSid": "SMunknown0001", "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert signer.post(client, STATUS, report).status_code == 204
    text, after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    inbound = "bansos_inbound_messages_total"
    assert moved(inbound, channel="sms", outcome="answered") == 1
    assert moved(inbound, channel="sms", outcome="duplicate") == 1
    assert moved(inbound, channel="whatsapp", outcome="answered") == 1  # PETUGAS: told a person comes
    assert moved(inbound, channel="whatsapp", outcome="with_staff") == 1
    assert moved(inbound, channel="sms", outcome="rasa_failed") == 1
    assert moved("bansos_answer_seconds_count", channel="sms", path="webhook") == 1
    assert moved("bansos_answer_seconds_bucket", channel="sms", path="webhook", le="+Inf") == 1
    assert moved("bansos_rasa_errors_total", kind="http_error") == 1
    assert moved("bansos_provider_errors_total", provider="twilio", error_code="30003") == 1
    # Read from the database at the scrape: the same on every host.
    assert value(after, "bansos_depths_up") == 1
    assert value(after, "bansos_followups_waiting", state="needs_followup") == 1
    assert value(after, "bansos_followup_oldest_seconds") >= 0
    assert value(after, "bansos_handoffs_open", status="waiting") == 1
    assert value(after, "bansos_handoffs_waiting") == 1
    assert value(after, "bansos_handoff_oldest_wait_seconds") >= 0
    assert value(after, "bansos_outbox_messages", outbox="messages", state="queued") == 0
    assert value(after, "bansos_outbox_messages", outbox="notices", state="pending") == 0
    # Labels are channels, outcomes and codes, never who wrote or what.
    for secret in (NIK, "6281234567801", "6281234567802", "halo", "tolong"):
        assert secret not in text

    rasa.down = False
    services: Services = client.application.extensions["bansos"]
    assert retry_followups(services, now=utcnow() + timedelta(hours=1)) == 1
    _, later = scrape(client)
    assert value(later, "bansos_followups_total", channel="sms", outcome="answered") - value(
        after, "bansos_followups_total", channel="sms", outcome="answered") == 1
    assert value(later, "bansos_answer_seconds_count", channel="sms", path="worker") - value(
        after, "bansos_answer_seconds_count", channel="sms", path="worker") == 1
    assert value(later, "bansos_followups_waiting", state="needs_followup") == 0


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}],
)
def test_metrics_refuse_a_caller_without_the_token(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"bansos_" not in response.data


def test_without_a_token_configured_there_is_no_metrics_page(app_config: dict[str, Any]) -> None:
    client = create_app(app_config).test_client()
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


def test_a_database_that_is_away_still_gives_the_counts(app_config: dict[str, Any], tmp_path: Path) -> None:
    broken = {**app_config, "database_url": f"sqlite:///{tmp_path}/missing/none.db", "metrics_token": TOKEN}
    _, samples = scrape(create_app(broken).test_client())
    assert value(samples, "bansos_depths_up") == 0
    assert ("bansos_followups_waiting", frozenset({("state", "waiting")})) not in samples


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


_COUNT_ONE = (
    "from bot import metrics; import os; "
    "metrics.count_inbound('whatsapp', 'answered', 0.0); print(os.getpid())"
)
# The same, then running on until its standard input closes, as a worker does.
_COUNT_AND_STAY = (
    "from bot import metrics; import os, sys; "
    "metrics.count_inbound('whatsapp', 'answered', 0.0); print(os.getpid(), flush=True); sys.stdin.read()"
)


@contextmanager
def running_writers(env: dict[str, str], count: int) -> Iterator[list[int]]:
    """`count` live processes that have each counted one answered WhatsApp message; their pids."""
    writers = [
        subprocess.Popen([sys.executable, "-c", _COUNT_AND_STAY], env=env, cwd=ROOT,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    try:
        yield [int(writer.stdout.readline()) for writer in writers]  # type: ignore[union-attr]
    finally:
        for writer in writers:
            writer.communicate(timeout=10)


def count_and_exit(env: dict[str, str]) -> int:
    """The pid of a process that counted one message and is gone."""
    done = subprocess.run([sys.executable, "-c", _COUNT_ONE], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_every_process_on_a_host_counts_into_one_scrape(sqlite_db: Database, tmp_path: Path) -> None:
    """Two processes count into PROMETHEUS_MULTIPROC_DIR; the metrics server adds them up."""
    folder = tmp_path / "metrics"
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        "DATABASE_URL": sqlite_db.url,
        "METRICS_BIND": f"127.0.0.1:{_free_port()}",
    }
    with running_writers(env, 2) as pids:
        assert {f"counter_{pid}.db" for pid in pids} <= {path.name for path in folder.iterdir()}
        server = subprocess.Popen([sys.executable, "-m", "bot.metrics_server"], env=env, cwd=ROOT)
        try:
            samples = _scrape_when_up(f"http://{env['METRICS_BIND']}/metrics")
        finally:
            server.terminate()
            server.wait(timeout=10)
    assert value(samples, "bansos_inbound_messages_total", channel="whatsapp", outcome="answered") == 2
    assert value(samples, "bansos_answer_seconds_count", channel="whatsapp", path="webhook") == 2
    assert value(samples, "bansos_depths_up") == 1
    assert server.returncode == 0


_CLEAN = "from bot import metrics; print(' '.join(metrics.clean_at_start()))"


def test_a_start_empties_the_folder_when_every_writer_is_gone(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    gone = [count_and_exit(env) for _ in range(2)]
    starter = subprocess.run([sys.executable, "-c", _CLEAN], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert sorted(starter.stdout.split()) == sorted(f"{kind}_{pid}.db" for kind in ("counter", "histogram") for pid in gone)
    assert list((tmp_path / "metrics").iterdir()) == []


def test_a_start_keeps_every_count_while_a_writer_still_runs(tmp_path: Path) -> None:
    """Only gunicorn restarted: the totals must not fall while a dispatcher still adds to them."""
    folder = tmp_path / "metrics"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    gone = count_and_exit(env)
    with running_writers(env, 1):
        before = sorted(path.name for path in folder.iterdir())
        starter = subprocess.run([sys.executable, "-c", _CLEAN], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
        assert starter.stdout.strip() == ""
        assert sorted(path.name for path in folder.iterdir()) == before
    assert f"counter_{gone}.db" in before


def _scrape_when_up(url: str, headers: dict[str, str] | None = None) -> Samples:
    deadline = time.monotonic() + 30
    while True:
        try:
            response = requests.get(url, headers=headers, timeout=5)
            response.raise_for_status()
            return parse(response.text)
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_gunicorns_workers_are_one_scrape_and_its_start_empties_the_folder(
    sqlite_db: Database, rasa: FakeRasa, signer: TwilioSigner, tmp_path: Path
) -> None:
    folder = tmp_path / "metrics"
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        "DATABASE_URL": sqlite_db.url,
        "RASA_URL": rasa.url,  # type: ignore[attr-defined]
        "TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
        "METRICS_TOKEN": TOKEN,
        "LOG_FORMAT": "json",
    }
    gone = count_and_exit(env)
    base = f"http://127.0.0.1:{_free_port()}"
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", base.removeprefix("http://"), "app:create_app()"],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        _scrape_when_up(f"{base}/metrics", AUTH)
        assert not list(folder.glob(f"*_{gone}.db")), "the start forgets a process that is gone"
        forms = [sms_form(f"+62812345679{n:02d}", "halo") for n in range(8)]
        with ThreadPoolExecutor(8) as pool:
            posted = list(pool.map(
                lambda form: requests.post(f"{base}{MESSAGES}", data=form, headers=signer.headers(f"{base}{MESSAGES}", form), timeout=20),
                forms,
            ))
        assert [response.status_code for response in posted] == [200] * 8
        # Whichever worker answers the scrape, it counts what both workers saw (answered
        # at once, or queued for the answer workers when both Rasa slots were taken).
        for _ in range(4):
            samples = _scrape_when_up(f"{base}/metrics", AUTH)
            assert sum(
                count for (name, labels), count in samples.items()
                if name == "bansos_inbound_messages_total" and ("channel", "sms") in labels
            ) == 8
        assert requests.get(f"{base}/metrics", timeout=5).status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=15)
    access = [json.loads(line) for line in log.read_text().splitlines() if '"gunicorn.access"' in line]
    assert any('"POST /webhooks/twilio/messages" 200' in line["message"] for line in access)


def test_metrics_bind_must_be_an_address(sqlite_db: Database) -> None:
    env = {**os.environ, "DATABASE_URL": sqlite_db.url, "METRICS_BIND": "localhost"}
    result = subprocess.run([sys.executable, "-m", "bot.metrics_server"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode != 0
    assert "METRICS_BIND must be host:port" in result.stderr


def test_queue_depths_and_waits_come_from_the_database(db: Database) -> None:
    """On SQLite and PostgreSQL alike: what waits, by state, and for how long."""
    now = utcnow()
    with db.session() as session:
        contact = Contact(address=PHONE)
        session.add(contact)
        session.flush()
        for status, age in [(MessageStatus.WAITING, 60), (MessageStatus.WAITING, 5), (MessageStatus.NEEDS_FOLLOWUP, 30)]:
            session.add(Message(contact_id=contact.id, direction=Direction.INBOUND, channel="sms", provider="twilio",
                                status=status, created_at=now - timedelta(seconds=age)))
        session.add(Message(contact_id=contact.id, direction=Direction.OUTBOUND, channel="sms", provider="twilio",
                            status=MessageStatus.QUEUED))
        session.add(Message(contact_id=contact.id, direction=Direction.OUTBOUND, channel="sms", provider="twilio",
                            status=MessageStatus.DELIVERED))
        session.add(Handoff(contact_id=contact.id, reason=HandoffReason.REQUESTED, channel="sms",
                            waiting_since=now - timedelta(seconds=120)))
    samples = parse(generate_latest(build_registry(db)).decode())
    assert value(samples, "bansos_depths_up") == 1
    assert value(samples, "bansos_followups_waiting", state="waiting") == 2
    assert value(samples, "bansos_followups_waiting", state="needs_followup") == 1
    assert value(samples, "bansos_followups_waiting", state="received") == 0
    assert 60 <= value(samples, "bansos_followup_oldest_seconds") < 600
    assert value(samples, "bansos_outbox_messages", outbox="messages", state="queued") == 1
    assert value(samples, "bansos_outbox_messages", outbox="messages", state="sending") == 0
    assert value(samples, "bansos_handoffs_open", status="waiting") == 1
    assert value(samples, "bansos_handoffs_open", status="claimed") == 0
    assert value(samples, "bansos_handoffs_waiting") == 1
    assert 120 <= value(samples, "bansos_handoff_oldest_wait_seconds") < 600


def test_the_grafana_dashboard_shows_only_metrics_we_export(client: FlaskClient) -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "asisten-bansos.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in expressions for name in re.findall(r"\bbansos_[a-z_]+", expr)}
    text = client.get("/metrics", headers=AUTH).get_data(as_text=True)
    exported = {
        name
        for family in text_string_to_metric_families(text)
        for name in (family.name, f"{family.name}_total", f"{family.name}_bucket")
    }
    assert used and used <= exported, used - exported
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


def test_notices_count_once_per_outcome_by_channel(
    client: FlaskClient, signer: TwilioSigner, sqlite_db: Database
) -> None:
    """Sent by the dispatcher, delivered or not by the status callbacks; `read` after
    `delivered` is no second delivery."""
    with FakeTwilioApi(now=lambda: T0).serve() as server:
        for _ in range(2):
            add_disbursement(sqlite_db, add_recipient(sqlite_db), day_after(2))
        settings = notice_settings(sqlite_db, server.url)
        NoticePlanner(sqlite_db, settings, clock=lambda: T0).plan()
        _, before = scrape(client)
        Dispatcher(sqlite_db, TwilioTransport(settings), settings, clock=lambda: T0).run()
    with sqlite_db.session() as session:
        notices = [(notice.channel, notice.provider_sid) for notice in session.scalars(select(Notice).order_by(Notice.id))]
    (channel, delivered_sid), (other_channel, undelivered_sid) = notices
    for sid, status, code in [
        (delivered_sid, "delivered", None), (delivered_sid, "read", None), (undelivered_sid, "undelivered", "30005"),
    ]:
        form = {"MessageSid": sid, "MessageStatus": status, **({"ErrorCode": code} if code else {})}
        assert signer.post(client, STATUS, form).status_code == 204
    _, after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert channel == other_channel
    assert moved("bansos_notices_total", channel=channel, outcome="sent") == 2
    assert moved("bansos_notices_total", channel=channel, outcome="delivered") == 1
    assert moved("bansos_notices_total", channel=channel, outcome="undelivered") == 1
    assert moved("bansos_provider_errors_total", provider="twilio", error_code="30005") == 1
