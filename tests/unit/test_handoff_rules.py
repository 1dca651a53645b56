"""Escalation words, office hours and the notice a citizen gets, as tables."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.handoff.service import escalation_notice, escalation_reason, next_opening, waiting_notice, when_text
from bot.handoff.models import HandoffReason
from bot.rules.smstext import is_gsm7, segment_count


@pytest.mark.parametrize(
    "text, reason",
    [
        ("saya mau bunuh diri saja", HandoffReason.DISTRESS),
        ("sy sdh putus asa pak", HandoffReason.DISTRESS),
        ("anak saya KELAPARAN dari kemarin", HandoffReason.DISTRESS),
        ("saya diancam ketua kelompok", HandoffReason.DISTRESS),
        ("dasar anjiiing", HandoffReason.ABUSIVE),
        ("BANGSAT lama bgt", HandoffReason.ABUSIVE),
        ("goblok, dana saya mana", HandoffReason.ABUSIVE),
        ("tolol kamu, saya mau bunuh diri", HandoffReason.DISTRESS),
        ("kapan pkh cair", None),
        ("saya tinggal di jalan Tai Ping", None),
        ("saya peternak babi di Kupang", None),
        ("petaian sawah", None),
        ("hasut", None),
        ("", None),
        ("🙏🙏", None),
    ],
)
def test_escalation_reason(text: str, reason: str | None) -> None:
    assert escalation_reason(text) == reason


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "now, province, expected",
    [
        # Monday 23 Nov 2026, 10.00 WIB (03.00 UTC): open, with time to spare.
        (utc(2026, 11, 23, 3, 0), "32", "sekitar 30 menit"),
        # 15.45 WIB: too close to closing; Tuesday morning instead.
        (utc(2026, 11, 23, 8, 45), "32", "Selasa, 24 November 2026 pukul 08.00 WIB"),
        # 07.00 WIB Monday: later the same morning.
        (utc(2026, 11, 23, 0, 0), "32", "Senin, 23 November 2026 pukul 08.00 WIB"),
        # Friday 27 Nov, 17.00 WIB: Monday.
        (utc(2026, 11, 27, 10, 0), "31", "Senin, 30 November 2026 pukul 08.00 WIB"),
        # Saturday: Monday.
        (utc(2026, 11, 28, 3, 0), None, "Senin, 30 November 2026 pukul 08.00 WIB"),
        # 07.30 UTC is 15.30 WIB but 16.30 in Papua (WIT): closed there.
        (utc(2026, 11, 23, 7, 30), "94", "Selasa, 24 November 2026 pukul 08.00 WIT"),
        # 00.30 UTC is 07.30 WIB (closed) but 08.30 WITA in Bali (open).
        (utc(2026, 11, 23, 0, 30), "51", "sekitar 30 menit"),
    ],
)
def test_when_a_person_answers_is_in_the_citizens_zone(now: datetime, province: str | None, expected: str) -> None:
    assert expected in when_text(now, province)


def test_next_opening_skips_the_weekend() -> None:
    local = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
    assert next_opening(local).date().isoformat() == "2026-11-30"


@pytest.mark.parametrize("reason", HandoffReason.ALL)
@pytest.mark.parametrize("now", [utc(2026, 11, 23, 3, 0), utc(2026, 11, 28, 3, 0)])
def test_every_notice_is_sms_safe_and_short(reason: str, now: datetime) -> None:
    notice = escalation_notice(reason, now, "73")
    assert is_gsm7(notice) and segment_count(notice) <= 2


@pytest.mark.parametrize("province", ["32", "51", "94", None])
@pytest.mark.parametrize("now", [utc(2026, 11, 23, 3, 0), utc(2026, 11, 28, 3, 0)])
def test_the_waiting_notice_is_sms_safe_and_short(province: str | None, now: datetime) -> None:
    notice = waiting_notice(now, province)
    assert is_gsm7(notice) and segment_count(notice) <= 2 and "MENU" in notice


def test_distress_notice_gives_the_emergency_number() -> None:
    assert "112" in escalation_notice(HandoffReason.DISTRESS, utc(2026, 11, 23, 3, 0), None)
