"""Registry rows, settings and a dispatcher process for the notice tests and the benchmark."""
from __future__ import annotations

import itertools
import os
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bot.channels.routing import make_transport
from bot.config import Settings, load_settings
from bot.db import Database
from bot.notices.dispatcher import Dispatcher
from bot.registry.models import Disbursement, DisbursementStatus, Recipient
from tools.fake_twilio import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN

# 03:00 UTC: 10:00 WIB, 11:00 WITA, 12:00 WIT, inside everyone's sending window.
T0 = datetime(2026, 12, 7, 3, 0, tzinfo=timezone.utc)
TODAY = T0.date()
CONTENT_SID = "HX" + "0" * 32
SMS_FROM = "+6281100000000"
WHATSAPP_FROM = "+6281100000001"

_serials = itertools.count(1)


def phone_number(n: int) -> str:
    """A valid Indonesian mobile number (Telkomsel 0812) for test recipient n."""
    return f"+62812{n:08d}"


def add_recipient(
    db: Database,
    phone: str | None = None,
    province: str = "32",
    smartphone: bool = False,
    name: str = "Siti Wulandari",
) -> int:
    serial = next(_serials)
    with db.session() as session:
        recipient = Recipient(
            nik=f"{province}0101550388{serial:04d}",
            name=name,
            birth_date=date(1988, 3, 15),
            phone=phone if phone is not None else phone_number(serial),
            province_code=province,
            has_smartphone=smartphone,
        )
        session.add(recipient)
        session.flush()
        return recipient.id


def add_disbursement(
    db: Database,
    recipient_id: int,
    scheduled: date,
    status: str = DisbursementStatus.DIJADWALKAN,
    program: str = "PKH",
    period: str = "Tahap 4 2026",
    amount: int = 975_000,
    channel: str | None = "BRI",
    disbursed_at: datetime | None = None,
) -> int:
    with db.session() as session:
        disbursement = Disbursement(
            recipient_id=recipient_id,
            program_code=program,
            period=period,
            amount=amount,
            channel=channel,
            scheduled_date=scheduled,
            status=status,
            disbursed_at=disbursed_at,
        )
        session.add(disbursement)
        session.flush()
        return disbursement.id


def add_households(
    db: Database, count: int, scheduled: date, provinces: tuple[str, ...] = ("32", "73", "94")
) -> list[str]:
    """`count` recipients, each with one scheduled payment; their phone numbers."""
    phones = []
    with db.session() as session:
        for i in range(count):
            serial = next(_serials)
            recipient = Recipient(
                nik=f"{provinces[i % len(provinces)]}0101550388{serial:04d}",
                name="Siti Wulandari",
                birth_date=date(1988, 3, 15),
                phone=phone_number(serial),
                province_code=provinces[i % len(provinces)],
            )
            recipient.disbursements.append(
                Disbursement(
                    program_code="PKH",
                    period="Tahap 4 2026",
                    amount=975_000,
                    channel="BRI",
                    scheduled_date=scheduled,
                )
            )
            session.add(recipient)
            phones.append(recipient.phone or "")
    return phones


def notice_settings(db: Database, api_base: str = "", **overrides: Any) -> Settings:
    """Settings for a dispatcher against the fake Twilio API (or the sandbox without one)."""
    values: dict[str, Any] = {
        "database_url": db.url,
        # An app built from these settings (the Kannel test serves one) needs a key.
        "secret_key": "notice-tests-secret",
        "twilio_account_sid": TEST_ACCOUNT_SID if api_base else "",
        "twilio_auth_token": TEST_AUTH_TOKEN if api_base else "",
        "twilio_api_base": api_base,
        "twilio_sms_from": SMS_FROM,
        "twilio_whatsapp_from": WHATSAPP_FROM,
        "twilio_http_timeout": 2.0,
        "notice_sms_rate": 0.0,
        "notice_whatsapp_rate": 0.0,
        "notice_retry_base_seconds": 60.0,
        "notice_stale_seconds": 5.0,
    }
    values.update(overrides)
    return Settings().with_overrides(values)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that give a subprocess these settings."""
    return {
        "DATABASE_URL": settings.database_url,
        "TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
        "TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
        "TWILIO_API_BASE": settings.twilio_api_base,
        "TWILIO_SMS_FROM": settings.twilio_sms_from,
        "TWILIO_WHATSAPP_FROM": settings.twilio_whatsapp_from,
        "TWILIO_NOTICE_CONTENT_SID": settings.twilio_notice_content_sid,
        "TWILIO_HTTP_TIMEOUT": str(settings.twilio_http_timeout),
        "NOTICE_SMS_RATE": str(settings.notice_sms_rate),
        "NOTICE_WHATSAPP_RATE": str(settings.notice_whatsapp_rate),
        "NOTICE_STALE_SECONDS": str(settings.notice_stale_seconds),
        "NOTICE_SEND_FROM": settings.notice_send_from,
        "NOTICE_SEND_UNTIL": settings.notice_send_until,
        "NOTICE_WORKERS": str(settings.notice_workers),
        "NOTICE_DISPATCH_INTERVAL": str(settings.notice_dispatch_interval_seconds),
        "REDIS_URL": settings.redis_url,
    }


def day_after(days: int, today: date = TODAY) -> date:
    return today + timedelta(days=days)


def _wait_for_the_others(barrier: Path, parties: int) -> None:
    """Start together: write our ready file, then wait until all `parties` have."""
    (barrier / f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 30
    while len(list(barrier.glob("ready-*"))) < parties and time.monotonic() < deadline:
        time.sleep(0.01)


def main() -> None:
    """Run one dispatcher until nothing is due: `python -m tools.notices`.

    The crash and race tests start this in subprocesses, configured by environment;
    DISPATCH_BARRIER (a directory) and DISPATCH_PARTIES make racing ones start together.
    """
    if os.environ.get("DISPATCH_BARRIER"):
        _wait_for_the_others(
            Path(os.environ["DISPATCH_BARRIER"]), int(os.environ.get("DISPATCH_PARTIES", "1"))
        )
    settings = load_settings()
    db = Database.from_settings(settings)
    report = Dispatcher(db, make_transport(settings), settings).run()
    print(report.as_dict(), file=sys.stderr, flush=True)
    db.dispose()


def busiest_second(times: list[float]) -> int:
    """The most events in any one-second window (times in seconds): what a rate limit
    measured at the provider sees, for the tests and the benchmark alike."""
    times = sorted(times)
    most, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


if __name__ == "__main__":
    main()
