"""Load benchmark: simulated phones against the app under gunicorn, with real Rasa replicas.

On a fresh database (a fresh PostgreSQL schema when PostgreSQL answers at
BENCH_DATABASE_URL, TEST_DATABASE_URL or the local default; else SQLite, and it says
so) seeded with the demo data set, it starts the real action server and two real Rasa
replicas on the cached model, both keeping conversations in one Redis tracker store,
then the app as the Procfile runs it: gunicorn (workers and threads as in the
Procfile) and the answer workers (`python -m bot.conversation.answerer`). Twilio's REST
API is a local fake in this process, so an answer may reach a phone two ways: in the
webhook's TwiML, or later through the API when Rasa did not answer within the
webhook's budget or the message was queued. Each phone waits for its answer on either
path, and every figure is settled afterwards per inbound message from the database
and the fake API's log: which path answered it and when, whether it was answered at
all, and whether it was answered twice (a defect, reported as `twice`).

Simulated phones, SMS and WhatsApp, hold short conversations: greeting and menu,
status checks with the demo NIKs, JADWAL and RIWAYAT from registered phones, a
one-message complaint and a look-up of its reference, programme questions, a request
for a person. Every message is a correctly signed Twilio webhook.

The runs:

1. rasa direct: the same conversations posted straight to one replica's REST channel,
   as the app would post them (keywords already turned into intents): the baseline;
2. app, Rasa x1 and x2, with 16 and 64 phones (--phones): the whole path, RASA_URLS
   naming one replica, then both; closed loop, a phone sends its next message when it
   has the answer to the last one. Each run is measured for --seconds after a warm-up,
   and --rounds rounds of x1 and x2 taken in turn are pooled (a shared machine's load
   drifts);
3. burst: open loop at --burst-factor times the best x2 rate for --burst-seconds, each
   message from one of many phones on a fixed schedule whatever the answers; then
   the time to drain the backlog, the longest wait, and the webhook's slowest response
   (Twilio gives up on a webhook after 15 s);
4. replica killed: --form-phones SMS phones file a complaint through the six-question
   form; when they are two questions in on average, one replica is SIGKILLed. Every
   form must go on at the other replica (the right next question each time) and end
   with a reference number; late answers are counted and timed;
5. app, instant Rasa: the app with a stand-in Rasa that answers at once (in a process
   of its own), so what remains is our code and the WSGI server.

Prints messages/s and latency p50/p95/p99/max (end to end, as the phone sees it, by
either path), how many came late through the API, errors, apologies, lost and
twice-answered messages, CPU per message by process role, the x2/x1 ratios, and
writes the latency-over-time plot to reports/bench_load.svg.

    .venv/bin/python scripts/bench_load.py [--quick] [--seconds 15] [--rounds 2] [--burst-seconds 60]
"""
from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import platform
import random
import re
import secrets
import signal
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from bot.conversation import replies  # noqa: E402
from bot.conversation.keywords import rasa_input  # noqa: E402
from bot.conversation.models import Contact, Direction, Message  # noqa: E402
from bot.conversation.rasa_client import rendezvous_order  # noqa: E402
from bot.conversation.turns import UNSETTLED  # noqa: E402
from bot.db import Database  # noqa: E402
from bot.registry.demo import DEMO_PERSONAS, seed_demo  # noqa: E402
from bot.registry.models import Recipient  # noqa: E402
from bot.reports.models import Report  # noqa: E402
from scripts.rasa_model import ensure_model  # noqa: E402
from scripts.svgplot import Panel, Point, latency_plot  # noqa: E402
from tools.databases import fresh_database_url  # noqa: E402
from tools.fake_rasa import FakeRasa  # noqa: E402
from tools.fake_twilio import SERVICE_NUMBER, TEST_ACCOUNT_SID, FakeTwilioApi  # noqa: E402
from tools.processes import E2E_RASA_TOKEN, RasaReplica, action_server, free_port, rasa_replica  # noqa: E402

AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
SECRET_KEY = "e2e-secret"  # the action server's, from tools/processes.py
PATH = "/webhooks/twilio/messages"
PLOT = ROOT / "reports" / "bench_load.svg"
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
# A Redis database of the benchmark's own; keys under a fresh prefix, deleted at the end.
TRACKER_STORE_URL = "redis://127.0.0.1:6379/6"
# The first seconds of a closed-loop run are not measured: Rasa's first answers after
# start-up are slow (graph and TensorFlow warm-up), and 64 phones take a round of
# answers to reach a steady state.
WARM_UP_SECONDS = 5
# A phone with no answer after this long counts its message lost and moves on.
LOST_AFTER_SECONDS = 90
# After the first part of an answer through the API, the phone reads until no part
# came for this long: a WhatsApp answer may be several messages, sent one by one.
PART_GAP_SECONDS = 0.25
# Twilio waits this long for a webhook's response, then gives up (error 11200): an
# answer in a later TwiML response never reaches the citizen. The phones do the same.
TWILIO_WEBHOOK_LIMIT_SECONDS = 15
# The burst's senders, at most: Twilio posts on schedule however slow the app is, so
# up to rate x TWILIO_WEBHOOK_LIMIT_SECONDS webhooks may be waiting at once.
MAX_BURST_SENDERS = 1500
# Each burst phone sends once every this many seconds: many phones, each rarely.
BURST_PHONE_GAP_SECONDS = 20
# How long the backlog after a burst may take to drain before the run gives up on it.
DRAIN_LIMIT_SECONDS = 600
# The replica is killed once the form phones are this many answers in, on average.
KILL_AFTER_TURNS = 2
UNREGISTERED_NIK = "3273014407950008"
_REFERENCE_RE = re.compile(r"\b(?:ADU|USL|SGH)-\d{8}-[A-Z0-9]{4}\b")
# The complaint form turn by turn (tests/e2e/test_reports.py): what to send, and what
# the next question must ask; the last answer must carry a reference number.
COMPLAINT_FORM = [
    ("ADU", "jenis aduan"),
    ("dana belum diterima", "isi aduan"),
    ("Dana PKH tahap 3 belum masuk ke rekening KKS saya", "LEWATI"),
    ("lewati", "alamat"),
    ("lewati", "Ringkasan pengaduan"),
    ("ya", "TIKET ADU-"),
]
_sids = itertools.count(1)
_numbers = itertools.count(1)


# ---- the simulated phones -------------------------------------------------------------


@dataclass
class Script:
    """One phone's conversation; `follow` may add a message from the last answer."""

    number: str
    whatsapp: bool
    texts: list[str]
    follow: Callable[[str], str | None] | None = None
    registered: bool = False

    @property
    def address(self) -> str:
        """The phone as Twilio names it, in the webhook's From and the API's To."""
        return f"whatsapp:{self.number}" if self.whatsapp else self.number


def _ticket_lookup(answer: str) -> str | None:
    match = _REFERENCE_RE.search(answer)
    return f"TIKET {match.group(0)}" if match else None


def _fresh_number() -> str:
    """A valid Telkomsel number nobody registered."""
    return f"+62813{next(_numbers):08d}"


class Population:
    """Draws conversations in a realistic mix; registered phones come from the database.

    A registered number is lent to one conversation at a time (`release` gives it
    back): a phone knows its answer by the number it arrives at.
    """

    def __init__(self, registered: list[str], seed: int = 8) -> None:
        self.random = random.Random(seed)
        self.free = deque(registered)
        self.niks = [persona.nik for persona in DEMO_PERSONAS] + [UNREGISTERED_NIK]
        self.lock = threading.Lock()
        self.kinds: list[tuple[int, Callable[[], Script]]] = [
            (25, self._newcomer),
            (20, self._nik_check),
            (30, self._registered),
            (10, self._complaint),
            (10, self._programme_question),
            (5, self._wants_a_person),
        ]

    def next(self) -> Script:
        with self.lock:
            make = self.random.choices([k for _, k in self.kinds], [w for w, _ in self.kinds])[0]
            return make()

    def release(self, script: Script) -> None:
        if script.registered:
            with self.lock:
                self.free.append(script.number)

    def _phone(self, texts: list[str], number: str | None = None, **kw: Any) -> Script:
        return Script(number or _fresh_number(), self.random.random() < 0.5, texts, **kw)

    def _newcomer(self) -> Script:
        return self._phone([self.random.choice(["halo", "Assalamualaikum", "selamat pagi"]), "MENU", "terima kasih"])

    def _nik_check(self) -> Script:
        return self._phone(["cek bansos", f"CEK {self.random.choice(self.niks)}"])

    def _registered(self) -> Script:
        if not self.free:
            return self._newcomer()
        first = self.random.choice(["halo", "cek bansos saya", "kapan bansos cair?"])
        return self._phone([first, "JADWAL", "RIWAYAT"], number=self.free.popleft(), registered=True)

    def _complaint(self) -> Script:
        text = (
            f"ADU Siti Aminah {self.random.choice(self.niks)} Desa Pakansari "
            "dana PKH belum cair sejak bulan lalu"
        )
        return self._phone([text], follow=_ticket_lookup)

    def _programme_question(self) -> Script:
        return self._phone([self.random.choice(["apa itu PKH?", "bansos BPNT itu apa", "syarat dapat BLT apa saja"])])

    def _wants_a_person(self) -> Script:
        return self._phone(["PETUGAS", "tolong bantu saya, kartu KKS saya hilang"])


# ---- answers through the (fake) Twilio API ---------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """A message the app handed to the fake Twilio API: to whom, and when it arrived."""

    sid: str
    to: str
    body: str
    at: float  # time.monotonic()


class Inbox:
    """The fake Twilio REST API, recording each delivery and waking the phone it is for."""

    def __init__(self) -> None:
        self.api = FakeTwilioApi(on_create=self._arrived)
        self._changed = threading.Condition()
        self.by_sid: dict[str, Delivery] = {}
        self._by_to: dict[str, list[Delivery]] = {}

    def _arrived(self, message: dict[str, Any]) -> None:
        delivery = Delivery(message["sid"], message["to"], message["body"] or "", time.monotonic())
        with self._changed:
            self.by_sid[delivery.sid] = delivery
            self._by_to.setdefault(delivery.to, []).append(delivery)
            self._changed.notify_all()

    def mark(self, to: str) -> int:
        """How many deliveries `to` has had: `wait` looks only at later ones."""
        with self._changed:
            return len(self._by_to.get(to, ()))

    def wait(self, to: str, mark: int, timeout: float) -> list[Delivery]:
        """The deliveries to `to` after `mark`: the first within `timeout`, then any
        more parts that follow within PART_GAP_SECONDS of the last; [] if none came."""
        deadline = time.monotonic() + timeout
        with self._changed:
            seen = mark
            while True:
                found = len(self._by_to.get(to, ()))
                now = time.monotonic()
                if found > seen:
                    seen, deadline = found, now + PART_GAP_SECONDS
                elif now >= deadline:
                    return list(self._by_to.get(to, [])[mark:])
                self._changed.wait(deadline - now)


# ---- targets: the app's webhook, or Rasa's REST channel --------------------------------


@dataclass
class Sample:
    """One message: when it went, what answered it, by which path, and how fast."""

    sid: str  # our MessageSid; "" for Rasa direct
    sent: float  # time.monotonic()
    webhook_ms: float  # the webhook's response time (for Rasa direct, the whole exchange)
    texts: list[str]  # what the response itself answered (TwiML, or Rasa's list)
    # ok (in the response) | late (through the API) | apology | limited | lost | error |
    # timeout (no response within Twilio's limit: an answer in it was lost)
    outcome: str = "ok"
    latency_ms: float | None = None  # to the first answer, by either path
    answers: int = 1  # reply groups the phone got: more than one is a defect
    # From sending to the app storing it: time spent queued before the app saw it.
    stored_ms: float | None = None


def _twiml_texts(body: str) -> list[str]:
    return [message.text or "" for message in ET.fromstring(body).iter("Message")]


class AppTarget:
    """Posts signed Twilio webhooks; an empty TwiML means the answer follows by the API."""

    def __init__(self, base: str, inbox: Inbox) -> None:
        self.url = base + PATH
        self.inbox = inbox
        self.validator = RequestValidator(AUTH_TOKEN)

    def post(self, http: requests.Session, script: Script, text: str) -> Sample:
        """The webhook alone: the response's answer, if any, and how long it took."""
        form = {
            "MessageSid": f"SM{next(_sids):032x}",
            "AccountSid": TEST_ACCOUNT_SID,
            "From": script.address,
            "To": f"whatsapp:{SERVICE_NUMBER}" if script.whatsapp else SERVICE_NUMBER,
            "Body": text,
            "NumMedia": "0",
        }
        headers = {"X-Twilio-Signature": self.validator.compute_signature(self.url, form)}
        sent = time.monotonic()
        try:
            response = http.post(self.url, data=form, headers=headers, timeout=(5, TWILIO_WEBHOOK_LIMIT_SECONDS))
            texts = _twiml_texts(response.text) if response.status_code == 200 else []
            outcome = "ok" if response.status_code == 200 else "error"
        except requests.Timeout:
            texts, outcome = [], "timeout"
        except (requests.RequestException, ET.ParseError):
            texts, outcome = [], "error"
        return Sample(form["MessageSid"], sent, (time.monotonic() - sent) * 1000, texts, outcome)

    def exchange(self, http: requests.Session, script: Script, text: str) -> tuple[Sample, str]:
        """One message and its answer from either path (the phone's view, for pacing)."""
        mark = self.inbox.mark(script.address)
        sample = self.post(http, script, text)
        if sample.texts or sample.outcome != "ok":
            return sample, "\n".join(sample.texts)
        parts = self.inbox.wait(script.address, mark, LOST_AFTER_SECONDS)
        return sample, "\n".join(part.body for part in parts)


class RasaTarget:
    """Posts to Rasa's REST channel what the app would post; `[]` counts as an apology.

    Each phone talks under the conversation key of its contact, created before its
    first message is timed, so the actions find the same households and do the same
    work as behind the app.
    """

    def __init__(self, base: str, db: Database) -> None:
        self.url = base + "/webhooks/rest/webhook"
        self.db = db
        self.keys: dict[str, str] = {}
        self.lock = threading.Lock()

    def _key(self, number: str) -> str:
        with self.lock:
            if number not in self.keys:
                with self.db.session() as session:
                    contact = session.scalar(select(Contact).where(Contact.address == number))
                    if contact is None:
                        contact = Contact(address=number)
                        session.add(contact)
                        session.flush()
                    self.keys[number] = contact.conversation_key
            return self.keys[number]

    def exchange(self, http: requests.Session, script: Script, text: str) -> tuple[Sample, str]:
        channel = "whatsapp" if script.whatsapp else "sms"
        payload = {"sender": self._key(script.number), "message": rasa_input(text), "metadata": {"channel": channel}}
        sent = time.monotonic()
        try:
            response = http.post(self.url, json=payload, timeout=30)
            texts = [item.get("text") or "" for item in response.json()] if response.status_code == 200 else []
            outcome = ("ok" if texts else "apology") if response.status_code == 200 else "error"
        except (requests.RequestException, ValueError):
            texts, outcome = [], "error"
        took = (time.monotonic() - sent) * 1000
        return Sample("", sent, took, texts, outcome, latency_ms=took), " ".join(texts)


@dataclass
class Run:
    """A run's messages, the windows it was measured over, and the CPU used in them.

    Several rounds of one configuration pool into one run (`pooled`): on a shared
    machine the load of the neighbours moves from minute to minute, so rounds of two
    configurations taken in turn compare them more fairly than one long run each.
    """

    name: str
    samples: list[Sample] = field(default_factory=list)
    # The measured windows (time.monotonic()): messages sent in them, answers within them.
    windows: list[tuple[float, float]] = field(default_factory=list)
    # CPU seconds used in the windows, by process role.
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    # Inbound statuses in the database at the end, and API deliveries no message claims.
    statuses: Counter[str] = field(default_factory=Counter)
    stray: int = 0


# ---- CPU per message, by process, from /proc -------------------------------------------

_ROLES = (("bot.conversation.answerer", "answers"), ("rasa_sdk", "actions"), ("gunicorn", "web"), ("rasa run", "rasa"))
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _processes() -> dict[int, tuple[int, float]]:
    """Every process: its parent and the CPU seconds it used so far (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS)
    return found


def _role(pid: int) -> str | None:
    try:
        command = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None
    return next((role for needle, role in _ROLES if needle in command), None)


def cpu_by_role() -> dict[str, float]:
    """CPU seconds of the processes this benchmark started, summed by role; the load
    generator (this process, with the fake Twilio API, and the instant Rasa forked
    from it) apart. A replica killed during the measure takes its CPU with it."""
    processes = _processes()
    totals = {"load generator": time.process_time()}
    roles: dict[int, str | None] = {os.getpid(): None}
    pending = [os.getpid()]
    while pending:
        parent = pending.pop()
        for pid, (ppid, _) in processes.items():
            if ppid == parent and pid not in roles:
                roles[pid] = _role(pid) or roles[parent]
                pending.append(pid)
    for pid, role in roles.items():
        if role is not None:
            totals[role] = totals.get(role, 0.0) + processes[pid][1]
    return totals


def cpu_since(before: dict[str, float]) -> dict[str, float]:
    after = cpu_by_role()
    return {role: after[role] - before.get(role, 0.0) for role in after}


@contextmanager
def measured(run: Run) -> Iterator[None]:
    """The whole block is the run's one window: its time and CPU."""
    before, start = cpu_by_role(), time.monotonic()
    yield
    run.windows = [(start, time.monotonic())]
    run.cpu_seconds = cpu_since(before)


# ---- closed loop, open loop, and the settling of accounts ------------------------------


def drive(
    name: str, target: Any, population: Population, phones: int, warm_up: float, seconds: float,
    cpu: Callable[[], dict[str, float]] = cpu_by_role,
) -> Run:
    """`phones` phones at a time, each waiting for its answer; measured for `seconds`
    after `warm_up`, then each phone waits for its last answer and stops. `cpu` reads
    the CPU seconds used so far by role.

    Throughput is the answers that arrived inside the window, so neither the ramp-up
    nor the phones' last answers after it (a long tail at 64 phones) dilute it.
    """
    run = Run(name)
    lock = threading.Lock()
    start = time.monotonic()
    window = (start + warm_up, start + warm_up + seconds)
    run.windows = [window]

    def spent() -> bool:
        return time.monotonic() >= window[1]

    def phone() -> None:
        http = requests.Session()
        while not spent():
            script = population.next()
            try:
                queue = list(script.texts)
                while queue and not spent():
                    sample, answer = target.exchange(http, script, queue.pop(0))
                    with lock:
                        run.samples.append(sample)
                    if not queue and script.follow and answer:
                        more = script.follow(answer)
                        queue.extend([more] if more else [])
            finally:
                population.release(script)

    threads = [threading.Thread(target=phone) for _ in range(phones)]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, window[0] - time.monotonic()))
    before = cpu()
    time.sleep(max(0.0, window[1] - time.monotonic()))
    after = cpu()
    run.cpu_seconds = {role: after[role] - before.get(role, 0.0) for role in after}
    for thread in threads:
        thread.join()
    return run


@dataclass
class BurstTiming:
    """What the schedule asked of the load generator and how closely it kept to it."""

    rate: float
    seconds: float
    phones: int
    ended: float = 0.0  # time.monotonic() when the last message had gone
    lag_ms: list[float] = field(default_factory=list)


def burst(target: AppTarget, population: Population, rate: float, seconds: float, run: Run) -> BurstTiming:
    """Messages at `rate` a second for `seconds`, whatever the answers (open loop).

    Message i goes at i/rate from phone i mod P, P = rate x BURST_PHONE_GAP_SECONDS, so
    each phone sends once every gap, its conversation's texts in order, and is given a
    new conversation when one ends. The phones do not wait for answers; those are
    settled afterwards from the database.
    """
    phones = max(1, round(rate * BURST_PHONE_GAP_SECONDS))
    timing = BurstTiming(rate, seconds, phones)
    scripts: list[Script | None] = [None] * phones
    unsent: list[list[str]] = [[] for _ in range(phones)]
    local = threading.local()
    lock = threading.Lock()

    def send(script: Script, text: str, due: float) -> None:
        if not hasattr(local, "http"):
            local.http = requests.Session()
        sample = target.post(local.http, script, text)
        lag = sample.sent - due
        # Timed from the scheduled moment, when Twilio would have posted: a sender of
        # ours that was late must not hide a wait from the figures.
        sample.sent, sample.webhook_ms = due, sample.webhook_ms + lag * 1000
        with lock:
            run.samples.append(sample)
            timing.lag_ms.append(lag * 1000)

    start = time.monotonic()
    senders_needed = min(MAX_BURST_SENDERS, int(rate * TWILIO_WEBHOOK_LIMIT_SECONDS) + 50)
    with ThreadPoolExecutor(senders_needed, thread_name_prefix="burst") as senders:
        for i in range(int(rate * seconds)):
            slot = i % phones
            if not unsent[slot]:
                if scripts[slot] is not None:
                    population.release(scripts[slot])
                scripts[slot] = script = population.next()
                unsent[slot] = list(script.texts)
            due = start + i / rate
            time.sleep(max(0.0, due - time.monotonic()))
            senders.submit(send, scripts[slot], unsent[slot].pop(0), due)
        timing.ended = time.monotonic()  # the last message is on its way; its answer is not
    return timing


def wait_for_drain(db: Database, after_id: int, limit: float) -> float | None:
    """Wait until no inbound message past `after_id` waits for its answer: when that
    was first seen (time.monotonic()), None if not within `limit` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with db.session() as session:
            waiting = session.scalar(
                select(func.count()).where(
                    Message.id > after_id, Message.direction == Direction.INBOUND, Message.status.in_(UNSETTLED)
                )
            )
        if not waiting:
            drained = time.monotonic()
            # Settled comes just before sent: let the last answers reach the fake API.
            time.sleep(4 * PART_GAP_SECONDS)
            return drained
        time.sleep(0.5)
    return None


def last_message_id(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.max(Message.id))) or 0


_APOLOGIES = (replies.SERVICE_DOWN[:40], replies.STORAGE_DOWN[:40])
# The database stamps messages by the wall clock; the samples are on the monotonic one.
_WALL_MINUS_MONOTONIC = time.time() - time.monotonic()


def answered_in_response(run: Run) -> None:
    """Settle the samples of an app that stores nothing (scripts/bench_floor.py) by their
    responses alone: an answer in the TwiML, or lost."""
    for sample in run.samples:
        if sample.outcome == "ok" and sample.texts:
            sample.latency_ms = sample.webhook_ms
        elif sample.outcome == "ok":
            sample.outcome = "lost"


def settle_accounts(db: Database, inbox: Inbox, run: Run, since: float) -> None:
    """Settle each sample by its inbound message: the path and time of its first answer,
    apologies, and how many reply groups reached the phone.

    A reply group is the TwiML answer, or the API messages sent for the message
    (mapped through the outbound rows' provider sid): a group starts with the first
    text of the answer, so an answer sent twice shows that text twice. API deliveries
    since `since` that no message of this run claims are counted as stray.
    """
    by_sid = {sample.sid: sample for sample in run.samples if sample.sid}
    inbound: dict[str, tuple[int, str, float]] = {}
    sent_for: dict[int, list[Delivery]] = {}
    claimed: set[str] = set()
    sids = list(by_sid)
    with db.session() as session:
        for chunk in (sids[i:i + 500] for i in range(0, len(sids), 500)):
            for message_id, provider_sid, status, created_at in session.execute(
                select(Message.id, Message.provider_sid, Message.status, Message.created_at).where(
                    Message.direction == Direction.INBOUND, Message.provider_sid.in_(chunk)
                )
            ):
                inbound[provider_sid] = (message_id, status, created_at.timestamp() - _WALL_MINUS_MONOTONIC)
        ids = [message_id for message_id, _, _ in inbound.values()]
        for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
            for reply_to, provider_sid in session.execute(
                select(Message.in_reply_to_id, Message.provider_sid)
                .where(Message.in_reply_to_id.in_(chunk), Message.provider_sid.is_not(None))
                .order_by(Message.id)
            ):
                delivery = inbox.by_sid.get(provider_sid)
                if delivery is not None:
                    sent_for.setdefault(reply_to, []).append(delivery)
                    claimed.add(provider_sid)
    run.statuses = Counter(status for _, status, _ in inbound.values())
    run.stray = sum(1 for d in list(inbox.by_sid.values()) if d.at >= since and d.sid not in claimed)
    for sid, sample in by_sid.items():
        if sample.outcome == "error" or sid not in inbound:
            sample.outcome = "error" if sample.outcome == "ok" else sample.outcome
            continue
        message_id, _, stored_at = inbound[sid]
        sample.stored_ms = (stored_at - sample.sent) * 1000
        api = sorted(sent_for.get(message_id, []), key=lambda d: d.at)
        api_groups = sum(1 for d in api if d.body == api[0].body) if api else 0
        sample.answers = (1 if sample.texts else 0) + api_groups
        if sample.texts:
            sample.latency_ms = sample.webhook_ms
        elif api:
            sample.latency_ms = (api[0].at - sample.sent) * 1000
        everything = " ".join(sample.texts + [d.body for d in api])
        if any(apology in everything for apology in _APOLOGIES):
            sample.outcome = "apology"
        elif replies.TOO_MANY_MESSAGES[:40] in everything:
            sample.outcome = "limited"
        elif sample.latency_ms is None:
            # A webhook Twilio gave up on took its answer with it.
            sample.outcome = "timeout" if sample.outcome == "timeout" else "lost"
        else:
            sample.outcome = "ok" if sample.texts else "late"


# ---- the replica killed in the middle of forms -----------------------------------------


@dataclass
class FormPhone:
    """One complaint form: each answer, whether it asked the expected next question."""

    script: Script
    answers: list[str] = field(default_factory=list)
    in_order: list[bool] = field(default_factory=list)

    @property
    def reference(self) -> str | None:
        found = _REFERENCE_RE.search(self.answers[-1]) if len(self.answers) == len(COMPLAINT_FORM) else None
        return found.group(0) if found else None


@dataclass
class KillOutcome:
    """The forms, and which of them the killed replica had: those had to fail over."""

    run: Run
    forms: list[FormPhone]
    killed_at: float
    pinned_to_victim: int
    reports_filed: Counter[int]  # reports per form phone's contact


def forms_through_a_kill(target: AppTarget, db: Database, replicas: Sequence[RasaReplica], phones: int) -> KillOutcome:
    """`phones` SMS phones fill the complaint form; the last replica is SIGKILLed when
    they are KILL_AFTER_TURNS answers in on average. SMS, so each answer is one message."""
    victim = replicas[-1]
    run = Run("replica killed")
    forms = [FormPhone(Script(_fresh_number(), False, [sent for sent, _ in COMPLAINT_FORM])) for _ in range(phones)]
    lock = threading.Lock()
    answered = itertools.count(1)
    killed_at = [0.0]

    def fill(form: FormPhone) -> None:
        http = requests.Session()
        for sent, expected in COMPLAINT_FORM:
            sample, answer = target.exchange(http, form.script, sent)
            with lock:
                run.samples.append(sample)
                form.answers.append(answer)
                form.in_order.append(expected.lower() in answer.lower())
                if next(answered) == phones * KILL_AFTER_TURNS:
                    os.kill(victim.process.pid, signal.SIGKILL)
                    killed_at[0] = time.monotonic()
            if not answer:
                return  # lost: nothing to answer the next question with

    with measured(run):
        threads = [threading.Thread(target=fill, args=(form,)) for form in forms]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    with db.session() as session:
        contacts = dict(session.execute(
            select(Contact.address, Contact.id).where(Contact.address.in_([f.script.number for f in forms]))
        ).all())
        keys = session.scalars(select(Contact.conversation_key).where(Contact.id.in_(contacts.values()))).all()
        filed = Counter(session.scalars(select(Report.reporter_contact_id).where(
            Report.reporter_contact_id.in_(contacts.values())
        )).all())
    urls = [replica.url for replica in replicas]
    pinned = sum(1 for key in keys if rendezvous_order(urls, key)[0] == victim.url)
    return KillOutcome(run, forms, killed_at[0] - run.windows[0][0], pinned, filed)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_line() -> str:
    """What a benchmark's figures were measured on, printed first."""
    return (f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"load average {load_average()} at start")


# ---- the processes ----------------------------------------------------------------------


def _serve_instant_rasa(ready: Any, stop: Any) -> None:
    """The stand-in Rasa, in its own process so its CPU is not the load generator's."""
    with FakeRasa().serve(keep_alive=True) as server:
        ready.put(server.url)
        stop.wait()


@contextmanager
def instant_rasa() -> Iterator[str]:
    ready, stop = multiprocessing.Queue(), multiprocessing.Event()
    process = multiprocessing.Process(target=_serve_instant_rasa, args=(ready, stop), daemon=True)
    process.start()
    try:
        yield ready.get(timeout=30)
    finally:
        stop.set()
        process.join(10)


@contextmanager
def rasa_replicas(model: Path, action_url: str, work: Path, count: int, store_url: str) -> Iterator[list[RasaReplica]]:
    """`count` replicas of one model on one tracker store (under a fresh key prefix),
    started side by side: each spends most of a minute loading, and the loads overlap
    their waits. The store's keys are deleted at the end."""
    prefix = "bench" + secrets.token_hex(6)
    managers = [
        rasa_replica(model, action_url, _folder(work / f"rasa-{i}"), tracker_store_url=store_url, tracker_key_prefix=prefix)
        for i in range(count)
    ]
    with ExitStack() as stack:
        if store_url:
            stack.callback(_delete_keys, store_url, prefix)
        with ThreadPoolExecutor(count) as pool:
            starts = [pool.submit(manager.__enter__) for manager in managers]
        for manager, start in zip(managers, starts):
            if start.exception() is None:
                stack.push(manager.__exit__)
        yield [start.result() for start in starts]


def _folder(path: Path) -> Path:
    path.mkdir(exist_ok=True)
    return path


def _delete_keys(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(f"{prefix}:*"))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i:i + 500])
    finally:
        client.close()


def redis_reachable(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def app_environment(database_url: str, rasa_urls: Sequence[str], twilio_api: str) -> dict[str, str]:
    """The settings gunicorn and the answer workers share: answers through the fake API."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "RASA_URL": rasa_urls[0],
        "RASA_URLS": ",".join(rasa_urls),
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
        "TWILIO_API_BASE": twilio_api,
        "TWILIO_SMS_FROM": SERVICE_NUMBER,
        "TWILIO_WHATSAPP_FROM": SERVICE_NUMBER,
        "TWILIO_MESSAGING_SERVICE_SID": "",
        "PUBLIC_BASE_URL": "",
        "SMS_TRANSPORT": "",
        "SECRET_KEY": SECRET_KEY,
        "RASA_TOKEN": E2E_RASA_TOKEN,
        "ENV_FILE": os.devnull,
    }


@contextmanager
def _service(
    command: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    """A process of the app, in a session of its own; SIGTERM to its group at the end."""
    with log.open("ab") as out:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def app(env: dict[str, str], workers: int, threads: int, work: Path) -> Iterator[str]:
    """The app as `make run` serves it: gunicorn on a free port plus the answer workers;
    yields the web's base URL once it answers."""
    port = free_port()
    log = work / "gunicorn.log"
    gunicorn = [
        str(ROOT / ".venv" / "bin" / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"),
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
        "app:create_app()",
    ]
    answerer = [str(ROOT / ".venv" / "bin" / "python"), "-m", "bot.conversation.answerer"]
    with _service(gunicorn, env, log) as web, _service(answerer, env, work / "answers.log"):
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                if web.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.2)
        yield base


@contextmanager
def database(work: Path) -> Iterator[tuple[str, str]]:
    """A fresh database: a PostgreSQL schema if PostgreSQL answers, else SQLite; yields
    (backend, url)."""
    candidate = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or LOCAL_POSTGRES
    backend = "postgresql" if _postgres_answers(candidate) else "sqlite"
    if backend == "postgresql":
        os.environ["TEST_DATABASE_URL"] = candidate
    with fresh_database_url(backend, work) as url:
        yield backend, url


def _postgres_answers(url: str) -> bool:
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means: use SQLite, and say so
        return False
    finally:
        engine.dispose()


def registered_phones(db: Database) -> list[str]:
    with db.session() as session:
        return list(session.scalars(select(Recipient.phone).where(Recipient.phone.is_not(None)).order_by(Recipient.id)))


# ---- the report -------------------------------------------------------------------------


def _quantiles(values: Sequence[float]) -> list[float]:
    ordered = sorted(values)
    if len(ordered) > 1:
        return statistics.quantiles(ordered, n=100, method="inclusive")
    return (ordered or [0.0]) * 99


def pooled(runs: Sequence[Run]) -> Run:
    """The rounds of one configuration as one run."""
    run = Run(runs[0].name)
    for part in runs:
        run.samples += part.samples
        run.windows += part.windows
        run.statuses += part.statuses
        run.stray += part.stray
        for role, seconds in part.cpu_seconds.items():
            run.cpu_seconds[role] = run.cpu_seconds.get(role, 0.0) + seconds
    return run


def _window_of(run: Run, at: float) -> tuple[float, float] | None:
    return next((window for window in run.windows if window[0] <= at < window[1]), None)


def _sent_in_window(run: Run) -> list[Sample]:
    return [s for s in run.samples if _window_of(run, s.sent)]


def _answered_in_window(run: Run) -> int:
    return sum(
        1 for s in run.samples if s.latency_ms is not None and _window_of(run, s.sent + s.latency_ms / 1000)
    )


def summary(run: Run) -> dict[str, float]:
    """Latency, outcomes and CPU per message of the messages sent in the windows;
    throughput from the answers that arrived in them (in a steady state as many
    messages are sent in a window as answered, but a webhook Twilio gave up on
    delivers no answer, and the CPU was spent all the same)."""
    samples = _sent_in_window(run)
    latencies = [s.latency_ms for s in samples if s.latency_ms is not None]
    cuts = _quantiles(latencies)
    outcomes = Counter(s.outcome for s in samples)
    seconds = sum(end - start for start, end in run.windows)
    return {
        "messages": len(samples),
        "rate": _answered_in_window(run) / seconds if seconds else 0.0,
        "p50": cuts[49],
        "p95": cuts[94],
        "p99": cuts[98],
        "max": max(latencies, default=0.0),
        "late": outcomes["late"],
        "errors": outcomes["error"],
        "timeouts": outcomes["timeout"],
        "apologies": outcomes["apology"],
        "limited": outcomes["limited"],
        "lost": outcomes["lost"],
        "twice": sum(1 for s in samples if s.answers > 1),
        "webhook max": max((s.webhook_ms for s in samples), default=0.0),
        "cpu per message": {role: cpu * 1000 / max(len(samples), 1) for role, cpu in run.cpu_seconds.items()},
    }


def _cpu_line(figures: dict[str, Any]) -> str:
    shown = [f"{role} {ms:.1f}" for role, ms in sorted(figures["cpu per message"].items()) if ms >= 0.05]
    return "CPU ms per message: " + ", ".join(shown)


def _unmeasured_defects(run: Run) -> str:
    """Defects among the messages outside the window (warm-up, last answers), if any."""
    window = set(map(id, _sent_in_window(run)))
    found = Counter(
        "twice" if s.answers > 1 else s.outcome
        for s in run.samples
        if id(s) not in window and (s.answers > 1 or s.outcome in ("error", "timeout", "lost", "apology"))
    )
    return ", ".join(f"{kind} {count}" for kind, count in sorted(found.items()))


def print_table(runs: list[Run]) -> None:
    print(f"\n{'run':<29} {'msgs':>5} {'msg/s':>6} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'late':>5} {'err':>4} {'15s+':>4} {'apol':>4} {'lost':>4} {'twice':>5} {'limit':>5}")
    for run in runs:
        f = summary(run)
        print(f"{run.name:<29} {f['messages']:>5.0f} {f['rate']:>6.1f} {f['p50']:>7.0f} {f['p95']:>7.0f} "
              f"{f['p99']:>7.0f} {f['max']:>7.0f} {f['late']:>5.0f} {f['errors']:>4.0f} {f['timeouts']:>4.0f} "
              f"{f['apologies']:>4.0f} {f['lost']:>4.0f} {f['twice']:>5.0f} {f['limited']:>5.0f}")
        print(f"{'':<4}{_cpu_line(f)}")
        if run.stray:
            print(f"{'':<4}API messages no message of this run claims: {run.stray}")
        if _unmeasured_defects(run):
            print(f"{'':<4}outside the window (warm-up, last answers): {_unmeasured_defects(run)}")


def _config_order(name: str) -> tuple[int, str]:
    """x1 before x2, each by its number of phones."""
    phones = int(name.split(", ")[-1].split()[0])
    return phones, name


def print_ratios(runs: dict[str, Run], rounds: dict[str, list[Run]], phone_counts: Sequence[int]) -> None:
    """Rasa x2 over x1, pooled and round by round; and the app over Rasa alone."""
    figures = {name: summary(run) for name, run in runs.items()}
    for phones in phone_counts:
        one, two = f"app, Rasa x1, {phones} phones", f"app, Rasa x2, {phones} phones"
        if one not in figures or two not in figures or not figures[one]["rate"]:
            continue
        by_round = ", ".join(
            f"x{summary(b)['rate'] / max(summary(a)['rate'], 0.01):.2f}" for a, b in zip(rounds[one], rounds[two])
        )
        print(f"Rasa x2 / x1 at {phones} phones: throughput x{figures[two]['rate'] / figures[one]['rate']:.2f} "
              f"(by round: {by_round}), p50 x{figures[two]['p50'] / max(figures[one]['p50'], 1):.2f}, "
              f"p95 x{figures[two]['p95'] / max(figures[one]['p95'], 1):.2f}")
    phones = phone_counts[0]
    rasa, app_one = figures.get(f"rasa direct, {phones} phones"), figures.get(f"app, Rasa x1, {phones} phones")
    if rasa and app_one and rasa["rate"] and rasa["p50"]:
        print(f"app x1 / rasa direct at {phones} phones: throughput x{app_one['rate'] / rasa['rate']:.2f}, "
              f"p50 x{app_one['p50'] / rasa['p50']:.2f}, overhead at p50 {app_one['p50'] - rasa['p50']:+.0f} ms")


def print_burst(run: Run, timing: BurstTiming, drained: float | None) -> None:
    f = summary(run)
    last_answer = max((s.sent + s.latency_ms / 1000 for s in run.samples if s.latency_ms is not None), default=0.0)
    once = sum(1 for s in run.samples if s.answers == 1)
    lag = _quantiles(timing.lag_ms)
    in_webhook = sum(1 for s in run.samples if s.outcome == "ok")
    print(f"\nburst: {f['messages']:.0f} messages at {timing.rate:.1f}/s for {timing.seconds:g} s, "
          f"from {timing.phones} phones in turn (each every {BURST_PHONE_GAP_SECONDS} s); "
          f"our senders behind schedule p95 {lag[94]:.0f} ms, max {max(timing.lag_ms, default=0):.0f} ms")
    print(f"  answered exactly once: {once}/{f['messages']:.0f}; twice: {f['twice']:.0f}; lost: {f['lost']:.0f}; "
          f"apologies: {f['apologies']:.0f}; webhook errors: {f['errors']:.0f}; "
          f"webhooks past Twilio's {TWILIO_WEBHOOK_LIMIT_SECONDS} s: {f['timeouts']:.0f}; "
          f"rate-limited: {f['limited']:.0f}; stray API messages: {run.stray}")
    print(f"  statuses in the database: {dict(sorted(run.statuses.items()))}")
    drain = f"{drained - timing.ended:.1f} s" if drained else f"not drained within {DRAIN_LIMIT_SECONDS} s"
    print(f"  backlog drained (every message settled) {drain} after the burst ended, the last answer delivered "
          f"{last_answer - timing.ended:.1f} s after; answered in the webhook: {in_webhook}, "
          f"through the API: {f['late']:.0f}")
    stored_ms = [s.stored_ms for s in run.samples if s.stored_ms is not None]
    stored = _quantiles(stored_ms)
    print(f"  wait p50 {f['p50'] / 1000:.1f} s, p95 {f['p95'] / 1000:.1f} s, longest {f['max'] / 1000:.1f} s; "
          f"webhook response max {f['webhook max'] / 1000:.1f} s (Twilio's limit {TWILIO_WEBHOOK_LIMIT_SECONDS} s)")
    print(f"  stored by the app after p50 {stored[49] / 1000:.1f} s, p95 {stored[94] / 1000:.1f} s, "
          f"max {max(stored_ms, default=0) / 1000:.1f} s (waiting for a gunicorn thread before that)")
    print(f"  {_cpu_line(f)} (burst and drain)")


def print_kill(outcome: KillOutcome) -> None:
    forms, run = outcome.forms, outcome.run
    f = summary(run)
    finished = sum(1 for form in forms if form.reference)
    in_order = sum(1 for form in forms if len(form.in_order) == len(COMPLAINT_FORM) and all(form.in_order))
    late = sorted(s.latency_ms for s in run.samples if s.outcome == "late" and s.latency_ms is not None)
    twice_filed = sum(1 for count in outcome.reports_filed.values() if count > 1)
    print(f"\nreplica killed: {len(forms)} complaint forms of {len(COMPLAINT_FORM)} turns, two replicas; "
          f"one SIGKILLed {outcome.killed_at:.1f} s in, {outcome.pinned_to_victim} forms pinned to it")
    print(f"  forms with every next question right: {in_order}/{len(forms)}; "
          f"finished with a reference: {finished}/{len(forms)}; reports filed: "
          f"{sum(outcome.reports_filed.values())} ({twice_filed} forms filed twice)")
    how_late = f" (p50 {statistics.median(late) / 1000:.1f} s, max {late[-1] / 1000:.1f} s)" if late else ""
    print(f"  answers through the API (late): {len(late)}{how_late}; lost: {f['lost']:.0f}; "
          f"twice: {f['twice']:.0f}; apologies: {f['apologies']:.0f}; "
          f"errors: {f['errors'] + f['timeouts']:.0f}")
    for form in forms:
        if not form.reference or not all(form.in_order):
            steps = " | ".join(answer.replace("\n", " ")[:60] for answer in form.answers)
            print(f"  {form.script.number} went wrong: {steps}")


def _points(run: Run) -> list[Point]:
    """Each message at the second it was sent into its window (rounds overlay); a
    webhook Twilio gave up on at the moment it did."""
    points = []
    for sample in run.samples:
        window = _window_of(run, sample.sent)
        shown = sample.webhook_ms if sample.outcome == "timeout" else sample.latency_ms
        if window and shown is not None:
            points.append(Point(sample.sent - window[0], shown, sample.outcome))
    return points


# ---- the whole benchmark ------------------------------------------------------------------


@dataclass
class Bench:
    """The shared pieces of one benchmark: database, fake API, replicas, options."""

    args: argparse.Namespace
    db: Database
    url: str
    inbox: Inbox
    twilio_api: str
    phones: list[str]
    work: Path

    def population(self, seed: int = 8) -> Population:
        """Every run draws the same conversations, in the same order."""
        return Population(self.phones, seed)

    def closed_loop(self, name: str, target: Any, phones: int) -> Run:
        since = time.monotonic()
        run = drive(name, target, self.population(), phones, WARM_UP_SECONDS, self.args.seconds)
        if isinstance(target, AppTarget):
            time.sleep(4 * PART_GAP_SECONDS)  # an answer sent twice would arrive about now
            settle_accounts(self.db, self.inbox, run, since)
        print(f"  {name}: {summary(run)['rate']:.1f} msg/s", flush=True)
        return run

    def replica_rounds(self, replicas: Sequence[RasaReplica]) -> dict[str, list[Run]]:
        """The app with one replica and with two, in turn, --rounds times; each
        configuration's runs by name, one a round.

        The order turns round each time (x1 x2, x2 x1, ...) so a drift in the
        neighbours' load falls on both alike. Only one app runs at a time: the answer
        workers of one would take the other's queued messages.
        """
        rounds: dict[str, list[Run]] = {}
        for round_ in range(self.args.rounds):
            for copies in (1, 2) if round_ % 2 == 0 else (2, 1):
                env = app_environment(self.url, [replica.url for replica in replicas[:copies]], self.twilio_api)
                with app(env, self.args.workers, self.args.threads, self.work) as base:
                    for phones in self.args.phones:
                        name = f"app, Rasa x{copies}, {phones} phones"
                        rounds.setdefault(name, []).append(self.closed_loop(name, AppTarget(base, self.inbox), phones))
        return rounds

    def open_loop(self, replicas: Sequence[RasaReplica], capacity: float) -> tuple[Run, BurstTiming, float | None]:
        rate = capacity * self.args.burst_factor
        run = Run(f"burst x{self.args.burst_factor:g} for {self.args.burst_seconds:g} s")
        env = app_environment(self.url, [replica.url for replica in replicas], self.twilio_api)
        with app(env, self.args.workers, self.args.threads, self.work) as base:
            before, since = last_message_id(self.db), time.monotonic()
            with measured(run):
                timing = burst(AppTarget(base, self.inbox), self.population(), rate, self.args.burst_seconds, run)
                drained = wait_for_drain(self.db, before, DRAIN_LIMIT_SECONDS)
        settle_accounts(self.db, self.inbox, run, since)
        print(f"  burst: {len(run.samples)} messages, drained: {drained is not None}", flush=True)
        return run, timing, drained

    def kill(self, replicas: Sequence[RasaReplica]) -> KillOutcome:
        env = app_environment(self.url, [replica.url for replica in replicas], self.twilio_api)
        with app(env, self.args.workers, self.args.threads, self.work) as base:
            since = time.monotonic()
            outcome = forms_through_a_kill(AppTarget(base, self.inbox), self.db, replicas, self.args.form_phones)
            time.sleep(4 * PART_GAP_SECONDS)
            settle_accounts(self.db, self.inbox, outcome.run, since)
        return outcome


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=lambda s: [int(n) for n in s.split(",")], default=[16, 64],
                        help="phones talking at once in the closed-loop runs (default 16,64)")
    parser.add_argument("--seconds", type=float, default=15,
                        help=f"measured part of each closed-loop run, after {WARM_UP_SECONDS} s (default 15)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of Rasa x1 and x2 in turn, pooled (default 2)")
    parser.add_argument("--burst-seconds", type=float, default=60, help="length of the burst (default 60)")
    parser.add_argument("--burst-factor", type=float, default=5, help="the burst's rate over the x2 capacity (default 5)")
    parser.add_argument("--form-phones", type=int, default=16, help="forms in flight when a replica dies (default 16)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2, as the Procfile)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (default 4)")
    parser.add_argument("--households", type=int, default=300, help="demo households besides the personas")
    parser.add_argument("--quick", action="store_true",
                        help="a short run of everything: one round of 5 s windows, a 10 s burst, 8 forms, "
                             "100 households")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds, args.burst_seconds, args.form_phones, args.households = 5, 1, 10, 8, 100
    return args


def main() -> None:
    args = parse_args()
    # Python's servers queue 5 connections by default: lost SYNs would measure the stubs.
    socketserver.TCPServer.request_queue_size = 256
    print(machine_line(), flush=True)
    store = TRACKER_STORE_URL if redis_reachable(TRACKER_STORE_URL) else ""
    inbox = Inbox()
    panels: list[Panel] = []
    with tempfile.TemporaryDirectory(prefix="bansos-bench-load-") as tmp, inbox.api.serve(keep_alive=True) as fake_api:
        work = Path(tmp)
        with database(work) as (backend, url):
            db = Database(url)
            try:
                db.upgrade()
                seed_demo(db, recipients=args.households)
                print(f"database: {backend}" + ("" if backend == "postgresql" else " (PostgreSQL did not answer)"))
                print(f"tracker store: {'Redis, ' + store if store else 'none (Redis did not answer): in memory'}")
                print(f"gunicorn {args.workers} workers x {args.threads} threads plus the answer workers; "
                      f"closed-loop runs {WARM_UP_SECONDS} s + {args.seconds:g} s measured, phones {args.phones}",
                      flush=True)
                bench = Bench(args, db, url, inbox, fake_api.url, registered_phones(db), work)
                panels = run_all(bench, store)
            finally:
                db.dispose()
    PLOT.parent.mkdir(exist_ok=True)
    PLOT.write_text(latency_plot("Latency per message over time (end to end, either path)", panels))
    print(f"\nplot: {PLOT.relative_to(ROOT)}; load average {load_average()} at the end")


def run_all(bench: Bench, store: str) -> list[Panel]:
    """Every run, printed as it finishes; returns the plot's panels."""
    args, work = bench.args, bench.work
    runs: list[Run] = []
    started = time.monotonic()
    with action_server(bench.url, work) as action_url, \
            rasa_replicas(ensure_model(quiet=True), action_url, work, 2, store) as replicas:
        print(f"action server and 2 Rasa replicas ready in {time.monotonic() - started:.0f} s", flush=True)
        rasa = RasaTarget(replicas[0].url, bench.db)
        runs += [bench.closed_loop(f"rasa direct, {args.phones[0]} phones", rasa, args.phones[0])]
        rounds = bench.replica_rounds(replicas)
        runs += [pooled(rounds[name]) for name in sorted(rounds, key=_config_order)]
        capacity = max(summary(run)["rate"] for run in runs if "Rasa x2" in run.name)
        print(f"  burst at {args.burst_factor:g} x {capacity:.1f} msg/s", flush=True)
        burst_run, timing, drained = bench.open_loop(replicas, capacity)
        killed = bench.kill(replicas)
    with instant_rasa() as stand_in:
        env = app_environment(bench.url, [stand_in], bench.twilio_api)
        with app(env, args.workers, args.threads, work) as base:
            runs.append(bench.closed_loop(f"app, instant Rasa, {args.phones[0]} phones", AppTarget(base, bench.inbox),
                                          args.phones[0]))
    print_table(runs)
    print_ratios({run.name: run for run in runs}, rounds, args.phones)
    print_burst(burst_run, timing, drained)
    print_kill(killed)
    panels = [Panel(run.name, _points(run)) for run in runs]
    return panels + [
        Panel(burst_run.name, _points(burst_run), own_scale=True),
        Panel(killed.run.name, _points(killed.run), own_scale=True),
    ]


if __name__ == "__main__":
    main()
