"""Start the real Rasa server and action server as subprocesses for end-to-end tests."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from bot.config import Settings
from scripts.run_rasa import RASA_ENV, TF_THREAD_DEFAULTS, TRACKER_KEY_PREFIX, endpoints_text, rasa_command, write_private

ROOT = Path(__file__).resolve().parents[1]
QUIET_RASA_ENV = {**TF_THREAD_DEFAULTS, **RASA_ENV, "PYTHONWARNINGS": "ignore"}
# Rasa's HTTP API answers only with this token, as under `make run` (RASA_TOKEN).
E2E_RASA_TOKEN = "e2e-rasa-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_ready(proc: subprocess.Popen[bytes], url: str, ready: callable, log: Path, timeout: float) -> None:  # type: ignore[valid-type]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited early:\n{log.read_text()[-3000:]}")
        try:
            response = requests.get(url, timeout=2)
            if ready(response):
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@contextmanager
def _process(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def action_server(database_url: str, workdir: Path, port: int | None = None) -> Iterator[str]:
    """The real rasa_sdk action server over our actions package; yields its webhook URL.

    `port` lets a test bring it back where a running Rasa server expects it.
    """
    port = port or free_port()
    log = workdir / "actions.log"
    command = [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)]
    env = {"DATABASE_URL": database_url, "SECRET_KEY": "e2e-secret", "SANIC_HOST": "127.0.0.1"}
    with _process(command, env, log) as proc:
        base = f"http://127.0.0.1:{port}"
        _wait_until_ready(proc, f"{base}/health", lambda r: r.status_code == 200, log, 60)
        yield f"{base}/webhook"


@dataclass(frozen=True)
class RasaReplica:
    """A running Rasa server: its base URL, and its process for tests that kill it."""

    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def rasa_replica(
    model: Path,
    action_url: str,
    workdir: Path,
    port: int | None = None,
    tracker_store_url: str = "",
    tracker_key_prefix: str = TRACKER_KEY_PREFIX,
    tracker_expiry_seconds: int = Settings.rasa_tracker_expiry_seconds,
    env: dict[str, str] | None = None,
) -> Iterator[RasaReplica]:
    """The real Rasa server with a trained model, started as scripts/run_rasa.py starts it.

    With `tracker_store_url` (redis://...) its conversations live in Redis under
    `tracker_key_prefix`, as with RASA_TRACKER_STORE_URL, so a second replica started
    on the same store carries them on. Its log is `rasa.log` in `workdir`. `env` adds
    to Rasa's environment (the benchmark's baseline runs with other libraries).
    """
    port = port or free_port()
    endpoints = f"action_endpoint:\n  url: \"{action_url}\"\n"
    if tracker_store_url:
        endpoints = endpoints_text(endpoints, tracker_store_url, tracker_expiry_seconds, tracker_key_prefix)
    endpoints_file = write_private(workdir / "endpoints.yml", endpoints)
    log = workdir / "rasa.log"
    command = rasa_command(model, E2E_RASA_TOKEN, port, endpoints_file)
    with _process(command, {**QUIET_RASA_ENV, **(env or {})}, log) as proc:
        base = f"http://127.0.0.1:{port}"
        _wait_until_ready(
            proc, f"{base}/status?token={E2E_RASA_TOKEN}",
            lambda r: r.status_code == 200 and bool(r.json().get("model_file")), log, 300,
        )
        yield RasaReplica(base, proc)


@contextmanager
def rasa_server(
    model: Path, action_url: str, workdir: Path, port: int | None = None, tracker_store_url: str = ""
) -> Iterator[str]:
    """The real Rasa server with a trained model (see rasa_replica); yields its base URL."""
    with rasa_replica(model, action_url, workdir, port=port, tracker_store_url=tracker_store_url) as replica:
        yield replica.url
