"""Usul, sanggah and pengaduan filed by chat, and followed with TIKET, through the signed
webhook and the real Rasa and action servers, on SMS and WhatsApp."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.db import Database
from bot.channels.outbox import Outbox
from bot.channels.sandbox import SandboxTransport
from bot.conversation.models import Contact, Direction, Message
from bot.conversation.replies import MEDIA_WITHOUT_TEXT
from bot.reports.service import IDENTITY_PROTECTED_TEXT, ReportService
from bot.reports.models import Report, ReportKind, ReportStatus
from bot.rules.smstext import is_gsm7, segment_count
from tests.support.phones import PERSONAS, Phone, new_number

NIK_SITI = PERSONAS["siti"].nik
NIK_BUDI = "3578031208850002"
PHOTO = "https://api.twilio.com/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages/MM1/Media/ME1"
REFERENCE = re.compile(r"\b(?:USL|SGH|ADU)-\d{8}-[A-HJ-NP-Z2-9]{4}\b")


def reference_in(text: str) -> str:
    found = REFERENCE.search(text)
    assert found, text
    return found.group()


def stored(db: Database, reference: str) -> Report:
    with db.session() as session:
        return session.scalars(
            select(Report)
            .where(Report.reference == reference)
            .options(selectinload(Report.attachments), selectinload(Report.events))
        ).one()


def assert_sms_safe(replies: list[str]) -> None:
    assert len(replies) == 1
    assert is_gsm7(replies[0]) and segment_count(replies[0]) <= 3


# --- each kind, step by step ----------------------------------------------------------------


def test_usul_step_by_step_by_sms_for_a_household_without_a_known_nik(sms_phone: Phone, e2e_db: Database) -> None:
    steps = [
        ("USUL", "untuk siapa"),
        ("2", "NIK kepala keluarga yang diusulkan"),
        ("Mbah Sarinah", "alamat"),
        ("Kp Sukamaju RT 02 RW 05 Desa Cibodas Kec Pacet Kab Cianjur", "alasan"),
        ("1", "Ceritakan singkat kondisi"),
        ("Nenek tinggal sendiri, rumahnya hampir roboh", "Ringkasan usulan"),
    ]
    for text, expected in steps:
        replies = sms_phone.send(text)
        assert_sms_safe(replies)
        assert expected.lower() in replies[0].lower()
        assert "foto" not in replies[0].lower()
    reply = sms_phone.say("ya")
    assert "dengan nomor USL-" in reply and "TIKET USL-" in reply

    report = stored(e2e_db, reference_in(reply))
    assert (report.kind, report.proposed_for, report.category) == (ReportKind.USUL, "untuk_orang_lain", "lansia_tunggal")
    assert report.subject_name == "Mbah Sarinah" and report.subject_nik is None
    assert report.subject_address.startswith("Kp Sukamaju") and report.attachments == []


def test_sanggah_step_by_step_on_whatsapp_without_a_photo(wa_phone: Phone, e2e_db: Database) -> None:
    assert "NIK penerima yang disanggah" in wa_phone.say("SANGGAH")
    assert "alasan sanggahan" in wa_phone.say(NIK_BUDI)
    assert "Ceritakan singkat alasan" in wa_phone.say("sudah meninggal")
    assert "foto bukti" in wa_phone.say("Meninggal dunia bulan Maret, tapi namanya masih terdaftar")
    summary = wa_phone.say("lewati")
    assert "Ringkasan sanggahan" in summary and "NIK: 3578********0002" in summary
    reply = wa_phone.say("ya")

    report = stored(e2e_db, reference_in(reply))
    assert (report.kind, report.subject_nik, report.category) == (ReportKind.SANGGAH, NIK_BUDI, "meninggal")
    assert report.routed_to == "3578" and report.reporter_channel == "whatsapp"


def test_complaint_step_by_step_with_optional_questions_skipped(sms_phone: Phone, e2e_db: Database) -> None:
    assert "jenis aduan" in sms_phone.say("ADU")
    assert "isi aduan" in sms_phone.say("dana belum diterima")
    assert "LEWATI" in sms_phone.say("Dana PKH tahap 3 belum masuk ke rekening KKS saya")
    assert "alamat" in sms_phone.say("lewati")
    assert "Ringkasan pengaduan" in sms_phone.say("lewati")
    report = stored(e2e_db, reference_in(sms_phone.say("ya")))
    assert report.category == "dana_belum_diterima" and report.subject_nik is None
    assert report.province_code is None and report.routed_to is None


# --- all in one message ---------------------------------------------------------------------


def test_whole_complaint_in_one_sms(sms_phone: Phone, e2e_db: Database) -> None:
    replies = sms_phone.send(f"ADU Siti Aminah {NIK_SITI} Desa Cibinong RT 02 uang bpnt tidak cair 2 bulan")
    assert_sms_safe(replies)
    summary = replies[0]
    assert "Nama: Siti Aminah" in summary and "Alamat: Desa Cibinong RT 02" in summary
    assert "Alasan: Dana belum diterima" in summary and NIK_SITI not in summary

    replies = sms_phone.send("ya")
    assert_sms_safe(replies)
    report = stored(e2e_db, reference_in(replies[0]))
    assert (report.subject_nik, report.province_code) == (NIK_SITI, "32")
    assert report.description == "uang bpnt tidak cair 2 bulan"


def test_whole_sanggah_with_hash_separators(sms_phone: Phone, e2e_db: Database) -> None:
    summary = sms_phone.say(f"SANGGAH#Budi Santoso#{NIK_BUDI}#Kel Wonokromo Surabaya#suaminya PNS di kecamatan")
    assert "Alasan: Keluarga ASN/TNI/Polri" in summary
    report = stored(e2e_db, reference_in(sms_phone.say("ya")))
    assert report.subject_name == "Budi Santoso" and report.subject_address == "Kel Wonokromo Surabaya"


# --- corrections and cancelling ---------------------------------------------------------------


def test_correcting_an_answer_from_the_summary(sms_phone: Phone, e2e_db: Database) -> None:
    sms_phone.say(f"SANGGAH Budi Santoso {NIK_BUDI} Kel Wonokromo sudah pindah ke Kalimantan tahun lalu")
    menu = sms_phone.say("ubah")
    assert "Bagian mana" in menu and "Alamat" in menu
    number = next(line.split(".")[0] for line in menu.splitlines() if line.endswith("Alamat"))
    assert "alamat" in sms_phone.say(number).lower()
    summary = sms_phone.say("Jl Ngagel Jaya 12 Kel Wonokromo Kec Wonokromo Surabaya")
    assert "Alamat: Jl Ngagel Jaya 12" in summary and "Balas YA" in summary

    assert "NIK penerima" in sms_phone.say("salah nik")
    assert "NIK: 3201********0003" in sms_phone.say(NIK_SITI)
    report = stored(e2e_db, reference_in(sms_phone.say("ya")))
    assert report.subject_nik == NIK_SITI and report.subject_address.startswith("Jl Ngagel Jaya 12")


@pytest.mark.parametrize("keyword, answers", [("USUL", ["1"]), ("SANGGAH", []), ("ADU", ["2"])])
def test_batal_cancels_at_any_step(sms_phone: Phone, e2e_db: Database, keyword: str, answers: list[str]) -> None:
    sms_phone.say(keyword)
    for answer in answers:
        sms_phone.say(answer)
    assert "dibatalkan" in sms_phone.say("BATAL").lower()
    assert "Halo" in sms_phone.say("halo")
    with e2e_db.session() as session:
        contact_id = session.scalar(select(Contact.id).where(Contact.address == sms_phone.number))
        assert session.scalar(select(Report.id).where(Report.reporter_contact_id == contact_id)) is None


def test_cancel_in_words_at_the_summary(sms_phone: Phone) -> None:
    sms_phone.say(f"ADU Siti Aminah {NIK_SITI} Desa Cibinong uang bpnt tidak cair")
    assert "dibatalkan" in sms_phone.say("gak jadi").lower()


def test_invalid_nik_is_explained_then_a_valid_one_continues(sms_phone: Phone) -> None:
    sms_phone.say("SANGGAH")
    assert "NIK harus 16 angka, Bapak/Ibu mengirim 12 angka." in sms_phone.say("3201 0145 0190")
    assert "Tanggal lahir pada NIK tidak valid." in sms_phone.say("3201013202900003")
    assert "alasan sanggahan" in sms_phone.say(NIK_BUDI)


def test_a_greeting_in_the_middle_is_answered_and_the_question_asked_again(sms_phone: Phone) -> None:
    sms_phone.say("ADU")
    reply = sms_phone.say("halo")
    assert "Halo Bapak/Ibu" in reply and "jenis aduan" in reply
    assert "isi aduan" in sms_phone.say("5")


def test_a_status_keyword_leaves_the_report_for_the_status(e2e_app: Flask) -> None:
    phone = Phone(e2e_app.test_client(), PERSONAS["siti"].phone)
    phone.say("USUL")
    assert "PKH" in phone.say("CEK")
    assert "Halo" in phone.say("halo")


# --- evidence ---------------------------------------------------------------------------------


def test_whatsapp_photo_is_stored_on_the_report(wa_phone: Phone, e2e_db: Database) -> None:
    question = wa_phone.say(f"ADU Siti Aminah {NIK_SITI} Desa Cibinong uang bpnt tidak cair 2 bulan")
    assert "foto bukti" in question
    summary = "\n".join(wa_phone.send("ini buktinya", media=[(PHOTO, "image/jpeg")]))
    assert "Lampiran: 1 foto/berkas" in summary
    report = stored(e2e_db, reference_in(wa_phone.say("ya")))
    assert [(a.url, a.content_type) for a in report.attachments] == [(PHOTO, "image/jpeg")]


def test_whatsapp_photo_without_a_caption_is_kept_with_the_next_message(wa_phone: Phone, e2e_db: Database) -> None:
    wa_phone.say(f"SANGGAH Budi Santoso {NIK_BUDI} Kel Wonokromo sudah meninggal tahun lalu")
    assert wa_phone.send("", media=[(PHOTO, "image/jpeg")]) == [MEDIA_WITHOUT_TEXT]
    assert "Lampiran: 1 foto/berkas" in wa_phone.say("itu fotonya")
    report = stored(e2e_db, reference_in(wa_phone.say("ya")))
    assert [a.url for a in report.attachments] == [PHOTO]


# --- follow-up --------------------------------------------------------------------------------


def test_ticket_by_the_owner_and_by_a_stranger(e2e_app: Flask, sms_phone: Phone) -> None:
    sms_phone.say(f"ADU Siti Aminah {NIK_SITI} Desa Cibinong kartu KKS saya hilang di pasar")
    reference = reference_in(sms_phone.say("ya"))

    assert f"Laporan {reference} (pengaduan) sudah kami terima" in sms_phone.say(f"TIKET {reference}")
    assert "nomor laporan" in sms_phone.say("TIKET")
    assert reference in sms_phone.say(reference.lower())

    stranger = Phone(e2e_app.test_client(), new_number())
    reply = stranger.say(f"TIKET {reference}")
    assert "tidak ditemukan" in reply and "Siti" not in reply


def test_status_change_reaches_the_reporter(sms_phone: Phone, e2e_db: Database) -> None:
    sms_phone.say(f"ADU Siti Aminah {NIK_SITI} Desa Cibinong uang bpnt tidak cair 3 bulan")
    reference = reference_in(sms_phone.say("ya"))

    service = ReportService(e2e_db, Outbox(e2e_db, SandboxTransport()))
    service.change_status(reference, ReportStatus.DIVERIFIKASI, "petugas.bogor", "Data sudah dicek ke bank BRI.")

    with e2e_db.session() as session:
        notice = session.scalars(
            select(Message)
            .join(Contact, Message.contact_id == Contact.id)
            .where(Contact.address == sms_phone.number, Message.direction == Direction.OUTBOUND)
            .order_by(Message.id.desc())
        ).first()
        assert notice.provider == "sandbox" and notice.in_reply_to_id is None
        assert notice.body.startswith(f"Kabar laporan {reference}:") and "diverifikasi" in notice.body
        assert "Data sudah dicek ke bank BRI." in notice.body
    assert "Catatan petugas: Data sudah dicek" in sms_phone.say(f"TIKET {reference}")


# --- safety -----------------------------------------------------------------------------------


def test_the_same_report_twice_is_merged_under_one_reference(sms_phone: Phone, e2e_db: Database) -> None:
    report = f"ADU Siti Aminah {NIK_SITI} Desa Cibinong uang bpnt tidak cair sejak Agustus"
    sms_phone.say(report)
    first = reference_in(sms_phone.say("ya"))
    sms_phone.say(report)
    second = sms_phone.say("ya")

    assert reference_in(second) == first and "tidak dibuat nomor baru" in second
    assert [event.event for event in stored(e2e_db, first).events] == ["created", "merged"]


def test_a_levy_complaint_is_flagged_and_the_reporter_told_they_are_protected(sms_phone: Phone, e2e_db: Database) -> None:
    sms_phone.say("ADU")
    question = sms_phone.say("2")
    assert "Identitas Bapak/Ibu kami rahasiakan." in question
    sms_phone.say("Ketua kelompok memotong 50 ribu setiap pencairan BPNT")
    sms_phone.say("lewati")
    sms_phone.say("Desa Cibinong Kec Cibinong Kab Bogor")
    reply = sms_phone.say("ya")

    assert IDENTITY_PROTECTED_TEXT in reply
    report = stored(e2e_db, reference_in(reply))
    assert report.is_sensitive and report.category == "potongan_pungli"


def test_no_log_line_carries_a_whole_nik(sms_phone: Phone, e2e_workdir: Path) -> None:
    sms_phone.say(f"ADU Siti Aminah {NIK_SITI} Desa Cibinong uang bpnt tidak cair")
    sms_phone.say("ya")
    logs = (e2e_workdir / "actions.log").read_text() + (e2e_workdir / "rasa.log").read_text()
    assert NIK_SITI not in logs
