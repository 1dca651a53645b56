"""The status service: who is recognised, who sees what, the rate limit, and the wording."""

from __future__ import annotations

import io
import logging
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from bot.db import Database
from bot.registry.demo import DEMO_PERSONAS, seed_demo
from bot.registry.importer import RECIPIENT_COLUMNS, import_recipients
from bot.conversation.models import Contact
from bot.rules.nik import find_niks
from bot.registry.models import NikLookup
from bot.rules.smstext import is_gsm7, segment_count
from bot.registry.status import (
    ASK_NIK,
    FAILED_ADVICE,
    HOW_TO_ASK_WITH_PHONE,
    HOW_TO_ASK_WITHOUT_PHONE,
    NO_PROGRAMME,
    POSTPONED_ADVICE,
    RATE_LIMITED,
    RETRY_NIK,
    StatusService,
    channel_label,
    format_rupiah,
    parse_choice,
)

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)  # 10.00 WIB, 12.00 WIT
PERSONA = {persona.key: persona for persona in DEMO_PERSONAS}
STRANGER = "kstranger"
STRANGER_PHONE = "+6281399998888"
TOPICS = ["status", "schedule", "history"]


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(db: Database, clock: Clock) -> StatusService:
    """The demo personas, a contact for each persona phone, and one stranger."""
    seed_demo(db, recipients=0, today=TODAY)
    with db.session() as session:
        for persona in DEMO_PERSONAS:
            exists = session.scalar(select(Contact).where(Contact.address == persona.phone))
            if persona.phone and exists is None:
                session.add(Contact(address=persona.phone, conversation_key=f"k{persona.key}"))
        session.add(Contact(address=STRANGER_PHONE, conversation_key=STRANGER))
    return StatusService(db, secret_key="test-secret", clock=clock)


def text_of(service: StatusService, key: str, nik: str | None, topic: str, **kwargs) -> str:
    return service.answer(key, nik, topic, **kwargs).text


def nik(key: str) -> str:
    return PERSONA[key].nik


# --- the registered phone sees everything -------------------------------------------------


def test_status_for_the_registered_phone_without_typing_a_nik(service: StatusService) -> None:
    answer = service.answer("ksiti", None, "status")

    assert answer.needs_nik is False
    assert answer.text.splitlines() == [
        "Bansos a.n. Siti Wulandari:",
        "PKH: aktif, Tahap 4 2026 dijadwalkan 27/11/26",
        "BPNT: aktif, Tahap 4 2026 dijadwalkan 29/11/26",
        "PBI-JK: aktif, iuran BPJS Kesehatan dibayar pemerintah, tanpa uang tunai",
        "Ketik JADWAL atau RIWAYAT untuk rincian.",
    ]


def test_schedule_gives_local_date_channel_and_amount(service: StatusService) -> None:
    assert text_of(service, "ksiti", None, "schedule").splitlines() == [
        "Jadwal bansos Siti Wulandari:",
        "PKH Tahap 4 2026 Rp975.000",
        "Jumat, 27 November 2026, KKS Bank BRI",
        "BPNT Tahap 4 2026 Rp600.000",
        "Minggu, 29 November 2026, KKS Bank BRI",
        "PBI-JK: iuran BPJS Kesehatan dibayar pemerintah, tanpa uang tunai",
    ]


def test_history_is_most_recent_first_and_compact(service: StatusService) -> None:
    lines = text_of(service, "ksiti", None, "history").splitlines()

    assert lines == [
        "Riwayat bansos Siti Wulandari:",
        "17/08/26 BPNT Tahap 3 Rp600.000 tersalur",
        "14/08/26 PKH Tahap 3 Rp975.000 tersalur",
        "17/05/26 BPNT Tahap 2 Rp600.000 tersalur",
        "14/05/26 PKH Tahap 2 Rp975.000 tersalur",
        "17/02/26 BPNT Tahap 1 Rp600.000 tersalur",
    ]
    assert all(segment_count(line) == 1 for line in lines)
    whatsapp = text_of(service, "ksiti", None, "history", channel="whatsapp").splitlines()
    assert len(whatsapp) == 1 + 8


def test_program_slot_narrows_the_answer(service: StatusService) -> None:
    text = text_of(service, "ksiti", None, "schedule", program="bpnt")

    assert "BPNT Tahap 4 2026 Rp600.000" in text
    assert "PKH" not in text


def test_the_day_is_the_recipients_local_day(service: StatusService, clock: Clock) -> None:
    """At 16.00 UTC it is already tomorrow in Papua (WIT) but still today in Java (WIB)."""
    clock.now = datetime(2026, 11, 26, 16, 30, tzinfo=timezone.utc)
    # Siti's PKH is on 27 November: still ahead in WIB (23.30 on the 26th).
    assert "PKH Tahap 4 2026 Rp975.000" in text_of(service, "ksiti", None, "schedule")
    clock.now = datetime(2026, 11, 27, 17, 30, tzinfo=timezone.utc)
    # 00.30 WIB on the 28th: the PKH date has passed and is shown as in progress.
    assert "Jumat, 27 November 2026, KKS Bank BRI (sedang diproses)" in text_of(
        service, "ksiti", None, "schedule"
    )


@pytest.mark.parametrize(
    "key, topic, expected",
    [
        ("yohana", "status", ["PKH: aktif, Tahap 4 2026 gagal disalurkan", FAILED_ADVICE]),
        (
            "yohana",
            "schedule",
            ["PKH Tahap 4 2026: gagal disalurkan", "BPNT: belum ada jadwal", FAILED_ADVICE],
        ),
        ("yohana", "history", ["17/11/26 PKH Tahap 4 Rp600.000 gagal"]),
        (
            "made",
            "status",
            [
                "BPNT: aktif, Tahap 4 2026 ditunda",
                "BLT: aktif, Tahap 4 2026 dijadwalkan 02/12/26",
                POSTPONED_ADVICE,
            ],
        ),
        (
            "made",
            "schedule",
            [
                "BPNT Tahap 4 2026: ditunda",
                "BLT Tahap 4 2026 Rp900.000",
                "Rabu, 2 Desember 2026, KKS Bank BNI",
            ],
        ),
        (
            "ahmad",
            "schedule",
            [
                "BPNT: belum ada jadwal penyaluran berikutnya",
                "PBI-JK: iuran BPJS Kesehatan dibayar pemerintah",
            ],
        ),
        ("ahmad", "status", ["BPNT: aktif, Tahap 3 2026 sudah tersalur"]),
    ],
)
def test_edge_cases_for_the_registered_phone(service, key, topic, expected) -> None:
    text = text_of(service, f"k{key}", None, topic)

    for fragment in expected:
        assert fragment in text


def test_failed_advice_names_what_to_do(service: StatusService) -> None:
    text = text_of(service, "kyohana", None, "status")

    assert "pendamping" in text and "ADU" in text


def test_history_shows_postponed_only_once_its_date_has_passed(service: StatusService) -> None:
    assert "ditunda" not in text_of(service, "kmade", None, "history")


def test_registered_without_any_programme(db: Database, service: StatusService) -> None:
    row = (
        "3578013001650009,Budi Santoso,1965-01-30,0813-5555-0009,35,"
        "Kota Surabaya,Tegalsari,Wonorejo,,false"
    )
    import_recipients(db, io.StringIO(",".join(RECIPIENT_COLUMNS) + "\n" + row + "\n"))
    with db.session() as session:
        session.add(Contact(address="+6281355550009", conversation_key="knoprog"))

    assert (
        text_of(service, "knoprog", None, "schedule").splitlines()[1:] == NO_PROGRAMME.splitlines()
    )


def test_owner_may_type_their_own_nik(service: StatusService) -> None:
    text = text_of(service, "ksiti", "3201 0155 0388 0003", "schedule")

    assert "Rp975.000" in text


# --- several households on one phone ------------------------------------------------------


def test_shared_phone_is_asked_which_household(service: StatusService) -> None:
    answer = service.answer("ksumiati", None, "schedule")

    assert answer.needs_nik is True
    assert [(choice.title, choice.payload) for choice in answer.choices] == [("S******", "1"), ("R********", "2")]
    assert answer.text.splitlines()[:3] == [
        "Nomor ini terdaftar untuk 2 keluarga:",
        "1. S******",
        "2. R********",
    ]
    assert service.ask_for_nik("ksumiati").text == answer.text


@pytest.mark.parametrize(
    "chosen, name", [("1", "Sumiati"), ("2", "Rahmawati"), (" 2. ", "Rahmawati")]
)
def test_shared_phone_accepts_the_number(service: StatusService, chosen: str, name: str) -> None:
    assert text_of(service, "ksumiati", chosen, "status").startswith(f"Bansos a.n. {name}:")


def test_shared_phone_accepts_the_nik(service: StatusService) -> None:
    assert "Rp600.000" in text_of(service, "ksumiati", nik("rahmawati"), "schedule")


def test_number_out_of_range_is_an_invalid_nik(service: StatusService) -> None:
    answer = service.answer("ksumiati", "3", "status")

    assert answer.needs_nik is True
    assert answer.text == f"NIK harus 16 angka, Bapak/Ibu mengirim 1 angka. {RETRY_NIK}"


def test_households_for_contact(service: StatusService) -> None:
    assert [h.masked_name for h in service.households_for_contact("ksumiati")] == [
        "S******",
        "R********",
    ]
    assert len(service.households_for_contact("ksiti")) == 1
    assert service.households_for_contact(STRANGER) == []
    assert service.households_for_contact("unknown-key") == []


# --- anyone else sees at most "registered" and a masked name -------------------------------


@pytest.mark.parametrize("topic", TOPICS)
def test_stranger_gets_the_masked_name_only(service: StatusService, topic: str) -> None:
    text = text_of(service, STRANGER, nik("siti"), topic)

    assert text.splitlines() == [
        "NIK 3201********0003 terdaftar sebagai penerima bansos a.n. S*** W********.",
        *HOW_TO_ASK_WITH_PHONE.splitlines(),
    ]
    for secret in ("Rp", "BRI", "PKH", "Wulandari", "Siti", "2026", nik("siti")):
        assert secret not in text


def test_other_household_on_a_registered_phone_is_still_a_stranger(service: StatusService) -> None:
    text = text_of(service, "kyohana", nik("siti"), "schedule")

    assert "S*** W********" in text and "Rp" not in text


def test_sender_unknown_to_the_database_is_a_stranger(service: StatusService) -> None:
    assert "S*** W********" in text_of(service, "never-seen", nik("siti"), "schedule")


def test_registered_without_phone_is_told_where_to_ask(service: StatusService) -> None:
    text = text_of(service, STRANGER, nik("maria"), "status")

    assert "M**** L**********" in text
    assert text.endswith(HOW_TO_ASK_WITHOUT_PHONE)


def test_not_registered_explains_usul(service: StatusService) -> None:
    text = text_of(service, STRANGER, nik("unregistered"), "status")

    assert text.startswith("NIK 3273********0008 tidak terdaftar sebagai penerima bansos.")
    assert "USUL" in text


def test_sender_without_households_is_asked_for_a_nik(service: StatusService) -> None:
    answer = service.answer(STRANGER, None, "status")

    assert (answer.text, answer.needs_nik) == (ASK_NIK, True)


@pytest.mark.parametrize(
    "typed, reason",
    [
        ("123", "NIK harus 16 angka, Bapak/Ibu mengirim 3 angka."),
        ("3201O15503880003", "NIK berisi huruf. NIK hanya terdiri dari 16 angka."),
        ("3201013202900003", "Tanggal lahir pada NIK tidak valid."),
    ],
)
def test_invalid_nik_gives_the_reason_and_asks_again(
    service: StatusService, typed: str, reason: str
) -> None:
    answer = service.answer(STRANGER, typed, "status")

    assert answer.needs_nik is True
    assert answer.text == f"{reason} {RETRY_NIK}"


# --- rate limit ---------------------------------------------------------------------------

OTHER_NIKS = [f"35780130016500{n:02d}" for n in range(10, 20)]


def test_rate_limit_allows_five_distinct_niks_a_day(service: StatusService, clock: Clock) -> None:
    for other in OTHER_NIKS[:5]:
        assert "tidak terdaftar" in text_of(service, STRANGER, other, "status")

    refused = text_of(service, STRANGER, OTHER_NIKS[5], "status")
    assert refused == RATE_LIMITED.format(limit=5)
    # The same NIK again costs nothing, and another sender has their own allowance.
    assert "tidak terdaftar" in text_of(service, STRANGER, OTHER_NIKS[0], "status")
    assert "tidak terdaftar" in text_of(service, "kyohana", OTHER_NIKS[5], "status")
    # A sliding 24 hours later the allowance is back.
    clock.now = NOW + timedelta(hours=24, seconds=1)
    assert "tidak terdaftar" in text_of(service, STRANGER, OTHER_NIKS[5], "status")


def test_own_households_do_not_count(service: StatusService) -> None:
    for _ in range(3):
        text_of(service, "ksumiati", nik("sumiati"), "status")
        text_of(service, "ksumiati", nik("rahmawati"), "status")
        text_of(service, "ksumiati", "1", "status")
    for other in OTHER_NIKS[:5]:
        text_of(service, "ksumiati", other, "status")

    assert text_of(service, "ksumiati", OTHER_NIKS[5], "status") == RATE_LIMITED.format(limit=5)
    assert "Rp600.000" in text_of(service, "ksumiati", nik("rahmawati"), "schedule")


def test_invalid_niks_do_not_count(service: StatusService) -> None:
    for _ in range(6):
        text_of(service, STRANGER, "123", "status")

    assert "terdaftar" in text_of(service, STRANGER, nik("siti"), "status")


def test_lookups_keep_a_keyed_hash_never_the_nik(
    db: Database, service: StatusService, clock: Clock
) -> None:
    text_of(service, STRANGER, nik("siti"), "status")
    other_key = StatusService(db, secret_key="another-secret", clock=clock)
    text_of(other_key, "kyohana", nik("siti"), "status")

    with db.session() as session:
        rows = session.scalars(select(NikLookup).order_by(NikLookup.id)).all()
    assert [row.sender_key for row in rows] == [STRANGER, "kyohana"]
    assert all(nik("siti") not in row.nik_hash and len(row.nik_hash) == 64 for row in rows)
    assert rows[0].nik_hash != rows[1].nik_hash


def test_expired_lookups_are_deleted(db: Database, service: StatusService, clock: Clock) -> None:
    text_of(service, STRANGER, OTHER_NIKS[0], "status")
    clock.now = NOW + timedelta(days=2)
    text_of(service, STRANGER, OTHER_NIKS[1], "status")

    with db.session() as session:
        assert len(session.scalars(select(NikLookup)).all()) == 1


# --- wording and logs -----------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
@pytest.mark.parametrize("topic", TOPICS)
@pytest.mark.parametrize("key", [p.key for p in DEMO_PERSONAS])
def test_every_answer_is_plain_and_within_three_segments(service, key, topic, channel) -> None:
    persona = PERSONA[key]
    sender = f"k{key}" if persona.phone else STRANGER
    text = text_of(service, sender, None if persona.phone else persona.nik, topic, channel=channel)

    assert segment_count(text) <= 3
    assert is_gsm7(text)
    assert "\n\n" not in text
    assert all(len(line) <= 100 for line in text.splitlines())


def test_no_log_record_holds_a_whole_nik(
    service: StatusService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for persona in DEMO_PERSONAS:
        for topic in TOPICS:
            text_of(service, STRANGER, persona.nik, topic)
            text_of(service, "ksiti", persona.nik, topic)
    for other in OTHER_NIKS:
        text_of(service, STRANGER, other, "status")

    messages = [record.getMessage() for record in caplog.records]
    assert any("3201********0003" in message for message in messages)
    assert [message for message in messages if find_niks(message)] == []


@pytest.mark.parametrize(
    "amount, text",
    [(600_000, "Rp600.000"), (975_000, "Rp975.000"), (1_500, "Rp1.500"), (300, "Rp300")],
)
def test_format_rupiah(amount: int, text: str) -> None:
    assert format_rupiah(amount) == text


@pytest.mark.parametrize(
    "channel, label",
    [("BRI", "KKS Bank BRI"), ("Mandiri", "KKS Bank Mandiri"), ("PT Pos", "Kantor Pos")],
)
def test_channel_label(channel: str, label: str) -> None:
    assert channel_label(channel) == label


@pytest.mark.parametrize(
    "text, count, choice",
    [
        ("1", 2, 1),
        ("2", 2, 2),
        ("3", 2, None),
        ("0", 2, None),
        ("1", 1, None),
        ("1.", 3, 1),
        ("satu", 2, None),
        (None, 2, None),
    ],
)
def test_parse_choice(text, count, choice) -> None:
    assert parse_choice(text, count) == choice
