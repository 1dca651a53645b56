"""Load benchmark: simulated phones against the app under gunicorn, with the real Rasa.

On a fresh database (SQLite; a fresh PostgreSQL schema too when BENCH_DATABASE_URL or
TEST_DATABASE_URL is set) seeded with the demo data set, it starts the real Rasa
server (the cached trained model), the real action server and the app under gunicorn
(workers and threads as in the Procfile). Simulated phones, SMS and WhatsApp, each
hold a short conversation: greeting and menu, status checks with the demo NIKs,
JADWAL and RIWAYAT from registered phones, a one-message complaint and a look-up of
its reference, programme questions, a request for a person. Every message is a
correctly signed Twilio webhook; a phone sends its next message when the answer to
the last one has come, and --concurrency phones talk at once.

Three runs, each for at most --seconds or --messages:

1. rasa direct: the same conversations posted straight to Rasa's REST channel, as the
   app would post them (keywords already turned into intents): the baseline;
2. app: the whole path, webhook to Rasa and the action server and back;
3. app, instant Rasa: the app with a stand-in Rasa that answers at once (in a
   process of its own), so what remains is our code and the WSGI server.

Prints messages/s and latency p50/p95/p99/max (end to end, as the phone sees it),
errors, apologies and rate-limited answers for each run, the app's ratio to Rasa
alone, and writes the latency-over-time plot to reports/bench_load.svg.

    .venv/bin/python scripts/bench_load.py [--concurrency 16] [--seconds 15]
"""
from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import platform
import random
import re
import signal
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from sqlalchemy import select  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from bot.conversation import replies  # noqa: E402
from bot.db import Database  # noqa: E402
from bot.registry.demo import DEMO_PERSONAS, seed_demo  # noqa: E402
from bot.conversation.keywords import rasa_input  # noqa: E402
from bot.conversation.models import Contact  # noqa: E402
from bot.registry.models import Recipient  # noqa: E402
from scripts.rasa_model import ensure_model  # noqa: E402
from scripts.svgplot import Panel, Point, latency_plot  # noqa: E402
from tools.databases import fresh_database_url  # noqa: E402
from tools.fake_rasa import FakeRasa  # noqa: E402
from tools.processes import E2E_RASA_TOKEN, action_server, free_port, rasa_server  # noqa: E402

AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
SECRET_KEY = "e2e-secret"  # the action server's, from tools/processes.py
SERVICE_NUMBER = "+6281100000000"
PATH = "/webhooks/twilio/messages"
PLOT = ROOT / "reports" / "bench_load.svg"
# Rasa's first answers after start-up are slow (graph and TensorFlow warm-up).
WARM_UP_SECONDS = 2
UNREGISTERED_NIK = "3273014407950008"
_REFERENCE_RE = re.compile(r"\b(?:ADU|USL|SGH)-\d{8}-[A-Z0-9]{4}\b")
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


def _ticket_lookup(answer: str) -> str | None:
    match = _REFERENCE_RE.search(answer)
    return f"TIKET {match.group(0)}" if match else None


def _fresh_number() -> str:
    """A valid Telkomsel number nobody registered."""
    return f"+62813{next(_numbers):08d}"


class Population:
    """Draws conversations in a realistic mix; registered phones come from the database."""

    def __init__(self, registered: list[str], seed: int = 8) -> None:
        self.random = random.Random(seed)
        self.registered = itertools.cycle(registered)
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

    def _phone(self, texts: list[str], number: str | None = None, **kw: Any) -> Script:
        return Script(number or _fresh_number(), self.random.random() < 0.5, texts, **kw)

    def _newcomer(self) -> Script:
        return self._phone([self.random.choice(["halo", "Assalamualaikum", "selamat pagi"]), "MENU", "terima kasih"])

    def _nik_check(self) -> Script:
        return self._phone(["cek bansos", f"CEK {self.random.choice(self.niks)}"])

    def _registered(self) -> Script:
        first = self.random.choice(["halo", "cek bansos saya", "kapan bansos cair?"])
        return self._phone([first, "JADWAL", "RIWAYAT"], number=next(self.registered))

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


# ---- targets: the app's webhook, or Rasa's REST channel --------------------------------


@dataclass
class Sample:
    sent_at: float
    latency_ms: float
    outcome: str  # ok | apology | limited | error


class AppTarget:
    """Posts signed Twilio webhooks; an answer apologising for a fault is not an `ok`."""

    def __init__(self, base: str) -> None:
        self.url = base + PATH
        self.validator = RequestValidator(AUTH_TOKEN)

    def prepare(self, script: Script) -> None:
        """Nothing: the app creates contacts itself, inside the timed request."""

    def send(self, http: requests.Session, script: Script, text: str) -> tuple[str, str]:
        sender = f"whatsapp:{script.number}" if script.whatsapp else script.number
        form = {
            "MessageSid": f"SM{next(_sids):032x}",
            "AccountSid": "AC" + "0" * 32,
            "From": sender,
            "To": f"whatsapp:{SERVICE_NUMBER}" if script.whatsapp else SERVICE_NUMBER,
            "Body": text,
            "NumMedia": "0",
        }
        headers = {"X-Twilio-Signature": self.validator.compute_signature(self.url, form)}
        response = http.post(self.url, data=form, headers=headers, timeout=30)
        if response.status_code != 200:
            return "error", ""
        answer = response.text
        if replies.SERVICE_DOWN[:40] in answer or replies.STORAGE_DOWN[:40] in answer:
            return "apology", answer
        if replies.TOO_MANY_MESSAGES[:40] in answer:
            return "limited", answer
        return "ok", answer


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

    def prepare(self, script: Script) -> None:
        with self.lock:
            if script.number in self.keys:
                return
            with self.db.session() as session:
                contact = session.scalar(select(Contact).where(Contact.address == script.number))
                if contact is None:
                    contact = Contact(address=script.number)
                    session.add(contact)
                    session.flush()
                self.keys[script.number] = contact.conversation_key

    def send(self, http: requests.Session, script: Script, text: str) -> tuple[str, str]:
        channel = "whatsapp" if script.whatsapp else "sms"
        payload = {"sender": self.keys[script.number], "message": rasa_input(text), "metadata": {"channel": channel}}
        response = http.post(self.url, json=payload, timeout=30)
        if response.status_code != 200:
            return "error", ""
        answer = " ".join(item.get("text") or "" for item in response.json())
        return ("ok" if answer else "apology"), answer


@dataclass
class Run:
    name: str
    samples: list[Sample] = field(default_factory=list)
    seconds: float = 0.0
    # CPU milliseconds per message, by process role.
    cpu: dict[str, float] = field(default_factory=dict)


# ---- CPU per message, by process, from /proc -------------------------------------------

_ROLES = (("rasa_sdk", "actions"), ("gunicorn", "app"), ("rasa run", "Rasa"))
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
    generator (this process, and the instant Rasa forked from it) apart."""
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


def drive(name: str, target: Any, population: Population, concurrency: int, seconds: float, budget: int) -> Run:
    """`concurrency` phones at a time until the time or the message budget is used up."""
    run = Run(name)
    lock = threading.Lock()
    started = time.perf_counter()
    deadline = started + seconds

    def spent() -> bool:
        return time.perf_counter() >= deadline or len(run.samples) >= budget

    def phone() -> None:
        http = requests.Session()
        while not spent():
            script = population.next()
            target.prepare(script)
            queue = list(script.texts)
            while queue and not spent():
                text = queue.pop(0)
                sent = time.perf_counter()
                try:
                    outcome, answer = target.send(http, script, text)
                except requests.RequestException:
                    outcome, answer = "error", ""
                done = time.perf_counter()
                with lock:
                    run.samples.append(Sample(sent - started, (done - sent) * 1000, outcome))
                if not queue and script.follow and outcome == "ok":
                    more = script.follow(answer)
                    queue.extend([more] if more else [])

    cpu_before = cpu_by_role()
    threads = [threading.Thread(target=phone) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.seconds = time.perf_counter() - started
    cpu_after = cpu_by_role()
    count = max(len(run.samples), 1)
    run.cpu = {role: (cpu_after[role] - cpu_before.get(role, 0.0)) * 1000 / count for role in cpu_after}
    return run


def summary(run: Run) -> dict[str, float]:
    latencies = sorted(s.latency_ms for s in run.samples)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    outcomes = [s.outcome for s in run.samples]
    return {
        "messages": len(latencies),
        "rate": len(latencies) / run.seconds if run.seconds else 0.0,
        "p50": cuts[49],
        "p95": cuts[94],
        "p99": cuts[98],
        "max": latencies[-1] if latencies else 0.0,
        "errors": outcomes.count("error"),
        "apologies": outcomes.count("apology"),
        "limited": outcomes.count("limited"),
    }


def print_table(backend: str, runs: list[Run]) -> None:
    print(f"\n{backend}: {'run':<22} {'msgs':>6} {'msg/s':>7} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8} {'errors':>6} {'apology':>7} {'limited':>7}")
    figures = {run.name: summary(run) for run in runs}
    runs_by_name = {run.name: run for run in runs}
    for name, f in figures.items():
        print(f"{'':<{len(backend) + 2}}{name:<22} {f['messages']:>6.0f} {f['rate']:>7.1f} {f['p50']:>8.1f} "
              f"{f['p95']:>8.1f} {f['p99']:>8.1f} {f['max']:>8.1f} {f['errors']:>6.0f} "
              f"{f['apologies']:>7.0f} {f['limited']:>7.0f}")
        cpu = ", ".join(f"{role} {ms:.1f}" for role, ms in sorted(runs_by_name[name].cpu.items()) if ms >= 0.05)
        print(f"{'':<{len(backend) + 4}}CPU ms per message: {cpu}")
    rasa, app = figures.get("rasa direct"), figures.get("app")
    if rasa and app and rasa["rate"] and rasa["p50"]:
        print(f"{'':<{len(backend) + 2}}app / rasa direct: throughput x{app['rate'] / rasa['rate']:.2f}, "
              f"p50 x{app['p50'] / rasa['p50']:.2f}, p95 x{app['p95'] / rasa['p95']:.2f}, "
              f"app overhead at p50 {app['p50'] - rasa['p50']:+.1f} ms")


# ---- the processes ----------------------------------------------------------------------


def _serve_instant_rasa(ready: Any, stop: Any) -> None:
    """The stand-in Rasa, in its own process so its CPU is not the load generator's."""
    # Python's servers queue 5 connections by default: lost SYNs would measure the stub.
    socketserver.TCPServer.request_queue_size = 256
    with FakeRasa().serve() as server:
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
def gunicorn(database_url: str, rasa_url: str, workers: int, threads: int, log: Path) -> Iterator[str]:
    """The app as `make run` serves it, on a free port; yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "RASA_URL": rasa_url,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_ACCOUNT_SID": "",
        "PUBLIC_BASE_URL": "",
        "SMS_TRANSPORT": "",
        "SECRET_KEY": SECRET_KEY,
        "RASA_TOKEN": E2E_RASA_TOKEN,
        "ENV_FILE": os.devnull,
    }
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"),
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
        "app:create_app()",
    ]
    with log.open("ab") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def registered_phones(db: Database) -> list[str]:
    with db.session() as session:
        return list(session.scalars(select(Recipient.phone).where(Recipient.phone.is_not(None)).order_by(Recipient.id)))


def bench_backend(backend: str, args: argparse.Namespace, rasa_url: str, action_port: int, work: Path) -> list[Run]:
    """The three runs on a fresh, seeded database of `backend`."""
    with fresh_database_url(backend, work) as url:
        db = Database(url)
        try:
            db.upgrade()
            seed_demo(db, recipients=args.households)
            phones = registered_phones(db)
            log = work / f"gunicorn-{backend}.log"

            def run(name: str, target: Any, warm_up: bool = True) -> Run:
                """Every run draws the same conversations, in the same order."""
                if warm_up:
                    drive("warm-up", target, Population(phones, seed=99), args.concurrency, WARM_UP_SECONDS, 10**9)
                return drive(name, target, Population(phones), args.concurrency, args.seconds, args.messages)

            with action_server(url, work, port=action_port):
                runs = [run("rasa direct", RasaTarget(rasa_url, db))]
                with gunicorn(url, rasa_url, args.workers, args.threads, log) as base:
                    runs.append(run("app", AppTarget(base)))
            with instant_rasa() as stand_in, gunicorn(url, stand_in, args.workers, args.threads, log) as base:
                runs.append(run("app, instant Rasa", AppTarget(base), warm_up=False))
            return runs
        finally:
            db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=16, help="phones talking at once (default 16)")
    parser.add_argument("--seconds", type=float, default=15, help="length of each run (default 15)")
    parser.add_argument("--messages", type=int, default=2000, help="at most this many messages a run")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2, as the Procfile)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (default 4)")
    parser.add_argument("--households", type=int, default=300, help="demo households besides the personas")
    args = parser.parse_args()
    pg = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if pg:
        os.environ["TEST_DATABASE_URL"] = pg
    backends = ["sqlite"] + (["postgresql"] if pg else [])
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f} at start")
    print(f"{args.concurrency} phones at a time, {args.seconds:.0f} s a run, gunicorn {args.workers} workers "
          f"x {args.threads} threads")
    panels: list[Panel] = []
    with tempfile.TemporaryDirectory(prefix="bansos-bench-load-") as tmp:
        work = Path(tmp)
        action_port = free_port()
        started = time.monotonic()
        with rasa_server(ensure_model(quiet=True), f"http://127.0.0.1:{action_port}/webhook", work) as rasa_url:
            print(f"Rasa ready in {time.monotonic() - started:.0f} s", flush=True)
            for backend in backends:
                runs = bench_backend(backend, args, rasa_url, action_port, work)
                print_table(backend, runs)
                panels += [
                    Panel(f"{backend}: {run.name}", [Point(s.sent_at, s.latency_ms, s.outcome) for s in run.samples])
                    for run in runs
                ]
    PLOT.parent.mkdir(exist_ok=True)
    PLOT.write_text(latency_plot("Latency per message over time (end to end)", panels))
    print(f"\nplot: {PLOT.relative_to(ROOT)}; load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
