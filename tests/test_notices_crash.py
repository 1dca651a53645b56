"""Exactly once, proven with real processes: SIGKILL mid-campaign, and two dispatchers racing.

Dispatchers run as subprocesses (`python -m tools.notices`) against the local
fake Twilio API; the fake counts every message it accepted, so a notice sent twice
or never shows up there, whatever the database says. Both run on SQLite and, with
TEST_DATABASE_URL, on PostgreSQL.
"""
from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.config import Settings
from bot.db import Database
from bot.notices.planning import NoticePlanner
from bot.notices.models import Notice, NoticeStatus
from tools.fake_twilio import FakeTwilioApi
from tools.notices import add_households, notice_settings, settings_env

ROOT = Path(__file__).resolve().parents[1]


def _settings(db: Database, api_url: str, **overrides: Any) -> Settings:
    """Real time here (the subprocess has no fake clock), so send around the clock."""
    values: dict[str, Any] = {
        "notice_send_from": "00:00",
        "notice_send_until": "24:00",
        "notice_workers": 4,
        "twilio_http_timeout": 0.5,
        "notice_stale_seconds": 1.0,
    }
    values.update(overrides)
    return notice_settings(db, api_url, **values)


def _plan(db: Database, settings: Settings, households: int) -> list[str]:
    soon = datetime.now(timezone.utc).date() + timedelta(days=2)
    phones = add_households(db, households, soon)
    assert NoticePlanner(db, settings).plan().total == households
    return phones


def _start(settings: Settings, workdir: Path, **extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, **settings_env(settings), "PYTHONPATH": str(ROOT), **extra}
    return subprocess.Popen(
        [sys.executable, "-m", "tools.notices"],
        cwd=workdir,  # away from the project's .env
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _report(proc: subprocess.Popen[str]) -> dict[str, int]:
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return ast.literal_eval(err.strip().splitlines()[-1])


def _open_notices(db: Database) -> int:
    with db.session() as session:
        return len(session.scalars(select(Notice.id).where(Notice.status.in_(NoticeStatus.OPEN))).all())


def _finish(db: Database, settings: Settings, workdir: Path) -> None:
    """Run dispatchers until nothing is open: what a dead or unanswered run left behind
    (`sending` rows) is reconciled once stale."""
    for _ in range(5):
        if not _open_notices(db):
            return
        time.sleep(1.1)
        _report(_start(settings, workdir))
    assert _open_notices(db) == 0


def _assert_each_sent_exactly_once(db: Database, api: FakeTwilioApi, phones: list[str]) -> None:
    counts = Counter(message["to"] for message in api.sent)
    assert counts == Counter(phones), {to: n for to, n in counts.items() if n != 1}
    sid_for = {message["to"]: message["sid"] for message in api.sent}
    with db.session() as session:
        stored = session.scalars(select(Notice)).all()
    assert {n.status for n in stored} == {NoticeStatus.SENT}
    assert {n.to_address: n.provider_sid for n in stored} == sid_for


def test_sigkill_mid_campaign_then_restart_sends_each_notice_exactly_once(
    db: Database, tmp_path: Path
) -> None:
    running: list[subprocess.Popen[str]] = []
    accepted = 0
    lock = threading.Lock()

    def kill_on_the_30th(_message: dict[str, Any]) -> None:
        # Twilio has accepted this message; its sender dies before hearing so.
        nonlocal accepted
        with lock:
            accepted += 1
            if accepted == 30:
                running[-1].send_signal(signal.SIGKILL)

    api = FakeTwilioApi(on_create=kill_on_the_30th)
    with api.serve() as server:
        settings = _settings(db, server.url, notice_sms_rate=40.0)
        phones = _plan(db, settings, 120)

        running.append(_start(settings, tmp_path))
        running[-1].wait(timeout=60)
        assert running[-1].returncode == -signal.SIGKILL
        assert 30 <= len(api.sent) < 120
        with db.session() as session:
            in_flight = session.scalars(
                select(Notice).where(Notice.status == NoticeStatus.SENDING)
            ).all()
        assert any(n.to_address == api.sent[29]["to"] for n in in_flight)

        time.sleep(1.1)  # the dead run's rows become stale
        running.append(_start(settings, tmp_path))
        threading.Timer(0.8, running[-1].send_signal, (signal.SIGKILL,)).start()
        running[-1].wait(timeout=60)

        _finish(db, settings, tmp_path)
        _assert_each_sent_exactly_once(db, api, phones)


def test_two_dispatchers_racing_send_each_notice_exactly_once(db: Database, tmp_path: Path) -> None:
    api = FakeTwilioApi()
    with api.serve() as server:
        # Started together, each paced to 200/s. A dispatcher holds at most two batches
        # of 200 (one being sent, the next ready), so 600 notices keep both busy.
        settings = _settings(db, server.url, notice_sms_rate=200.0)
        phones = _plan(db, settings, 600)
        barrier = tmp_path / "barrier"
        barrier.mkdir()
        together = {"DISPATCH_BARRIER": str(barrier), "DISPATCH_PARTIES": "2"}
        first, second = _start(settings, tmp_path, **together), _start(settings, tmp_path, **together)
        reports = [_report(first), _report(second)]
        assert all(report["sent"] > 0 for report in reports), reports
        _finish(db, settings, tmp_path)
        _assert_each_sent_exactly_once(db, api, phones)
