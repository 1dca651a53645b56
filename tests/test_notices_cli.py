"""`bansos notices ...` as an operator uses it, on the sandbox transport."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot.db import Database
from bot.notices.cli import notices
from bot.notices.models import Notice, NoticeStatus
from bot.registry.models import Recipient
from bot.notices.scheduler import Lease
from tools.notices import add_disbursement, add_households, add_recipient


@pytest.fixture
def cli_db(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    """Point the CLI at the test database and the sandbox, sending around the clock."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db.url)
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_NOTICE_CONTENT_SID"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("NOTICE_SEND_FROM", "00:00")
    monkeypatch.setenv("NOTICE_SEND_UNTIL", "24:00")
    monkeypatch.setenv("NOTICE_SMS_RATE", "0")
    monkeypatch.setenv("NOTICE_SMS_PRICE", "0.5")
    return db


def soon() -> date:
    return datetime.now(timezone.utc).date() + timedelta(days=2)


def invoke(*args: str) -> str:
    result = CliRunner().invoke(notices, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_dry_run_counts_costs_and_writes_nothing(cli_db: Database) -> None:
    add_households(cli_db, 4, soon(), provinces=("32", "73"))
    add_disbursement(cli_db, add_recipient(cli_db, phone=""), soon())
    output = invoke("dry-run")
    assert "would plan 4 notices (reminder 4)" in output
    assert "not planned: no phone 1" in output
    assert "by channel: sms 4" in output
    assert "by zone: WIB 2, WITA 2" in output
    assert "by region: Jawa Barat 2, Sulawesi Selatan 2" in output
    assert "SMS by segments: 1 segment(s) 4" in output
    assert "estimated cost: 2.00 USD" in output
    assert "estimated duration: 0 min 0 s" in output
    with cli_db.session() as session:
        assert session.scalars(select(Notice)).all() == []


def test_plan_run_and_status(cli_db: Database) -> None:
    add_households(cli_db, 5, soon())
    assert "planned 5 notices (reminder 5), campaign 1" in invoke("plan", "--label", "tahap 4")
    assert "planned 0 notices" in invoke("plan")
    output = invoke("run")
    assert "sending notices" in output
    assert "this run: sent 5" in output
    assert "5 notices: pending 0, sent 5, delivered 0, failed 0, cancelled 0" in output
    status = invoke("status")
    assert "campaign 1 'tahap 4' from operator" in status
    assert "scheduler lease: free" in status
    assert "recipients flagged for data cleaning: 0" in status


def test_pause_and_resume(cli_db: Database) -> None:
    add_households(cli_db, 2, soon())
    invoke("plan")
    assert "all notices: paused" in invoke("pause")
    result = CliRunner().invoke(notices, ["run", "--no-plan"])
    assert result.exit_code == 1 and "notices are paused" in result.output
    assert "(PAUSED)" in invoke("status")
    assert "all notices: resumed" in invoke("resume")
    assert "campaign 1: paused" in invoke("pause", "--campaign", "1")
    assert "this run" in invoke("run", "--no-plan")
    with cli_db.session() as session:
        assert set(session.scalars(select(Notice.status))) == {NoticeStatus.PENDING}
    invoke("resume", "--campaign", "1")
    assert "this run: sent 2" in invoke("run", "--no-plan")
    missing = CliRunner().invoke(notices, ["pause", "--campaign", "99"])
    assert missing.exit_code == 1 and "no campaign 99" in missing.output


def test_run_refuses_while_the_scheduler_holds_the_lease(cli_db: Database) -> None:
    assert Lease(cli_db, "vm:123:scheduler", 60).acquire()
    result = CliRunner().invoke(notices, ["run"])
    assert result.exit_code == 1
    assert "the scheduler (vm:123:scheduler) is sending notices now" in result.output
    assert "scheduler lease: vm:123:scheduler until" in invoke("status")


def test_flagged_recipients_are_listed_masked(cli_db: Database) -> None:
    add_disbursement(cli_db, add_recipient(cli_db, phone="+622150001234"), soon())
    invoke("plan")
    with cli_db.session() as session:
        nik = session.scalars(select(Recipient.nik)).one()
    output = invoke("flagged")
    assert "1 recipients flagged" in output
    assert "not a mobile number" in output
    assert nik not in output and nik[-4:] in output
