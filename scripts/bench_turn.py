"""CPU per conversational turn: the Rasa setup before issue 15 against today's, side by side.

Each configuration is one row of the README's table: a Rasa pipeline and policies
(a config file, its model trained once and cached like `make run`'s), and the
libraries and settings Rasa runs with. For each, this starts one Rasa process on the
Redis tracker store (as in production; in memory when Redis does not answer) and the
app in front of it as the Procfile runs it (gunicorn plus the answer workers), all on
one fresh database seeded with the demo data and one action server. Then rounds:
in each, every configuration in turn (in reverse order every other round, so a
drifting machine load favours none) gets the same simulated phones as
scripts/bench_load.py (the same conversation mix, every message a signed Twilio
webhook), closed loop, a warm-up and then a measured window. CPU is read from /proc
per process tree of that configuration, so the idle configurations' processes count
for nothing. Finally each distinct NLU model is scored on the held-out set with
scripts/eval_nlu.py (macro-F1 after the fallback, NIK and reference accuracy).

Printed per configuration: messages/s, p50/p95, Rasa, action server, web and answer
workers' CPU per message, the app's CPU as a share of Rasa's, and the ratio of Rasa's
CPU to the baseline's, pooled over the rounds and round by round. The last row, the
floor, serves scripts/bench_floor.py in the app's place in front of the shipped
configuration: what any message costs the web process on this stack, in the same run
and at the same pace; its CPU is also given as a share of the shipped row's Rasa.

    .venv/bin/python scripts/bench_turn.py [--quick] [--phones 4] [--seconds 20] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import socketserver
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.db import Database  # noqa: E402
from bot.registry.demo import seed_demo  # noqa: E402
from scripts.bench_load import (  # noqa: E402
    PART_GAP_SECONDS, TRACKER_STORE_URL, AppTarget, Inbox, Population, Run, _delete_keys, _processes, _service,
    answered_in_response, app_environment,
    load_average, machine_line,
    database, drive, pooled, redis_reachable, registered_phones, settle_accounts, summary,
)
from scripts.rasa_model import cache_dir, ensure_model  # noqa: E402
from scripts.run_rasa import TF_THREAD_DEFAULTS  # noqa: E402
from tools.processes import RasaReplica, action_server, free_port, rasa_replica  # noqa: E402

BASELINE_CONFIG = ROOT / "bench" / "baseline-config.yml"
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"
# Rasa 3.6's lock had jsonschema 4.17.3 before issue 15: validating each action server
# response against its schema cost 17 ms there, 2 ms with 3.2.0 (see the README).
BASELINE_JSONSCHEMA = "jsonschema==4.17.3"
WARM_UP_SECONDS = 5
# The row that is the configuration as it ships.
SHIPPED = "config.yml"


@dataclass(frozen=True)
class Setup:
    """One configuration: a name, what it changes, its Rasa config and extra environment,
    and the app gunicorn serves in front of it (the floor stores nothing to settle)."""

    name: str
    change: str
    config: Path
    rasa_env: dict[str, str] = field(default_factory=dict)
    app: str = "app:create_app()"
    stores: bool = True


@dataclass
class Stack:
    """A configuration's running processes: the app's URL and the process trees to read."""

    setup: Setup
    model: Path
    base: str
    trees: dict[str, int]  # role -> root pid
    rounds: list[Run] = field(default_factory=list)


def _library_overlay(requirement: str) -> Path:
    """A folder holding one library at another version, put first on Rasa's path; installed
    once with Rasa's pip and kept beside the cached models."""
    target = cache_dir().parent / "overlays" / requirement.replace("==", "-")
    if not (target / ".done").exists():
        subprocess.run(
            [str(RASA_PYTHON), "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), requirement],
            check=True,
        )
        (target / ".done").touch()
    return target


# TensorFlow's thread pools as TensorFlow sizes them (an empty value leaves them alone).
TF_DEFAULT_THREADS = {name: "" for name in TF_THREAD_DEFAULTS}


def _variant(base: Path, name: str, after: str, added: str) -> Path:
    """`base` with `added` written after the line `after`, beside the cached models (its
    model is cached by its content like any other)."""
    text = base.read_text()
    if after not in text:
        raise ValueError(f"{base.name} has no line {after.strip()!r} to change")
    path = cache_dir().parent / "configs" / f"{name}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace(after, after + added, 1))
    return path


def setups() -> list[Setup]:
    """The rows, each adding one change to the one before; `config.yml` is what ships."""
    overlay = _library_overlay(BASELINE_JSONSCHEMA)
    shipped = ROOT / "config.yml"
    return [
        Setup("before", "config.yml and Rasa's libraries before issue 15", BASELINE_CONFIG,
              {"PYTHONPATH": str(overlay), **TF_DEFAULT_THREADS}),
        Setup("jsonschema 3.2", "jsonschema 3.2.0 in Rasa's lock (4.17.3 before)", BASELINE_CONFIG,
              TF_DEFAULT_THREADS),
        Setup("no TED", "TEDPolicy removed: rules and memoization decide every action", shipped,
              TF_DEFAULT_THREADS),
        Setup(SHIPPED, "TensorFlow's thread pools at one thread each: as it ships", shipped),
        Setup("DIET 0 layers", "DIET without its transformer layers",
              _variant(shipped, "diet-no-transformer", "  - name: DIETClassifier\n",
                       "    number_of_transformer_layers: 0\n")),
        Setup("floor", "config.yml behind scripts/bench_floor.py: the webhook, its signature, Rasa and the "
              "TwiML, storing nothing (texts go to Rasa as written, keywords through the NLU)", shipped,
              app="scripts.bench_floor:create_app()", stores=False),
    ]


def _tree_cpu(root: int, processes: dict[int, tuple[int, float]]) -> float:
    total, pending, seen = 0.0, [root], set()
    while pending:
        pid = pending.pop()
        if pid in seen or pid not in processes:
            continue
        seen.add(pid)
        total += processes[pid][1]
        pending += [child for child, (parent, _) in processes.items() if parent == pid]
    return total


def cpu_of(trees: dict[str, int]) -> Callable[[], dict[str, float]]:
    def read() -> dict[str, float]:
        processes = _processes()
        return {role: _tree_cpu(pid, processes) for role, pid in trees.items()}

    return read


@contextmanager
def stack(setup: Setup, model: Path, env: dict[str, str], action: tuple[str, int], store: str,
          work: Path) -> Iterator[Stack]:
    """Rasa on the setup's model and the app in front of it (gunicorn 2 x 4 as the
    Procfile, and the answer workers)."""
    folder = work / setup.name.replace(" ", "-").replace(".", "")
    folder.mkdir()
    prefix = "bench" + secrets.token_hex(6)
    with ExitStack() as stack_:
        if store:
            stack_.callback(_delete_keys, store, prefix)
        replica: RasaReplica = stack_.enter_context(rasa_replica(
            model, action[0], folder, tracker_store_url=store, tracker_key_prefix=prefix, env=setup.rasa_env,
        ))
        app_env = app_environment(env["DATABASE_URL"], [replica.url], env["TWILIO_API_BASE"])
        port = free_port()
        gunicorn = [
            str(ROOT / ".venv" / "bin" / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"),
            "--bind", f"127.0.0.1:{port}", setup.app,
        ]
        answerer = [str(ROOT / ".venv" / "bin" / "python"), "-m", "bot.conversation.answerer"]
        web = stack_.enter_context(_service(gunicorn, app_env, folder / "gunicorn.log"))
        answers = stack_.enter_context(_service(answerer, app_env, folder / "answers.log"))
        base = f"http://127.0.0.1:{port}"
        _wait_for(base + "/healthz", folder / "gunicorn.log")
        trees = {"rasa": replica.process.pid, "actions": action[1], "web": web.pid, "answers": answers.pid}
        yield Stack(setup, model, base, trees)


def _wait_for(url: str, log: Path) -> None:
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer:\n{log.read_text()[-3000:]}")


def understanding(model: Path, work: Path) -> dict[str, Any]:
    """The held-out figures of one model, from scripts/eval_nlu.py in Rasa's environment."""
    out = work / f"eval-{model.stem}"
    out.mkdir(exist_ok=True)
    subprocess.run(
        [str(RASA_PYTHON), "scripts/eval_nlu.py", "--model", str(model), "--out", str(out),
         "--json", str(out / "report.json"), "--no-plot"],
        cwd=ROOT, check=True, capture_output=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return json.loads((out / "report.json").read_text())


def _per_message(run: Run) -> dict[str, float]:
    return summary(run)["cpu per message"]


def report(stacks: list[Stack], scores: dict[Path, dict[str, Any]]) -> None:
    base = _per_message(pooled(stacks[0].rounds))["rasa"]
    base_rounds = [_per_message(run)["rasa"] for run in stacks[0].rounds]
    print(f"\n{'configuration':<16} {'msgs':>5} {'msg/s':>6} {'p50 ms':>7} {'p95 ms':>7} {'Rasa':>6} "
          f"{'actions':>7} {'web':>5} {'answers':>7} {'app/Rasa':>8} {'Rasa/before':>11} {'macro-F1':>8} {'NIK/ref':>9}")
    for item in stacks:
        run = pooled(item.rounds)
        f = summary(run)
        cpu = f["cpu per message"]
        app = cpu["web"] + cpu["answers"]
        score = scores[item.model]
        print(f"{item.setup.name:<16} {f['messages']:>5.0f} {f['rate']:>6.1f} {f['p50']:>7.0f} {f['p95']:>7.0f} "
              f"{cpu['rasa']:>6.1f} {cpu['actions']:>7.1f} {cpu['web']:>5.1f} {cpu['answers']:>7.1f} "
              f"{app / cpu['rasa']:>8.0%} {cpu['rasa'] / base:>11.2f} {score['macro_f1']:>8.3f} "
              f"{score['entities']['nik']['accuracy']:>4.0%}/{score['entities']['ticket_ref']['accuracy']:.0%}")
        by_round = [_per_message(r)["rasa"] / b for r, b in zip(item.rounds, base_rounds)]
        defects = {k: f[k] for k in ("errors", "timeouts", "apologies", "lost", "twice") if f[k]}
        print(f"{'':<4}{item.setup.change}; Rasa/before round by round: "
              + ", ".join(f"{ratio:.2f}" for ratio in by_round) + (f"; defects {defects}" if defects else ""))
    shipped = next((item for item in stacks if item.setup.name == SHIPPED), None)
    for item in stacks:
        if not item.setup.stores and shipped is not None:
            rasa = _per_message(pooled(shipped.rounds))["rasa"]
            app = sum(_per_message(pooled(item.rounds))[role] for role in ("web", "answers"))
            print(f"\n{item.setup.name}: the app's {app:.1f} ms per message is {app / rasa:.0%} of "
                  f"{shipped.setup.name}'s Rasa ({rasa:.1f} ms)")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phones", type=int, default=4, help="phones at a time (closed loop)")
    parser.add_argument("--seconds", type=float, default=20, help="measured seconds per configuration and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one round of 10 s: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 10, 1
    return args


def main() -> None:
    args = parse_args()
    socketserver.TCPServer.request_queue_size = 256
    print(machine_line(), flush=True)
    store = TRACKER_STORE_URL if redis_reachable(TRACKER_STORE_URL) else ""
    inbox = Inbox()
    with tempfile.TemporaryDirectory(prefix="bansos-bench-turn-") as tmp, inbox.api.serve(keep_alive=True) as fake_api:
        work = Path(tmp)
        chosen = setups()
        models = {setup.name: ensure_model(quiet=True, config=setup.config) for setup in chosen}
        with database(work) as (backend, url):
            db = Database(url)
            try:
                db.upgrade()
                seed_demo(db)
                print(f"database: {backend}; tracker store: {store or 'in memory (Redis did not answer)'}; "
                      f"{args.phones} phones, {WARM_UP_SECONDS} s + {args.seconds:g} s per configuration, "
                      f"{args.rounds} round(s)", flush=True)
                env = {"DATABASE_URL": url, "TWILIO_API_BASE": fake_api.url}
                population = Population(registered_phones(db))
                with ExitStack() as running:
                    action_url = running.enter_context(action_server(url, work))
                    action_pid = _action_server_pid()
                    stacks = [
                        running.enter_context(stack(setup, models[setup.name], env, (action_url, action_pid), store, work))
                        for setup in chosen
                    ]
                    for number in range(args.rounds):
                        for item in stacks if number % 2 == 0 else reversed(stacks):
                            since = time.monotonic()
                            run = drive(item.setup.name, AppTarget(item.base, inbox), population, args.phones,
                                        WARM_UP_SECONDS, args.seconds, cpu=cpu_of(item.trees))
                            time.sleep(4 * PART_GAP_SECONDS)  # an answer sent twice would arrive about now
                            if item.setup.stores:
                                settle_accounts(db, inbox, run, since)
                            else:
                                answered_in_response(run)
                            item.rounds.append(run)
                            figures = summary(run)
                            print(f"  round {number + 1}: {item.setup.name}: {figures['messages']} messages, "
                                  f"{figures['cpu per message']['rasa']:.1f} ms Rasa CPU per message", flush=True)
                            if figures["messages"] and not run.cpu_seconds.get("rasa"):
                                raise RuntimeError(f"{item.setup.name}: messages answered, yet its Rasa used no CPU")
            finally:
                db.dispose()
        scores = {model: understanding(model, work) for model in dict.fromkeys(item.model for item in stacks)}
        report(stacks, scores)
    print(f"\nload average {load_average()} at the end")


def _action_server_pid() -> int:
    """The action server this process started (tools/processes.action_server)."""
    for pid, (parent, _) in _processes().items():
        if parent == os.getpid() and b"rasa_sdk" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    raise RuntimeError("no action server among this process's children")


if __name__ == "__main__":
    main()
