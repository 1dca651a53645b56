"""Status without a NIK, by full name and village (issue 16, part 4), through the signed
webhook and the real Rasa and action servers, with the demo households Euis Komalasari
(Sukamaju, Kec. Cibinong) and Dedi Permana (the other Sukamaju, Kec. Baleendah)."""
from __future__ import annotations

import re

from flask import Flask

from bot.db import Database
from bot.registry.status import ASK_AREA
from bot.rules.nik import find_niks, mask_name
from bot.rules.smstext import segment_count
from tests.support.phones import PERSONAS, Phone, persona_phone
from tests.support.villages import DISTRICTS, RESIDENT, add_villages

EUIS, MARIA = PERSONAS["euis"], PERSONAS["maria"]


def assert_public_only(reply: str, full_name: str) -> None:
    """What Cek Bansos shows and nothing more: no amount, date, channel, NIK or whole name."""
    assert mask_name(full_name) in reply and full_name not in reply
    assert "Rp" not in reply and find_niks(reply) == []
    assert not re.search(r"\d{1,2}/\d{1,2}/\d{2}", reply) and "BRI" not in reply


def test_forgotten_nik_then_name_village_and_which_village(sms_phone: Phone) -> None:
    assert "NAMA" in sms_phone.say("sy mau cek bansos")
    assert "nama lengkap" in sms_phone.say("saya lupa nik").lower()
    assert "desa/kelurahan" in sms_phone.say(EUIS.name)
    question = sms_phone.say("desa Sukamaju")
    assert "1. Sukamaju, Kec. Baleendah, Kab. Bandung" in question
    assert "2. Sukamaju, Kec. Cibinong, Kab. Bogor" in question

    replies = sms_phone.send("2")

    assert len(replies) == 1 and segment_count(replies[0]) <= 3
    assert "PKH: aktif" in replies[0] and "BPNT: aktif" in replies[0]
    assert_public_only(replies[0], EUIS.name)


def test_one_sms_with_the_keyword(sms_phone: Phone) -> None:
    question = sms_phone.say(f"CEK NAMA {EUIS.name} DESA Sukamaju")
    assert "2. Sukamaju, Kec. Cibinong" in question

    assert_public_only(sms_phone.say("2"), EUIS.name)


def test_whatsapp_village_of_its_own_needs_no_number(wa_phone: Phone) -> None:
    assert "nama lengkap" in wa_phone.say("NAMA").lower()
    # Read by the NLU as "check by name" again, but here it answers the question.
    assert "desa/kelurahan" in wa_phone.say(f"nama sy {MARIA.name}")
    reply = wa_phone.say("Kel. Batu Merah")

    assert "Batu Merah, Kec. Sirimau, Kota Ambon" in reply and "PKH: aktif" in reply
    assert_public_only(reply, MARIA.name)


def test_unknown_village_and_wrong_number_are_asked_again(sms_phone: Phone) -> None:
    sms_phone.say("NAMA")
    sms_phone.say(EUIS.name)
    assert "tidak ada dalam data" in sms_phone.say("desa Sukamakmur")
    assert "1. Sukamaju" in sms_phone.say("Sukamaju")
    assert "Balas angka 1 sampai 2" in sms_phone.say("5")

    assert_public_only(sms_phone.say("2"), EUIS.name)


def test_twelve_villages_of_one_name_are_narrowed_by_kecamatan_or_kota(
    e2e_db: Database, sms_phone: Phone
) -> None:
    # A name the demo does not have, so the other tests' Sukamaju keeps its two villages.
    add_villages(e2e_db, "Mekarsari", {**DISTRICTS, "Kabupaten Garut": ("Tarogong", "Garut Kota")})
    assert sms_phone.say(f"CEK NAMA {RESIDENT} DESA Mekarsari") == ASK_AREA.format(count=12, village="Mekarsari")
    listed = sms_phone.say("Kota Bogor")
    assert "1. Mekarsari, Kec. Bogor Barat, Kota Bogor" in listed
    assert "2. Mekarsari, Kec. Bogor Utara, Kota Bogor" in listed and "3." not in listed
    assert "tidak ditemukan" in sms_phone.say("2")

    assert "kecamatan" in sms_phone.say(f"CEK NAMA {RESIDENT} DESA Mekarsari")
    assert_public_only(sms_phone.say("kec Cisarua"), RESIDENT)


def test_name_not_found_says_what_to_do(sms_phone: Phone) -> None:
    reply = sms_phone.say("CEK NAMA Euis Komala DESA Sukamaju")
    assert "1." in reply
    reply = sms_phone.say("2")

    assert "tidak ditemukan" in reply and "KTP" in reply and "CEK" in reply


def test_cancel_while_the_name_is_asked(sms_phone: Phone) -> None:
    sms_phone.say("NAMA")
    assert "dibatalkan" in sms_phone.say("BATAL").lower()


def test_name_look_ups_share_the_daily_limit_with_niks(sms_phone: Phone) -> None:
    others = [p.nik for p in PERSONAS.values() if p.key in ("siti", "yohana", "made", "ahmad", "maria")]
    assert all("batas" not in sms_phone.say(f"CEK {nik}").lower() for nik in others)

    sms_phone.say(f"CEK NAMA {EUIS.name} DESA Sukamaju")
    assert "batas" in sms_phone.say("2").lower()


def test_registered_phone_is_still_recognised(e2e_app: Flask) -> None:
    reply = persona_phone(e2e_app.test_client(), "siti").say("saya lupa nik")

    assert "Siti Wulandari" in reply and "PKH" in reply
