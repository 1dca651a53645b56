"""Status, schedule and history conversations with the demo households, on SMS and
WhatsApp, through the signed webhook and the real Rasa and action servers."""
from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from bot.rules.nik import mask_name
from bot.rules.smstext import segment_count
from tests.support.phones import PERSONAS, Phone, new_number, persona_phone

SITI = PERSONAS["siti"]


@pytest.mark.parametrize("whatsapp", [False, True], ids=["sms", "whatsapp"])
def test_registered_phone_is_recognised_without_a_nik(e2e_app: Flask, whatsapp: bool) -> None:
    phone = persona_phone(e2e_app.test_client(), "siti", whatsapp)
    reply = phone.say("cek bansos")
    assert "PKH" in reply and "BPNT" in reply
    assert "NIK (16 angka)" not in reply


def test_schedule_on_the_registered_phone_gives_date_place_and_amount(e2e_app: Flask) -> None:
    reply = persona_phone(e2e_app.test_client(), "siti").say("JADWAL")
    assert "Rp" in reply and "BRI" in reply
    assert any(month in reply for month in ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober", "November", "Desember"))


def test_history_is_most_recent_first_and_fits_sms(e2e_app: Flask) -> None:
    replies = persona_phone(e2e_app.test_client(), "siti").send("riwayat bansos saya")
    assert len(replies) == 1 and segment_count(replies[0]) <= 3
    assert "tersalur" in replies[0]


def test_free_text_schedule_question_with_nik_from_owner(e2e_app: Flask) -> None:
    phone = persona_phone(e2e_app.test_client(), "siti", whatsapp=True)
    assert "Rp" in phone.say(f"kapan bansos cair? nik saya {SITI.nik}")


def test_stranger_learns_only_registration_and_a_masked_name(sms_phone: Phone) -> None:
    reply = sms_phone.say(f"CEK {SITI.nik}")
    assert mask_name(SITI.name) in reply
    assert SITI.name not in reply
    assert "Rp" not in reply and SITI.nik not in reply


def test_asking_for_the_nik_then_an_unregistered_one(sms_phone: Phone) -> None:
    assert "NIK" in sms_phone.say("sy mau cek bansos")
    reply = sms_phone.say(PERSONAS["unregistered"].nik)
    assert "tidak terdaftar" in reply and "USUL" in reply


def test_wrong_nik_gets_the_reason_and_a_retry_then_works(sms_phone: Phone) -> None:
    assert "16 angka" in sms_phone.say("CEK 12345")
    assert mask_name(SITI.name) in sms_phone.say(SITI.nik)


def test_cancel_in_the_middle_of_the_question(sms_phone: Phone) -> None:
    assert "NIK" in sms_phone.say("cek status bansos")
    assert "dibatalkan" in sms_phone.say("batal").lower()
    assert "MENU" in sms_phone.say("halo")


@pytest.mark.parametrize(
    "key, question, expected",
    [
        ("yohana", "JADWAL", "ADU"),
        ("made", "JADWAL", "ditunda"),
        ("ahmad", "JADWAL", "belum ada"),
    ],
)
def test_edge_cases_get_a_clear_answer(e2e_app: Flask, key: str, question: str, expected: str) -> None:
    reply = persona_phone(e2e_app.test_client(), key).say(question)
    assert expected.lower() in reply.lower()


def test_phone_with_two_households_is_asked_which_one(e2e_app: Flask) -> None:
    phone = persona_phone(e2e_app.test_client(), "sumiati")
    question = phone.say("cek bansos")
    assert "1." in question and "2." in question
    answer = phone.say("2")
    assert "BPNT" in answer


def test_look_ups_of_other_niks_are_rate_limited(sms_phone: Phone) -> None:
    others = [p.nik for p in PERSONAS.values() if p.key not in ("sumiati", "rahmawati")][:6]
    replies = [sms_phone.say(f"CEK {nik}") for nik in others]
    assert all("batas" not in reply.lower() for reply in replies[:5])
    assert "batas" in replies[5].lower()


def test_no_log_line_carries_a_whole_nik(e2e_app: Flask, e2e_workdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    phone = Phone(e2e_app.test_client(), new_number())
    phone.say("cek bansos")
    phone.say(SITI.nik)
    phone.say(f"CEK {PERSONAS['made'].nik}")
    logs = caplog.text + (e2e_workdir / "actions.log").read_text() + (e2e_workdir / "rasa.log").read_text()
    assert SITI.nik not in logs and PERSONAS["made"].nik not in logs
