"""Status without a NIK: matching a full name in a village, the public answer, the shared
daily limit, the list of villages that share a name, and the NAMA keyword."""

from __future__ import annotations

import io
import re
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select

from bot.conversation.keywords import keyword_payload
from bot.conversation.models import Contact
from bot.db import Database
from bot.registry.by_name import InvalidName, normalise_name, normalise_village
from bot.registry.demo import DEMO_PERSONAS, seed_demo
from bot.registry.importer import (
    DISBURSEMENT_COLUMNS,
    RECIPIENT_COLUMNS,
    import_disbursements,
    import_recipients,
)
from bot.registry.models import NikLookup
from bot.registry.status import (
    ASK_AREA,
    NAME_NOT_FOUND,
    RATE_LIMITED,
    RETRY_NAME,
    RETRY_VILLAGE,
    StatusService,
)
from bot.rules.nik import find_niks, mask_name
from bot.rules.smstext import is_gsm7, segment_count
from tests.support.villages import RESIDENT, VILLAGE, add_sukamaju_villages

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)
PERSONA = {persona.key: persona for persona in DEMO_PERSONAS}
EUIS, DEDI, MARIA = PERSONA["euis"], PERSONA["dedi"], PERSONA["maria"]
STRANGER = "kstranger"
# Villages sharing the name are listed by regency: Kab. Bandung before Kab. Bogor.
BALEENDAH, CIBINONG = "1", "2"
MONTHS = "Januari|Februari|Maret|April|Mei|Juni|Juli|Agustus|September|Oktober|November|Desember"


@pytest.fixture
def service(db: Database) -> StatusService:
    seed_demo(db, recipients=0, today=TODAY)
    return StatusService(db, secret_key="test-secret", clock=lambda: NOW)


def add_recipient(db: Database, nik: str, name: str, village: str = "Sukamaju") -> None:
    row = f"{nik},{name},1984-08-12,,32,Kabupaten Bogor,Cibinong,{village},,false"
    report = import_recipients(db, io.StringIO(",".join(RECIPIENT_COLUMNS) + "\n" + row + "\n"))
    assert report.errors == [], report.errors


def assert_public_only(text: str, *full_names: str) -> None:
    """Nothing Cek Bansos keeps back: amounts, dates, channel, NIK, the whole name."""
    assert "Rp" not in text
    assert not re.search(r"\d{1,2}/\d{1,2}/\d{2}", text) and not re.search(MONTHS, text)
    assert not any(word in text for word in ("BRI", "BNI", "Pos", "KKS"))
    assert find_niks(text) == []
    assert all(name not in text for name in full_names)
    assert is_gsm7(text) and segment_count(text) <= 3 and "\n\n" not in text


# --- matching ----------------------------------------------------------------------------------


def test_a_name_in_a_village_of_its_own_gets_the_public_answer(service: StatusService) -> None:
    text = service.answer_by_name(STRANGER, "Maria Latuconsina", "Kel. Batu Merah").text

    assert text.splitlines() == [
        "Hasil cek Desa/Kel. Batu Merah, Kec. Sirimau, Kota Ambon:",
        f"{mask_name(MARIA.name)}:",
        "PKH: aktif, Tahap 4 2026 dalam proses penyaluran",
        *text.splitlines()[3:],
    ]
    # Where amounts and dates are told, in words an elderly reader follows.
    assert text.splitlines()[-2:] == [
        "Jumlah dan tanggal bantuan hanya dikirim ke HP terdaftar.",
        "Atau tanya kantor kelurahan/desa, telepon 171.",
    ]
    assert_public_only(text, MARIA.name)


def test_a_shared_village_name_is_listed_and_the_number_decides(service: StatusService) -> None:
    villages = service.villages("desa Sukamaju")
    choice = service.village_choice(villages).text.splitlines()

    assert choice[1:3] == [
        "1. Sukamaju, Kec. Baleendah, Kab. Bandung",
        "2. Sukamaju, Kec. Cibinong, Kab. Bogor",
    ]
    found = service.answer_by_name(STRANGER, EUIS.name, "Sukamaju", CIBINONG).text
    assert found.splitlines()[:4] == [
        "Hasil cek Desa/Kel. Sukamaju, Kec. Cibinong, Kab. Bogor:",
        "E*** K*********:",
        "PKH: aktif, Tahap 4 2026 sudah tersalur",
        "BPNT: aktif, Tahap 4 2026 dalam proses penyaluran",
    ]
    assert_public_only(found, EUIS.name)
    # Euis does not live in the other Sukamaju, where Dedi's BPNT is postponed.
    assert service.answer_by_name(STRANGER, EUIS.name, "Sukamaju", BALEENDAH).text == (
        NAME_NOT_FOUND.format(village="Sukamaju")
    )
    assert "BPNT: aktif, Tahap 4 2026 ditunda" in (
        service.answer_by_name(STRANGER, DEDI.name, "Sukamaju", BALEENDAH).text
    )


@pytest.mark.parametrize("choice", [None, "", "3", "0", "satu"])
def test_a_shared_village_without_a_valid_number_is_asked_again(
    service: StatusService, choice: str | None
) -> None:
    answer = service.answer_by_name(STRANGER, EUIS.name, "Sukamaju", choice)

    assert (answer.text, answer.needs_nik) == (RETRY_VILLAGE, True)


def test_twelve_villages_of_one_name_ask_the_kecamatan_or_kabupaten_first(
    db: Database, service: StatusService
) -> None:
    add_sukamaju_villages(db)
    villages = service.villages(VILLAGE)
    assert len(villages) == 12

    ask = service.village_choice(villages)
    assert (ask.text, ask.choices) == (ASK_AREA.format(count=12, village=VILLAGE), ())
    assert is_gsm7(ask.text) and segment_count(ask.text) <= 2
    # No number is taken from a list that was never shown.
    for number in ("1", "5", "12"):
        assert service.answer_by_name(STRANGER, RESIDENT, VILLAGE, number).text == RETRY_VILLAGE

    # A kabupaten with too many still asks; the kecamatan names one village.
    assert len(service.villages(f"{VILLAGE}, Kab. Bogor")) == 9
    assert service.village_choice(service.villages(f"{VILLAGE}, kabupaten  bogor")).choices == ()
    [cisarua] = service.villages(f"{VILLAGE}, Kec. Cisarua")
    answer = service.answer_by_name(STRANGER, RESIDENT, f"{VILLAGE}, Kec. Cisarua").text
    assert answer.startswith(f"Hasil cek Desa/Kel. {cisarua.label}:")
    assert_public_only(answer, RESIDENT)


def test_a_narrowed_list_is_numbered_and_offered_as_choices(db: Database, service: StatusService) -> None:
    add_sukamaju_villages(db)
    listed = service.village_choice(service.villages(f"{VILLAGE}, Kota Bogor"))

    assert listed.text.splitlines()[1:3] == [
        "1. Sukamaju, Kec. Bogor Barat, Kota Bogor",
        "2. Sukamaju, Kec. Bogor Utara, Kota Bogor",
    ]
    assert [(c.title, c.payload) for c in listed.choices] == [
        ("Sukamaju, Kec. Bogor Barat, Kota Bogor", "1"),
        ("Sukamaju, Kec. Bogor Utara, Kota Bogor", "2"),
    ]
    # "Bogor" alone is both Kabupaten and Kota Bogor.
    assert len(service.villages(f"{VILLAGE}, Bogor")) == 11
    assert service.villages(f"{VILLAGE}, Kec. Entah") == []


@pytest.mark.parametrize(
    "name, village",
    [
        ("  EUIS   komalasari ", "Kel. SUKAMAJU"),
        ("nama saya Euis Komalasari", "di desa Sukamaju."),
        ("a.n. euis komalasari", "ds. sukamaju"),
    ],
)
def test_case_spacing_and_prefixes_do_not_matter(
    service: StatusService, name: str, village: str
) -> None:
    assert "E*** K*********:" in service.answer_by_name(STRANGER, name, village, CIBINONG).text


@pytest.mark.parametrize("name", ["Euis", "Euis Komalasar", "Euis Komalasari Dewi", "Komalasari"])
def test_only_the_whole_name_matches(service: StatusService, name: str) -> None:
    text = service.answer_by_name(STRANGER, name, "Sukamaju", CIBINONG).text

    assert text == NAME_NOT_FOUND.format(village="Sukamaju")
    assert "USUL" in text and "CEK" in text


def test_namesakes_in_one_village_are_each_shown_masked(
    db: Database, service: StatusService
) -> None:
    add_recipient(db, "3201015208840021", "Euis Komalasari")
    text = service.answer_by_name(STRANGER, EUIS.name, "Sukamaju", CIBINONG).text

    assert text.count("E*** K*********:") == 2
    assert "belum ada program bansos yang aktif" in text
    assert_public_only(text, EUIS.name)


def test_many_namesakes_are_shown_up_to_five_then_counted(
    db: Database, service: StatusService
) -> None:
    for serial in range(21, 27):
        add_recipient(db, f"320101520884{serial:04d}", "Euis Komalasari")
    text = service.answer_by_name(STRANGER, EUIS.name, "Sukamaju", CIBINONG).text

    shown = text.count("E*** K*********:")
    assert 1 <= shown <= 5 and f"Dan {7 - shown} orang lain dengan nama sama." in text
    assert_public_only(text, EUIS.name)


def test_namesakes_with_every_programme_are_cut_to_fit_three_sms(
    db: Database, service: StatusService
) -> None:
    rows = []
    for serial in range(21, 25):
        nik = f"320101520884{serial:04d}"
        add_recipient(db, nik, "Euis Komalasari")
        rows += [
            f"{nik},PKH,Tahap 4 2026,750000,BRI,2026-11-20,tersalur",
            f"{nik},BPNT,Tahap 4 2026,600000,BRI,2026-12-03,dijadwalkan",
            f"{nik},BLT,Tahap 4 2026,900000,BRI,2026-11-25,ditunda",
            f"{nik},PBI-JK,Iuran 2026,504000,,2026-01-02,tersalur",
        ]
    header = ",".join(DISBURSEMENT_COLUMNS)
    assert import_disbursements(db, io.StringIO("\n".join([header, *rows]) + "\n")).errors == []

    text = service.answer_by_name(STRANGER, EUIS.name, "Sukamaju", CIBINONG).text

    shown = text.count("E*** K*********:")
    assert 1 <= shown < 5 and f"Dan {5 - shown} orang lain dengan nama sama." in text
    assert "BLT: aktif, Tahap 4 2026 ditunda" in text and "PBI-JK: aktif" in text
    assert_public_only(text, EUIS.name)


def test_an_unknown_village_is_no_village(service: StatusService) -> None:
    assert service.villages("Desa Entah Berantah") == []
    assert service.answer_by_name(STRANGER, EUIS.name, "Entah Berantah").text == RETRY_VILLAGE


@pytest.mark.parametrize(
    "name, reason",
    [
        ("", "Nama belum terisi."),
        ("3201015208840010", "Nama tidak boleh berisi angka."),
        ("Euis 2", "Nama tidak boleh berisi angka."),
        ("<b>Euis</b>", "Nama hanya berisi huruf, sesuai KTP."),
        ("Ed", "Nama terlalu pendek."),
        ("A" * 101, "Nama hanya berisi huruf, sesuai KTP."),
    ],
)
def test_what_is_not_a_name_gets_its_reason(
    service: StatusService, name: str, reason: str
) -> None:
    answer = service.answer_by_name(STRANGER, name, "Sukamaju", CIBINONG)

    assert (answer.text, answer.needs_nik) == (f"{reason} {RETRY_NAME}", True)
    with pytest.raises(InvalidName):
        normalise_name(name)


@pytest.mark.parametrize("village", ["", "desa", "kel. ", "X" * 101])
def test_what_is_not_a_village_is_refused(village: str) -> None:
    with pytest.raises(InvalidName):
        normalise_village(village)


def test_village_prefixes_are_not_part_of_the_name() -> None:
    typed = ("Desa Sukamaju", "KEL. Batu  Merah", "Kelurahan Sesetan")

    assert [normalise_village(v) for v in typed] == ["sukamaju", "batu merah", "sesetan"]


# --- one daily limit --------------------------------------------------------------------------


def test_name_look_ups_count_against_the_nik_limit(service: StatusService) -> None:
    others = [p.nik for p in DEMO_PERSONAS if p.key in ("siti", "yohana", "made", "ahmad")]
    for nik in others:
        assert "terdaftar" in service.answer(STRANGER, nik, "status").text
    euis = service.answer_by_name(STRANGER, EUIS.name, "Sukamaju", CIBINONG).text
    assert "E*** K*********" in euis

    limited = RATE_LIMITED.format(limit=5)
    assert service.answer_by_name(STRANGER, DEDI.name, "Sukamaju", BALEENDAH).text == limited
    assert service.answer(STRANGER, MARIA.nik, "status").text == limited
    # The same name in the same village again costs nothing; another sender has their own.
    assert service.answer_by_name(STRANGER, EUIS.name, "Sukamaju", CIBINONG).text == euis
    dedi = service.answer_by_name("kother", DEDI.name, "Sukamaju", BALEENDAH).text
    assert "D*** P******" in dedi


def test_name_look_ups_first_then_niks_are_refused(service: StatusService) -> None:
    names = ["Budi Santoso", "Siti Aminah", "Asep Suryana", "Dewi Lestari", "Joko Purnomo"]
    for name in names:
        text = service.answer_by_name(STRANGER, name, "Sukamaju", CIBINONG).text
        assert text == NAME_NOT_FOUND.format(village="Sukamaju")

    assert service.answer(STRANGER, MARIA.nik, "status").text == RATE_LIMITED.format(limit=5)


def test_the_counter_keeps_one_keyed_hash_per_name_and_village(
    db: Database, service: StatusService
) -> None:
    service.answer_by_name(STRANGER, EUIS.name, "Sukamaju", CIBINONG)
    service.answer_by_name(STRANGER, " EUIS komalasari", "Kel. sukamaju", CIBINONG)
    service.answer_by_name(STRANGER, EUIS.name, "Sukamaju", BALEENDAH)

    with db.session() as session:
        stored = session.execute(select(NikLookup.sender_key, NikLookup.nik_hash)).all()
    assert len(stored) == 2, "the same name and village typed differently count once"
    assert all(key == STRANGER and re.fullmatch(r"[0-9a-f]{64}", digest) for key, digest in stored)


def test_registered_phone_is_still_answered_in_full(db: Database, service: StatusService) -> None:
    with db.session() as session:
        session.add(Contact(address="+6281210000001", conversation_key="ksiti"))

    assert "Rp" in service.answer("ksiti", None, "schedule").text


# --- the keyword --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, payload",
    [
        ("NAMA", "/check_status_by_name"),
        ("cek nama", "/check_status_by_name"),
        (
            "CEK NAMA Euis Komalasari DESA Sukamaju",
            '/check_status_by_name{"status_name": "Euis Komalasari", "status_village": "Sukamaju"}',
        ),
        (
            "nama Euis Komalasari, kel. Suka Maju",
            '/check_status_by_name{"status_name": "Euis Komalasari", "status_village": "Suka Maju"}',
        ),
        (
            "NAMA Euis#Sukamaju",
            '/check_status_by_name{"status_name": "Euis", "status_village": "Sukamaju"}',
        ),
        # Sentences, or a name without a village, are left to the NLU.
        ("nama saya Euis", None),
        ("NAMA Euis desa", None),
        ("NAMA Euis 2 DESA Sukamaju", None),
    ],
)
def test_the_nama_keyword(text: str, payload: str | None) -> None:
    assert keyword_payload(text) == payload
