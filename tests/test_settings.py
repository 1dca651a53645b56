"""Settings as an operator meets them: exported variables win over `.env` in every
process, `make run`'s own process runner included; no process starts on a public key;
no access log line carries a message, a number or a NIK."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from app import create_app
from bot import config
from bot.config import InsecureSettings, load_settings
from bot.db import Database
from bot.conversation.models import Message
from scripts import init_env
from tools.processes import ROOT, free_port
from tests.support.twilio import TwilioSigner, sms_form

PHONE = "+6281234567890"
NIK = "3201015503880003"
KANNEL_SECRET = "kannel-secret-from-the-shell"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment without the settings these tests set, as on a fresh shell.

    Each is set (empty counts as unset) before it is removed, so monkeypatch restores
    it afterwards even when reading a `.env` put a value into os.environ meanwhile.
    """
    for name in ("DATABASE_URL", "TWILIO_AUTH_TOKEN", "PUBLIC_BASE_URL", "SECRET_KEY", "RASA_TOKEN", "BANSOS_DEVELOPMENT"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return monkeypatch


def test_exported_settings_win_over_env_file_and_its_empty_lines_blank_nothing(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "DATABASE_URL=sqlite:///from-the-file.db\nTWILIO_AUTH_TOKEN=\nPUBLIC_BASE_URL=\n"
        "SECRET_KEY=from-the-file\nRASA_TOKEN=rasa-from-the-file\n"
    )
    clean_env.setenv("DATABASE_URL", "postgresql://operator@db.example/bansos")
    clean_env.setenv("TWILIO_AUTH_TOKEN", "token-from-the-shell")
    clean_env.setenv("PUBLIC_BASE_URL", "https://bansos.example.go.id")
    clean_env.setenv("SECRET_KEY", "")
    settings = load_settings(env_file)
    assert settings.database_url == "postgresql://operator@db.example/bansos"
    assert settings.twilio_auth_token == "token-from-the-shell"
    assert settings.public_base_url == "https://bansos.example.go.id"
    assert settings.secret_key == "from-the-file", "an empty export is unset: the file fills it"
    assert settings.rasa_token == "rasa-from-the-file"


@pytest.mark.parametrize("secret", [None, ""])
def test_the_app_refuses_to_start_without_a_secret_key(clean_env: pytest.MonkeyPatch, secret: str | None) -> None:
    if secret is not None:
        clean_env.setenv("SECRET_KEY", secret)
    with pytest.raises(InsecureSettings, match="SECRET_KEY"):
        create_app({"database_url": "sqlite://"})


def test_the_action_server_refuses_to_start_without_a_secret_key() -> None:
    env = {**os.environ, "SECRET_KEY": "", "ENV_FILE": os.devnull}
    env.pop("BANSOS_DEVELOPMENT", None)
    started = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-m", "rasa_sdk", "--actions", "actions", "--port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert started.returncode != 0
    assert "SECRET_KEY is not set" in started.stderr


def test_the_development_flag_starts_the_app_on_this_machines_own_random_key(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("BANSOS_DEVELOPMENT", "1")
    clean_env.setattr(config, "DEVELOPMENT_KEY_FILE", tmp_path / "instance" / "development-secret-key")
    config.development_key.cache_clear()
    try:
        key = create_app({"database_url": "sqlite://"}).config["SECRET_KEY"]
        assert len(key) >= 32 and key == (tmp_path / "instance" / "development-secret-key").read_text()
        assert (tmp_path / "instance" / "development-secret-key").stat().st_mode & 0o077 == 0
        config.development_key.cache_clear()
        assert create_app({"database_url": "sqlite://"}).config["SECRET_KEY"] == key, "every process agrees"
    finally:
        config.development_key.cache_clear()


def test_an_older_env_file_gets_the_rasa_token_and_keeps_everything_else(tmp_path: Path) -> None:
    (tmp_path / ".env.example").write_text((ROOT / ".env.example").read_text())
    older = "DATABASE_URL=postgresql://x@h/db\nSECRET_KEY=kept\nTWILIO_AUTH_TOKEN=kept-too"
    (tmp_path / ".env").write_text(older)
    init_env.main(tmp_path)
    text = (tmp_path / ".env").read_text()
    assert text.startswith(older + "\n")
    added = [line for line in text.splitlines() if line.startswith("RASA_TOKEN=")]
    assert len(added) == 1 and len(added[0]) > len("RASA_TOKEN=") + 30
    init_env.main(tmp_path)
    assert (tmp_path / ".env").read_text() == text, "running it again changes nothing"


def test_a_fresh_env_file_has_every_secret_filled(tmp_path: Path) -> None:
    (tmp_path / ".env.example").write_text((ROOT / ".env.example").read_text())
    init_env.main(tmp_path)
    values = dict(line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines() if "=" in line and not line.startswith("#"))
    assert all(values[name] for name in init_env.GENERATED)


def test_the_cli_uses_the_exported_database(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"DATABASE_URL=sqlite:///{tmp_path / 'from-the-file.db'}\n")
    exported = tmp_path / "exported.db"
    env = {**os.environ, "ENV_FILE": str(env_file), "DATABASE_URL": f"sqlite:///{exported}"}
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "bansos"), "init-db"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert str(exported) in result.stdout
    assert exported.exists() and not (tmp_path / "from-the-file.db").exists()


# ---- through `make run`'s own process runner ---------------------------------------


def checkout_with_env_file(tmp_path: Path, env_text: str) -> Path:
    """The project (linked, not copied) in a folder of its own, with this `.env` in it,
    so the processes find the file where `make run` leaves it."""
    work = tmp_path / "checkout"
    work.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in (".env", ".git", "instance"):
            (work / entry.name).symlink_to(entry)
    (work / ".env").write_text(env_text)
    return work


@contextmanager
def make_start(work: Path, processes: str, env: dict[str, str], port: int, output: Path) -> Iterator[None]:
    """`make start PROCS=…`: the Procfile's processes under honcho, exactly as `make run` runs them."""
    with output.open("wb") as out:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "start", f"PROCS={processes}", f"PORT={port}"],
            cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"make start did not serve:\n{output.read_text()[-3000:]}") from None
                time.sleep(0.3)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


def test_make_run_keeps_the_operators_exported_settings_and_logs_no_text_number_or_nik(tmp_path: Path) -> None:
    exported_db, file_db = tmp_path / "exported.db", tmp_path / "from-the-file.db"
    for path in (exported_db, file_db):
        Database(f"sqlite:///{path}").upgrade()
    work = checkout_with_env_file(
        tmp_path,
        f"DATABASE_URL=sqlite:///{file_db}\nTWILIO_AUTH_TOKEN=token-from-the-file\n"
        "PUBLIC_BASE_URL=\nSECRET_KEY=\nKANNEL_WEBHOOK_SECRET=\nRASA_URL=http://127.0.0.1:9\n",
    )
    public = "https://bansos.example.go.id"
    env = {
        **{name: value for name, value in os.environ.items() if name != "ENV_FILE"},
        "DATABASE_URL": f"sqlite:///{exported_db}",
        "TWILIO_AUTH_TOKEN": "token-from-the-shell",
        "PUBLIC_BASE_URL": public,
        "SECRET_KEY": "secret-from-the-shell",
        "KANNEL_WEBHOOK_SECRET": KANNEL_SECRET,
        "RASA_TIMEOUT": "1",
    }
    port, output = free_port(), tmp_path / "honcho.log"
    base = f"http://127.0.0.1:{port}"
    path = "/webhooks/twilio/messages"
    with make_start(work, "web", env, port, output):
        for token, text in (("token-from-the-shell", "halo dari shell"), ("token-from-the-file", "halo dari file")):
            form = sms_form(PHONE, text)
            headers = TwilioSigner(token).headers(public + path, form)
            status = requests.post(base + path, data=form, headers=headers, timeout=10).status_code
            assert status == (200 if token == "token-from-the-shell" else 403), token
        # Kannel in get-url mode: the sender and the whole text in the query string.
        kannel = requests.get(
            f"{base}/webhooks/kannel/sms",
            params={"id": "k-1", "from": PHONE, "to": "1708", "text": f"CEK {NIK}", "coding": "0", "charset": "UTF-8"},
            auth=("kannel", KANNEL_SECRET), timeout=10,
        )
        assert kannel.status_code == 200
    with Database(f"sqlite:///{exported_db}").session() as session:
        bodies = set(session.scalars(select(Message.body)))
    assert {"halo dari shell", f"CEK {NIK}"} <= bodies and "halo dari file" not in bodies
    with Database(f"sqlite:///{file_db}").session() as session:
        assert session.scalars(select(Message)).all() == []
    log = output.read_text()
    access = [line for line in log.splitlines() if '"GET /webhooks/kannel/sms"' in line or '"POST /webhooks/twilio/messages"' in line]
    assert len(access) == 3, log[-3000:]
    for needle in (NIK, "3201015503880003"[:12], "6281234567890", "81234567890", "CEK", "halo"):
        assert needle not in log, f"{needle!r} in the process runner's output"
