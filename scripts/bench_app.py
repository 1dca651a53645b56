"""The app's own CPU per message: earlier revisions of the app against today's, side by side.

Rasa's CPU per message is scripts/bench_turn.py's; this one is about our code alone.
A stand-in Rasa that answers at once (its own process, so its CPU is nobody's) sits
behind every app; each app runs as the Procfile runs it (gunicorn and the answer
workers) from its own copy of the code, taken with `git archive` from each revision
named (today's is this checkout), on the same interpreter and libraries and one fresh
database seeded with the demo data. In each round every app gets the same simulated
phones as scripts/bench_load.py (the same conversation mix, every message a signed
Twilio webhook), closed loop, a warm-up and then a measured window, one app at a time
(the answer workers of one would take another's queued messages); the order turns
round every other round, so a drifting machine load favours none. CPU is read from
/proc per process tree.

Printed per app: messages/s, p50/p95, the web process's and the answer workers' CPU
per message, and its CPU over the first revision's, pooled and round by round. A last
row, the floor, runs scripts/bench_floor.py in today's place: the webhook, its
signature, one call to Rasa and the TwiML, storing nothing, under the same gunicorn
settings; today's CPU less the floor's is what our own code costs.

    .venv/bin/python scripts/bench_app.py [--revisions REV,REV,...] [--quick] [--phones 4] [--seconds 15] [--rounds 3]
"""
from __future__ import annotations

import argparse
import io
import socketserver
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.db import Database  # noqa: E402
from bot.registry.demo import seed_demo  # noqa: E402
from scripts.bench_load import (  # noqa: E402
    PART_GAP_SECONDS, AppTarget, Inbox, Population, Run, _service, answered_in_response, app_environment, database,
    drive, instant_rasa, load_average, machine_line, pooled, registered_phones, settle_accounts, summary,
)
from scripts.bench_turn import _wait_for, cpu_of  # noqa: E402
from tools.processes import free_port  # noqa: E402

# The app as issue 15 found it after issues 16 and 17, then each step of its hot path
# (the README's table has a row for each).
DEFAULT_REVISIONS = ("4e51ad3", "ec44d97", "0f12f8f", "802de82", "10bb037", "35295bb", "3ba52b3", "56bc4d8")
WARM_UP_SECONDS = 5


@dataclass
class Variant:
    """One copy of the app's code and the rounds measured on it."""

    name: str
    root: Path
    rounds: list[Run] = field(default_factory=list)
    # What gunicorn serves; the floor stores nothing, so it has no accounts to settle.
    app: str = "app:create_app()"
    stores: bool = True


def checkout(revision: str, into: Path) -> Path:
    """The tree of `revision`, unpacked into `into` (no worktree left behind in .git)."""
    archive = subprocess.run(["git", "archive", "--format=tar", revision], cwd=ROOT, check=True,
                             capture_output=True).stdout
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


@contextmanager
def running_app(root: Path, env: dict[str, str], work: Path, app: str) -> Iterator[tuple[str, dict[str, int]]]:
    """gunicorn (as gunicorn.conf.py sizes it) serving `app`, and the answer workers, run
    from `root`'s code on this checkout's interpreter; yields the base URL and the
    process trees."""
    port = free_port()
    venv = ROOT / ".venv" / "bin"
    gunicorn = [str(venv / "gunicorn"), "--config", str(root / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}",
                app]
    answerer = [str(venv / "python"), "-m", "bot.conversation.answerer"]
    own = {**env, "PYTHONPATH": str(root)}
    with ExitStack() as stack:
        web = stack.enter_context(_service(gunicorn, own, work / "gunicorn.log", cwd=root))
        answers = stack.enter_context(_service(answerer, own, work / "answers.log", cwd=root))
        base = f"http://127.0.0.1:{port}"
        _wait_for(base + "/healthz", work / "gunicorn.log")
        yield base, {"web": web.pid, "answers": answers.pid}


def _label(revision: str) -> str:
    """The revision's short id and the start of its commit's subject."""
    line = subprocess.run(["git", "log", "-1", "--format=%h %s", revision], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()
    return line if len(line) <= 60 else line[:59] + "…"


def report(variants: list[Variant]) -> None:
    print(f"\n{'app':<60} {'msgs':>5} {'msg/s':>6} {'p50 ms':>7} {'p95 ms':>7} {'web':>5} {'answers':>7} "
          f"{'app':>5} {'app/before':>10}")
    before = variants[0]
    base = _app_cpu(pooled(before.rounds))
    for variant in variants:
        run = pooled(variant.rounds)
        f = summary(run)
        cpu = f["cpu per message"]
        print(f"{variant.name:<60} {f['messages']:>5.0f} {f['rate']:>6.1f} {f['p50']:>7.0f} {f['p95']:>7.0f} "
              f"{cpu['web']:>5.2f} {cpu['answers']:>7.2f} {_app_cpu(run):>5.2f} {_app_cpu(run) / base:>10.2f}")
        by_round = [_app_cpu(mine) / _app_cpu(theirs) for mine, theirs in zip(variant.rounds, before.rounds)]
        defects = {k: f[k] for k in ("errors", "timeouts", "apologies", "lost", "twice") if f[k]}
        print(f"{'':<4}round by round: " + ", ".join(f"{ratio:.2f}" for ratio in by_round)
              + (f"; defects {defects}" if defects else ""))
    today, floor = (_app_cpu(pooled(variant.rounds)) for variant in variants[-2:])
    print(f"\nour own code, today less the floor: {today - floor:.2f} of today's {today:.2f} ms CPU per message")


def _app_cpu(run: Run) -> float:
    cpu = summary(run)["cpu per message"]
    return cpu["web"] + cpu["answers"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--revisions", type=lambda text: [rev for rev in text.split(",") if rev],
                        default=list(DEFAULT_REVISIONS), help="earlier revisions, oldest first, the first the baseline")
    parser.add_argument("--phones", type=int, default=4, help="phones at a time (closed loop, as scripts/bench_turn.py)")
    parser.add_argument("--seconds", type=float, default=15, help="measured seconds per app and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one round of 8 s: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 8, 1
    return args


def main() -> None:
    args = parse_args()
    socketserver.TCPServer.request_queue_size = 256
    print(machine_line(), flush=True)
    inbox = Inbox()
    with tempfile.TemporaryDirectory(prefix="bansos-bench-app-") as tmp, inbox.api.serve(keep_alive=True) as fake_api, \
            instant_rasa() as stand_in:
        work = Path(tmp)
        variants = [Variant(_label(rev), checkout(rev, work / rev)) for rev in args.revisions]
        variants.append(Variant("today: this checkout", ROOT))
        variants.append(Variant("floor: scripts/bench_floor.py", ROOT, app="scripts.bench_floor:create_app()",
                                stores=False))
        with database(work) as (backend, url):
            db = Database(url)
            try:
                db.upgrade()
                seed_demo(db)
                print(f"database: {backend}; {args.phones} phones, {WARM_UP_SECONDS} s + {args.seconds:g} s "
                      f"per app and round, {args.rounds} round(s)", flush=True)
                env = app_environment(url, [stand_in], fake_api.url)
                population = Population(registered_phones(db))
                for number in range(args.rounds):
                    for variant in variants if number % 2 == 0 else reversed(variants):
                        folder = work / f"run-{variants.index(variant)}-{number}"
                        folder.mkdir()
                        with running_app(variant.root, env, folder, variant.app) as (base, trees):
                            since = time.monotonic()
                            run = drive(variant.name, AppTarget(base, inbox), population, args.phones,
                                        WARM_UP_SECONDS, args.seconds, cpu=cpu_of(trees))
                            time.sleep(4 * PART_GAP_SECONDS)  # an answer sent twice would arrive about now
                        if variant.stores:
                            settle_accounts(db, inbox, run, since)
                        else:
                            answered_in_response(run)
                        variant.rounds.append(run)
                        print(f"  round {number + 1}: {variant.name}: {summary(run)['messages']} messages, "
                              f"app {_app_cpu(run):.2f} ms CPU per message", flush=True)
            finally:
                db.dispose()
        report(variants)
    print(f"\nload average {load_average()} at the end")


if __name__ == "__main__":
    main()
