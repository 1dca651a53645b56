import csv
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot.db import Database
from bot.channels.outbox import Outbox
from bot.channels.sandbox import SandboxTransport
from bot.conversation.models import Contact, Message
from bot.reports.service import ReportDraft, ReportService
from bot.reports.cli import reports
from bot.reports.models import Report, ReportKind, ReportStatus
from tests.support.reports import insert_reports

NIK = "3201014501900003"
T0 = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)


@pytest.fixture
def cli_env(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    """Point the CLI at the test database, away from the project's .env and Twilio."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db.url)
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        monkeypatch.setenv(name, "")
    return db


@pytest.fixture
def filed(cli_env: Database) -> dict[str, str]:
    with cli_env.session() as session:
        contact = Contact(address="+6281234567890")
        session.add(contact)
        session.flush()
        contact_id = contact.id
    service = ReportService(cli_env, Outbox(cli_env, SandboxTransport()), clock=lambda: T0)
    complaint = service.create(
        ReportDraft(
            kind=ReportKind.PENGADUAN,
            reporter_contact_id=contact_id,
            category="kartu_dipegang_orang_lain",
            description="Kartu KKS dipegang ketua kelompok sejak tahap 2",
            subject_nik=NIK,
            subject_name="Siti Aminah",
        )
    )
    objection = service.create(
        ReportDraft(
            kind=ReportKind.SANGGAH,
            reporter_contact_id=contact_id,
            category="meninggal",
            description="Penerima sudah meninggal bulan Maret",
            subject_name="Budi Santoso",
            province_code="34",
        )
    )
    return {"complaint": complaint.reference, "objection": objection.reference}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def run(*args: str):
    return CliRunner().invoke(reports, list(args), catch_exceptions=False)


def test_list_prints_a_table_with_masked_niks(filed):
    result = run("list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["REFERENCE", "KIND", "CATEGORY", "STATUS"]
    assert filed["complaint"] in lines[1] and "3201********0003" in lines[1] and "yes" in lines[1]
    assert filed["objection"] in lines[2] and lines[2].split()[4] == "34"
    assert NIK not in result.output
    assert lines[-1] == "2 report(s)"


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--kind", "sanggah"], ["objection"]),
        (["--province", "32"], ["complaint"]),
        (["--sensitive"], ["complaint"]),
        (["--no-sensitive"], ["objection"]),
        (["--status", "diterima", "--kind", "pengaduan"], ["complaint"]),
    ],
)
def test_list_filters(filed, args, expected):
    result = run("list", *args)
    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.output.splitlines()[1:-1]]
    assert listed == [filed[name] for name in expected]


def test_list_with_nothing_to_show(filed):
    result = run("list", "--status", "selesai")
    assert (result.exit_code, result.output) == (0, "no reports match\n")


def test_list_refuses_unknown_filter_values(filed):
    result = CliRunner().invoke(reports, ["list", "--province", "99"])
    assert result.exit_code == 2 and "99" in result.output


def test_export_masks_niks_by_default(filed, tmp_path):
    target = tmp_path / "out" / "laporan.csv"
    target.parent.mkdir()
    result = run("export", str(target), "--kind", "pengaduan")
    assert result.exit_code == 0, result.output
    assert "exported 1 report(s)" in result.output
    rows = read_csv(target)
    assert [(row["reference"], row["subject_nik"]) for row in rows] == [
        (filed["complaint"], "3201********0003")
    ]
    assert NIK not in target.read_text(encoding="utf-8")


def test_export_with_full_niks(filed, tmp_path):
    target = tmp_path / "laporan.csv"
    result = run("export", str(target), "--include-nik", "--sensitive")
    assert result.exit_code == 0 and "with full NIKs" in result.output
    rows = read_csv(target)
    assert [row["subject_nik"] for row in rows] == [NIK]


def test_export_masks_niks_typed_in_free_text(cli_env, tmp_path):
    insert_reports(cli_env, 1, f"Kartu KKS atas NIK {NIK} dipegang ketua kelompok")
    target = tmp_path / "laporan.csv"
    assert run("export", str(target)).exit_code == 0
    [row] = read_csv(target)
    assert row["description"] == "Kartu KKS atas NIK 3201********0003 dipegang ketua kelompok"
    assert NIK not in target.read_text(encoding="utf-8")


def test_export_writes_every_report_past_500_masked(cli_env, tmp_path):
    references = insert_reports(cli_env, 1200, f"NIK saya {NIK}, dana belum diterima")
    target = tmp_path / "laporan.csv"
    result = run("export", str(target))
    assert result.exit_code == 0 and "exported 1200 report(s)" in result.output
    rows = read_csv(target)
    assert [row["reference"] for row in rows] == references
    assert NIK not in target.read_text(encoding="utf-8")


def test_set_status_moves_the_report_and_notifies_the_reporter(filed, cli_env):
    ref = filed["complaint"]
    result = run("set-status", ref.lower(), "diverifikasi", "--note", "Sudah dicek ke lapangan", "--actor", "andi")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{ref} is now diverifikasi\n"
    with cli_env.session() as session:
        report = session.scalar(select(Report).where(Report.reference == ref))
        assert report.status == ReportStatus.DIVERIFIKASI
        assert (report.events[-1].actor, report.events[-1].note) == ("andi", "Sudah dicek ke lapangan")
        [notice] = session.scalars(select(Message)).all()
        assert ref in notice.body and notice.provider == "sandbox"


@pytest.mark.parametrize(
    "args, message",
    [
        (["ADU-20261123-ZZZZ", "diverifikasi", "--actor", "andi"], "no report"),
        (["{complaint}", "selesai", "--actor", "andi"], "cannot move from diterima to selesai"),
        (["{complaint}", "ditolak", "--actor", "andi"], "needs a note"),
    ],
)
def test_set_status_errors_exit_non_zero(filed, args, message):
    result = CliRunner().invoke(reports, ["set-status", *(a.format(**filed) for a in args)])
    assert result.exit_code == 1
    assert message in result.output


def test_set_status_needs_an_actor(filed):
    result = CliRunner().invoke(reports, ["set-status", filed["complaint"], "diverifikasi"])
    assert result.exit_code == 2 and "--actor" in result.output
