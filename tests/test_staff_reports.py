"""Reports in the dashboard: filters, region scoping, masking, history, status changes
that notify the reporter, CSV export, and the audit entries each one leaves."""
from __future__ import annotations

import csv
import io

import pytest
from flask import Flask
from sqlalchemy import select

from bot.db import Database
from bot.channels.outbox import Outbox
from bot.channels.sandbox import SandboxTransport
from bot.conversation.models import Channel, Contact, Direction, Message
from bot.reports.service import ReportDraft, ReportService
from bot.reports.models import ComplaintCategory, Report, ReportKind, SanggahReason
from bot.handoff.staff_models import AuditEntry
from tests.support.reports import insert_reports
from tests.support.staff import make_staff, post_form, signed_in

REPORTER = "+6281234567890"
MAKASSAR_NIK = "7371014501900003"
BANDUNG_NIK = "3204014501900003"
XSS = "<script>alert(1)</script>"


@pytest.fixture
def refs(sqlite_db: Database) -> dict[str, str]:
    """A plain complaint in Makassar, a sensitive one there naming "Budi", a sanggah in Bandung."""
    with sqlite_db.session() as session:
        contact = Contact(address=REPORTER, last_channel=Channel.SMS)
        session.add(contact)
        session.flush()
        cid = contact.id
    service = ReportService(sqlite_db, Outbox(sqlite_db, SandboxTransport()))
    plain = service.create(ReportDraft(
        kind=ReportKind.PENGADUAN, reporter_contact_id=cid, category=ComplaintCategory.DANA_BELUM_DITERIMA,
        description=f"Dana belum masuk {XSS}", subject_nik=MAKASSAR_NIK,
    ))
    sensitive = service.create(ReportDraft(
        kind=ReportKind.PENGADUAN, reporter_contact_id=cid, category=ComplaintCategory.POTONGAN_PUNGLI,
        description="Pak Budi ketua kelompok memotong Rp50.000 tiap pencairan", province_code="73",
    ))
    sanggah = service.create(ReportDraft(
        kind=ReportKind.SANGGAH, reporter_contact_id=cid, category=SanggahReason.MAMPU,
        description="Keluarga ini punya mobil dan toko besar", subject_nik=BANDUNG_NIK, subject_name="Joko",
    ))
    return {"plain": plain.reference, "sensitive": sensitive.reference, "sanggah": sanggah.reference}


def audit(db: Database) -> list[tuple[str, str, str, str]]:
    with db.session() as session:
        return list(session.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.target, AuditEntry.detail)).tuples())


def listed(html: str, refs: dict[str, str]) -> set[str]:
    return {key for key, ref in refs.items() if ref in html}


@pytest.mark.parametrize(
    "query, expected",
    [
        ("", {"plain", "sensitive", "sanggah"}),
        ("?kind=sanggah", {"sanggah"}),
        ("?kind=pengaduan&sensitive=ya", {"sensitive"}),
        ("?sensitive=tidak", {"plain", "sanggah"}),
        ("?province=32", {"sanggah"}),
        ("?status=selesai", set()),
        ("?kind=bogus&province=99&status=x", {"plain", "sensitive", "sanggah"}),
    ],
)
def test_list_filters(app: Flask, refs: dict[str, str], query: str, expected: set[str]) -> None:
    make_staff(app, "sri", role="supervisor")
    html = signed_in(app, "sri").get(f"/staff/reports{query}").get_data(as_text=True)
    assert listed(html, refs) == expected


def test_agents_see_their_region_and_never_a_report_that_names_them(app: Flask, refs: dict[str, str]) -> None:
    make_staff(app, "ani", region="73", full_name="Ani Lestari")
    make_staff(app, "budi", region="73", full_name="Budi Santoso")
    make_staff(app, "bandung", region="3204")
    assert listed(signed_in(app, "ani").get("/staff/reports").get_data(as_text=True), refs) == {"plain", "sensitive"}
    budi = signed_in(app, "budi")
    assert listed(budi.get("/staff/reports").get_data(as_text=True), refs) == {"plain"}
    assert budi.get(f"/staff/reports/{refs['sensitive']}").status_code == 403
    assert listed(signed_in(app, "bandung").get("/staff/reports").get_data(as_text=True), refs) == {"sanggah"}


def test_detail_is_escaped_masked_and_audited(app: Flask, refs: dict[str, str], sqlite_db: Database) -> None:
    make_staff(app, "ani", region="73")
    html = signed_in(app, "ani").get(f"/staff/reports/{refs['plain']}").get_data(as_text=True)
    assert XSS not in html and "&lt;script&gt;" in html
    assert MAKASSAR_NIK not in html and "7371********0003" in html
    assert "Tampilkan NIK" not in html
    assert ("ani", "view_report", f"report:{refs['plain']}", "") in audit(sqlite_db)


def test_detail_masks_a_nik_typed_into_the_name(app: Flask, sqlite_db: Database) -> None:
    with sqlite_db.session() as session:
        contact = Contact(address=REPORTER, last_channel=Channel.SMS)
        session.add(contact)
        session.flush()
        cid = contact.id
    report = ReportService(sqlite_db, Outbox(sqlite_db, SandboxTransport())).create(ReportDraft(
        kind=ReportKind.SANGGAH, reporter_contact_id=cid, category=SanggahReason.MAMPU,
        description="Punya toko besar", subject_name=f"Joko {BANDUNG_NIK}", province_code="32",
    ))
    make_staff(app, "sri", role="supervisor")
    html = signed_in(app, "sri").get(f"/staff/reports/{report.reference}").get_data(as_text=True)
    assert "Joko" in html and BANDUNG_NIK not in html and "3204********0003" in html


def test_supervisor_reveals_a_nik_with_an_audited_click(app: Flask, refs: dict[str, str], sqlite_db: Database) -> None:
    make_staff(app, "ani", region="73")
    make_staff(app, "sri", role="supervisor")
    page = f"/staff/reports/{refs['plain']}"
    assert post_form(signed_in(app, "ani"), page, f"{page}/reveal").status_code == 403
    response = post_form(signed_in(app, "sri"), page, f"{page}/reveal")
    assert MAKASSAR_NIK in response.get_data(as_text=True)
    assert ("sri", "reveal_nik", f"report:{refs['plain']}", "") in audit(sqlite_db)


def test_status_change_notifies_the_reporter_and_is_audited(app: Flask, refs: dict[str, str], sqlite_db: Database) -> None:
    make_staff(app, "ani", region="73")
    client = signed_in(app, "ani")
    page = f"/staff/reports/{refs['plain']}"
    post_form(client, page, f"{page}/status", {"status": "diverifikasi", "note": "Sedang dicek ke bank"})
    with sqlite_db.session() as session:
        assert session.scalars(select(Report.status).where(Report.reference == refs["plain"])).one() == "diverifikasi"
        notice = session.scalars(select(Message.body).where(Message.direction == Direction.OUTBOUND)).one()
    assert refs["plain"] in notice and "Sedang dicek ke bank" in notice
    assert ("ani", "report_status", f"report:{refs['plain']}", "diterima->diverifikasi") in audit(sqlite_db)
    html = client.get(page).get_data(as_text=True)
    assert "Sedang dicek ke bank" in html and "ani" in html


def test_rejection_without_a_reason_and_impossible_moves_are_refused(app: Flask, refs: dict[str, str], sqlite_db: Database) -> None:
    make_staff(app, "ani", region="73")
    client = signed_in(app, "ani")
    page = f"/staff/reports/{refs['plain']}"
    post_form(client, page, f"{page}/status", {"status": "ditolak", "note": "  "})
    assert "wajib disertai catatan" in client.get(page).get_data(as_text=True)
    post_form(client, page, f"{page}/status", {"status": "selesai", "note": "x"})
    assert "tidak diperbolehkan" in client.get(page).get_data(as_text=True)
    with sqlite_db.session() as session:
        assert session.scalars(select(Report.status).where(Report.reference == refs["plain"])).one() == "diterima"


def test_status_change_without_csrf_token_is_refused(app: Flask, refs: dict[str, str], sqlite_db: Database) -> None:
    make_staff(app, "ani", region="73")
    response = signed_in(app, "ani").post(f"/staff/reports/{refs['plain']}/status", data={"status": "diverifikasi"})
    assert response.status_code == 400
    with sqlite_db.session() as session:
        assert session.scalars(select(Report.status).where(Report.reference == refs["plain"])).one() == "diterima"


def export(client, query: str = "", include_nik: bool = False):  # type: ignore[no-untyped-def]
    data = {"include_nik": "y"} if include_nik else {}
    return post_form(client, "/staff/reports", f"/staff/reports/export.csv{query}", data)


def test_csv_export_masks_niks_unless_asked_and_is_audited(app: Flask, refs: dict[str, str], sqlite_db: Database) -> None:
    make_staff(app, "sri", role="supervisor")
    client = signed_in(app, "sri")
    response = export(client, "?kind=pengaduan")
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert {row["reference"] for row in rows} == {refs["plain"], refs["sensitive"]}
    assert MAKASSAR_NIK not in response.get_data(as_text=True)
    full = export(client, include_nik=True).get_data(as_text=True)
    assert MAKASSAR_NIK in full and BANDUNG_NIK in full
    actions = [(a, d) for _, a, _, d in audit(sqlite_db) if a == "export_reports"]
    assert actions == [("export_reports", "kind=pengaduan"), ("export_reports", "all include_nik")]


def test_csv_export_masks_niks_typed_in_free_text(app: Flask, refs: dict[str, str], sqlite_db: Database) -> None:
    make_staff(app, "sri", role="supervisor")
    client = signed_in(app, "sri")
    page = f"/staff/reports/{refs['sanggah']}"
    post_form(client, page, f"{page}/status", {"status": "diverifikasi", "note": f"Cocok dengan NIK {BANDUNG_NIK}"})
    insert_reports(sqlite_db, 1, f"NIK saya {MAKASSAR_NIK} tapi dana belum masuk")
    body = export(client).get_data(as_text=True)
    assert MAKASSAR_NIK not in body and BANDUNG_NIK not in body
    rows = {row["reference"]: row for row in csv.DictReader(io.StringIO(body))}
    assert rows[refs["sanggah"]]["latest_note"] == "Cocok dengan NIK 3204********0003"
    assert rows["ADU-20261123-00000"]["description"] == "NIK saya 7371********0003 tapi dana belum masuk"
    full = export(client, include_nik=True).get_data(as_text=True)
    assert f"NIK saya {MAKASSAR_NIK}" in full and f"NIK {BANDUNG_NIK}" in full


def test_csv_export_streams_every_report_past_500(app: Flask, sqlite_db: Database) -> None:
    references = insert_reports(sqlite_db, 1200, f"NIK saya {MAKASSAR_NIK} tapi dana belum masuk")
    make_staff(app, "sri", role="supervisor")
    response = export(signed_in(app, "sri"))
    assert response.status_code == 200 and response.is_streamed
    body = response.get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [row["reference"] for row in rows] == references
    assert MAKASSAR_NIK not in body


def test_csv_export_leaves_out_reports_naming_the_exporter(app: Flask, refs: dict[str, str]) -> None:
    make_staff(app, "budi", role="supervisor", full_name="Budi Santoso")
    rows = list(csv.DictReader(io.StringIO(export(signed_in(app, "budi")).get_data(as_text=True))))
    assert {row["reference"] for row in rows} == {refs["plain"], refs["sanggah"]}


def test_agents_cannot_export(app: Flask, refs: dict[str, str]) -> None:
    make_staff(app, "ani", region="73")
    client = signed_in(app, "ani")
    assert "Unduh CSV" not in client.get("/staff/reports").get_data(as_text=True)
    assert export(client).status_code == 403


def test_unknown_report_is_404(app: Flask) -> None:
    make_staff(app, "sri", role="supervisor")
    assert signed_in(app, "sri").get("/staff/reports/ADU-20260101-ABCD").status_code == 404
