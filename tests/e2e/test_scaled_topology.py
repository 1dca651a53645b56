"""The scaled shape as `make run-scaled` starts it: two web hosts, two Rasa replicas, the
answer workers, two dispatchers and the scheduler on PostgreSQL and Redis.

Citizens fill report forms with their messages spread over both web hosts; one Rasa
replica is killed with SIGKILL half-way and the forms go on at the other; a notice
campaign goes out through two dispatchers. Answers are read where a citizen's phone
would get them: in the webhook's TwiML, or later from Twilio's API (the local fake).
"""
from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from bot.conversation.models import Contact
from bot.conversation.rasa_client import rendezvous_order
from bot.db import Database
from tools.databases import postgres_base_url
from tools.fake_twilio import FakeTwilioApi
from tools.processes import E2E_RASA_TOKEN, free_port
from tests.support.twilio import SERVICE_NUMBER, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioSigner, sms_form

ROOT = Path(__file__).resolve().parents[2]
REDIS = "redis://127.0.0.1:6379"
# Redis databases of their own, so nothing else's keys are touched.
REDIS_DB, TRACKER_DB = 11, 12
USUL_STEPS = [
    ("USUL", "untuk siapa"),
    ("2", "NIK kepala keluarga"),
    ("Mbah Sarinah", "alamat"),
    ("Kp Sukamaju RT 02 RW 05 Desa Cibodas", "alasan"),
    ("1", "Ceritakan singkat"),
    ("Nenek tinggal sendiri", "Ringkasan usulan"),
    ("ya", "dengan nomor USL-"),
]
STARTUP_SECONDS = 420


def _services_reachable() -> str | None:
    try:
        redis.Redis.from_url(REDIS, socket_timeout=2).ping()
    except redis.RedisError:
        return "Redis is not reachable on 127.0.0.1:6379"
    base = postgres_base_url() or "postgresql://postgres@127.0.0.1:5432/test"
    try:
        engine = create_engine(make_url(base).set(drivername="postgresql+psycopg"))
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means no PostgreSQL here
        return f"PostgreSQL is not reachable: {exc.__class__.__name__}"
    return None


@dataclass
class Topology:
    env: dict[str, str]
    webs: list[str]
    api: FakeTwilioApi
    db: Database
    process: subprocess.Popen[bytes]
    log: Path

    def rasa_urls(self) -> list[str]:
        return self.env["RASA_URLS"].split(",")

    def post(self, web: str, phone: str, body: str) -> list[str]:
        """One signed webhook to `web`: the TwiML texts."""
        form = sms_form(phone, body)
        url = f"{web}/webhooks/twilio/messages"
        started = time.monotonic()
        response = requests.post(url, data=form, headers=TwilioSigner(TEST_AUTH_TOKEN).headers(url, form), timeout=20)
        assert time.monotonic() - started < 15, "Twilio waits 15 s at most"
        assert response.status_code == 200, response.text
        return re.findall(r"<Message>(.*?)</Message>", response.text, flags=re.S)

    def answer(self, web: str, phone: str, body: str, timeout: float = 90) -> str:
        """What the phone gets for `body`: the TwiML answer, or the one sent later by the API."""
        before = len(self.api_texts(phone))
        texts = self.post(web, phone, body)
        if texts:
            return "\n".join(texts)
        deadline = time.monotonic() + timeout
        while len(self.api_texts(phone)) == before:
            assert time.monotonic() < deadline, f"no answer to {body!r} for {phone}; see {self.log}"
            time.sleep(0.2)
        return self.api_texts(phone)[before]

    def api_texts(self, phone: str) -> list[str]:
        return [message["body"] for message in list(self.api.sent) if message["to"] == phone]

    def replica_of(self, phone: str) -> str:
        with self.db.session() as session:
            key = session.scalar(select(Contact.conversation_key).where(Contact.address == phone))
        assert key, phone
        return rendezvous_order(self.rasa_urls(), key)[0]


def _wait_ready(topology: Topology) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    urls = [f"{web}/readyz" for web in topology.webs] + [
        f"{rasa}/status?token={E2E_RASA_TOKEN}" for rasa in topology.rasa_urls()
    ]
    while True:
        assert topology.process.poll() is None, f"run-scaled exited; see {topology.log}"
        try:
            if all(requests.get(url, timeout=2).status_code == 200 for url in urls):
                return
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, f"the topology did not get ready; see {topology.log}"
        time.sleep(1)


def _listener_pid(port: int) -> int:
    """The process listening on `port` (the Rasa replica itself, not its restart loop)."""
    out = subprocess.run(["ss", "-Htlnp", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"pid=(\d+)", out)
    assert found, out
    return int(found.group(1))


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    reason = _services_reachable()
    if reason:
        pytest.skip(reason)
    base = make_url(postgres_base_url() or "postgresql://postgres@127.0.0.1:5432/test")
    name = "bansos_scaled_" + secrets.token_hex(4)
    database_url = base.set(database=name).render_as_string(hide_password=False)
    for db_number in (REDIS_DB, TRACKER_DB):
        redis.Redis.from_url(f"{REDIS}/{db_number}").flushdb()
    api = FakeTwilioApi()
    work = tmp_path_factory.mktemp("scaled")
    log = work / "run-scaled.log"
    with api.serve() as api_server:
        ports = {key: str(free_port()) for key in ("WEB1_PORT", "WEB2_PORT", "RASA1_PORT", "RASA2_PORT", "ACTIONS_PORT")}
        env = {
            **os.environ,
            **ports,
            "ENV_FILE": "/dev/null",
            "DATABASE_URL": database_url,
            "REDIS_URL": f"{REDIS}/{REDIS_DB}",
            "RASA_TRACKER_STORE_URL": f"{REDIS}/{TRACKER_DB}",
            "RASA_TOKEN": E2E_RASA_TOKEN,
            "SECRET_KEY": "scaled-" + secrets.token_hex(8),
            "TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
            "TWILIO_API_BASE": api_server.url,
            "TWILIO_SMS_FROM": SERVICE_NUMBER,
            "TWILIO_WHATSAPP_FROM": SERVICE_NUMBER,
            # Notices at any hour, planned and sent within seconds.
            "NOTICE_SEND_FROM": "00:00",
            "NOTICE_SEND_UNTIL": "24:00",
            "NOTICE_PLAN_INTERVAL": "3",
            "NOTICE_DISPATCH_INTERVAL": "1",
        }
        bansos = str(ROOT / ".venv" / "bin" / "bansos")
        subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c",
                        "import sys; sys.path.insert(0, '.'); from scripts.run_scaled import ensure_database; "
                        f"ensure_database({database_url!r})"], cwd=ROOT, env=env, check=True)
        subprocess.run([bansos, "seed-demo", "--recipients", "30"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "python"), "scripts/run_scaled.py", "--no-demo"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        db = Database(database_url)
        topology = Topology(
            env={**env, "RASA_URLS": f"http://127.0.0.1:{ports['RASA1_PORT']},http://127.0.0.1:{ports['RASA2_PORT']}"},
            webs=[f"http://127.0.0.1:{ports['WEB1_PORT']}", f"http://127.0.0.1:{ports['WEB2_PORT']}"],
            api=api, db=db, process=process, log=log,
        )
        try:
            _wait_ready(topology)
            yield topology
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            db.dispose()
            admin = create_engine(base.set(drivername="postgresql+psycopg", database="postgres"),
                                  isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
            # The trackers hold what the test phones typed; nothing is left behind.
            for db_number in (REDIS_DB, TRACKER_DB):
                redis.Redis.from_url(f"{REDIS}/{db_number}").flushdb()


def test_forms_spread_over_two_web_hosts_survive_a_rasa_replica_killed_half_way(topology: Topology) -> None:
    phones = [f"+6281399{n:06d}" for n in range(6)]
    for turn, (text_, expected) in enumerate(USUL_STEPS):
        if turn == 3:
            killed = topology.rasa_urls()[0]
            assert any(topology.replica_of(phone) == killed for phone in phones), "no form on the first replica"
            os.kill(_listener_pid(int(killed.rsplit(":", 1)[1])), signal.SIGKILL)
        for n, phone in enumerate(phones):
            web = topology.webs[(n + turn) % 2]
            answer = topology.answer(web, phone, text_)
            assert expected.lower() in answer.lower(), f"{phone} turn {turn}: {answer!r}"
    with topology.db.session() as session:
        filed = session.execute(text("SELECT count(*) FROM reports WHERE kind = 'usul'")).scalar_one()
    assert filed == len(phones), f"every form filed once, not {filed} times"


def test_no_answer_reaches_a_phone_twice(topology: Topology) -> None:
    repeated = Counter((m["to"], m["body"]) for m in topology.api.sent if m["to"].startswith("+6281399"))
    assert [pair for pair, count in repeated.items() if count > 1] == []
    with topology.db.session() as session:
        waiting = session.execute(
            text("SELECT count(*) FROM messages WHERE direction = 'in' AND status IN ('received', 'at_rasa', 'needs_followup')")
        ).scalar_one()
    assert waiting == 0, "every message was answered"


def test_two_dispatchers_send_each_notice_once(topology: Topology) -> None:
    deadline = time.monotonic() + 120
    while True:
        with topology.db.session() as session:
            pending, sent = session.execute(
                text("SELECT count(*) FILTER (WHERE status IN ('pending', 'claimed', 'sending')), "
                     "count(*) FILTER (WHERE status = 'sent') FROM notices")
            ).one()
        if sent and not pending:
            break
        assert time.monotonic() < deadline, f"notices not sent: {pending} pending, {sent} sent; see {topology.log}"
        time.sleep(1)
    notices = [(m["to"], m["body"]) for m in topology.api.sent if not m["to"].startswith("+6281399")]
    assert len(notices) == sent and len(set(notices)) == len(notices), "no number messaged twice"
