"""CSV import of recipients and disbursements, the demo generator, and the import commands."""

from __future__ import annotations

import io
import logging
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from bot.cli import main
from bot.db import Database
from bot.registry.demo import (
    DEMO_PERSONAS,
    generate,
    seed_demo,
    write_disbursements_csv,
    write_recipients_csv,
)
from bot.registry.importer import (
    DISBURSEMENT_COLUMNS,
    RECIPIENT_COLUMNS,
    ImportFileError,
    import_disbursements,
    import_recipients,
)
from bot.rules.nik import parse_nik
from bot.rules.regions import PROVINCES
from bot.registry.models import Disbursement, Enrolment, Recipient

SITI = {
    "nik": "3201015503880003",
    "name": "Siti Wulandari",
    "birth_date": "1988-03-15",
    "phone": "0812-1000-0001",
    "province": "32",
    "regency": "Kabupaten Bogor",
    "district": "Cibinong",
    "village": "Pakansari",
    "address": "Jl. Mawar No. 12, RT 03/RW 05",
    "has_smartphone": "true",
}
AHMAD = SITI | {
    "nik": "3578013001650005",
    "name": "Ahmad Hidayat",
    "birth_date": "1965-01-30",
    "phone": "",
    "province": "35",
    "has_smartphone": "false",
}
PKH = {
    "nik": SITI["nik"],
    "program": "PKH",
    "period": "Tahap 4 2026",
    "amount": "750000",
    "channel": "BRI",
    "scheduled_date": "2026-12-11",
    "status": "dijadwalkan",
}


def csv_text(columns: tuple[str, ...], *rows: dict[str, str]) -> str:
    lines = [",".join(columns)]
    lines += [",".join(_quote(row[column]) for column in columns) for row in rows]
    return "\n".join(lines) + "\n"


def _quote(value: str) -> str:
    if any(ch in value for ch in ',"\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def recipients_csv(*rows: dict[str, str]) -> io.StringIO:
    return io.StringIO(csv_text(RECIPIENT_COLUMNS, *rows))


def disbursements_csv(*rows: dict[str, str]) -> io.StringIO:
    return io.StringIO(csv_text(DISBURSEMENT_COLUMNS, *rows))


def count(db: Database, model: type) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def recipient(db: Database, nik: str) -> Recipient:
    with db.session() as session:
        return session.scalars(select(Recipient).where(Recipient.nik == nik)).one()


# --- recipients ---------------------------------------------------------------------------


def test_recipients_are_imported_with_normalised_phone(db: Database) -> None:
    report = import_recipients(db, recipients_csv(SITI, AHMAD))

    assert (report.rows, report.inserted, report.updated, report.errors) == (2, 2, 0, [])
    siti = recipient(db, SITI["nik"])
    assert siti.phone == "+6281210000001"
    assert siti.birth_date == date(1988, 3, 15)
    assert siti.has_smartphone is True
    assert recipient(db, AHMAD["nik"]).phone is None


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"nik": "3201O15503880003"}, "nik: NIK berisi huruf"),
        ({"nik": "320101550388"}, "nik: NIK harus 16 angka"),
        ({"nik": "9901015503880003"}, "nik: Kode provinsi pada NIK tidak dikenal."),
        ({"birth_date": "15-03-1988"}, "birth_date: '15-03-1988' is not a date"),
        ({"birth_date": "1988-03-16"}, "does not match the date in the NIK (15-03-88)"),
        ({"birth_date": "2088-03-15"}, "birth_date: 2088-03-15 is in the future"),
        ({"phone": "12345"}, "phone: '12345' is not a valid phone number"),
        ({"phone": "0812ABCDEFG"}, "phone:"),
        ({"province": "99"}, "province: unknown province code '99'"),
        ({"province": ""}, "province: unknown province code ''"),
        ({"has_smartphone": "mungkin"}, "has_smartphone: 'mungkin' is not true or false"),
        ({"name": "   "}, "name: must not be empty"),
        ({"name": "x" * 201}, "name: longer than 200 characters"),
    ],
)
def test_bad_recipient_row_is_reported_and_good_rows_kept(db: Database, change, reason) -> None:
    report = import_recipients(
        db, recipients_csv(AHMAD, SITI | change, AHMAD | {"nik": "3578013001650006"})
    )

    assert len(report.errors) == 1
    assert report.errors[0].line == 3
    assert reason in report.errors[0].reason
    assert report.inserted == 2
    assert count(db, Recipient) == 2


def test_line_numbers_count_physical_lines_and_skip_blank_ones(db: Database) -> None:
    text = (
        ",".join(RECIPIENT_COLUMNS)
        + "\n"
        + csv_text(RECIPIENT_COLUMNS, SITI | {"address": "Jl. Mawar No. 12\nRT 03/RW 05"}).split(
            "\n", 1
        )[1]
        + "\n"
        + "3578013001650005,Ahmad,1965-01-30,,35,a,b,c,d\n"
        + csv_text(RECIPIENT_COLUMNS, AHMAD | {"phone": "123"}).split("\n", 1)[1]
    )

    report = import_recipients(db, io.StringIO(text))

    assert [(error.line, error.reason) for error in report.errors] == [
        (5, "expected 10 fields, found 9"),
        (6, "phone: '123' is not a valid phone number"),
    ]
    assert recipient(db, SITI["nik"]).address == "Jl. Mawar No. 12 RT 03/RW 05"


def test_reimport_updates_instead_of_duplicating(db: Database) -> None:
    import_recipients(db, recipients_csv(SITI, AHMAD))

    report = import_recipients(
        db, recipients_csv(SITI | {"phone": "+6281399990000", "name": "Siti W."}, AHMAD)
    )

    assert (report.inserted, report.updated, report.errors) == (0, 2, [])
    assert count(db, Recipient) == 2
    siti = recipient(db, SITI["nik"])
    assert (siti.name, siti.phone) == ("Siti W.", "+6281399990000")


def test_same_nik_twice_in_one_file_keeps_the_later_row(db: Database) -> None:
    report = import_recipients(db, recipients_csv(SITI, SITI | {"name": "Siti Wulandari Baru"}))

    assert report.errors == []
    assert count(db, Recipient) == 1
    assert recipient(db, SITI["nik"]).name == "Siti Wulandari Baru"


@pytest.mark.parametrize("as_bytes", [True, False])
def test_byte_order_mark_is_tolerated(db: Database, tmp_path: Path, as_bytes: bool) -> None:
    data = ("\ufeff" + csv_text(RECIPIENT_COLUMNS, SITI)).encode("utf-8")
    path = tmp_path / "recipients.csv"
    path.write_bytes(data)

    report = import_recipients(db, io.BytesIO(data) if as_bytes else path)

    assert (report.inserted, report.errors) == (1, [])


def test_invalid_utf8_row_is_reported_and_others_kept(db: Database) -> None:
    text = csv_text(RECIPIENT_COLUMNS, SITI, AHMAD).encode("utf-8")
    text = text.replace(b"Ahmad Hidayat", b"Ahmad \xff Hidayat")

    report = import_recipients(db, io.BytesIO(text))

    assert [(error.line, error.reason) for error in report.errors] == [
        (3, "text is not valid UTF-8")
    ]
    assert report.inserted == 1


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "the file is empty"),
        ("nik,name\n3201015503880003,Siti\n", "missing column(s): birth_date, phone"),
    ],
)
def test_unusable_file_raises(db: Database, content: str, message: str) -> None:
    with pytest.raises(ImportFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_recipients(db, io.StringIO(content))


def test_missing_file_raises(db: Database, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="cannot read"):
        import_recipients(db, tmp_path / "nope.csv")


def test_header_may_be_reordered_and_extra_columns_ignored(db: Database) -> None:
    columns = ("remarks",) + tuple(reversed(RECIPIENT_COLUMNS))
    report = import_recipients(db, io.StringIO(csv_text(columns, SITI | {"remarks": "x"})))

    assert (report.inserted, report.errors) == (1, [])


# --- disbursements ------------------------------------------------------------------------


def test_disbursement_import_enrols_and_reimport_updates(db: Database) -> None:
    import_recipients(db, recipients_csv(SITI))
    bpnt = PKH | {"program": "Sembako", "amount": "600000", "channel": "pt pos"}
    pbi = PKH | {"program": "pbi-jk", "period": "Iuran 2026", "amount": "504000", "channel": ""}

    first = import_disbursements(db, disbursements_csv(PKH, bpnt, pbi))
    second = import_disbursements(db, disbursements_csv(PKH | {"status": "tersalur"}, bpnt, pbi))

    assert (first.inserted, first.updated, first.errors) == (3, 0, [])
    assert (second.inserted, second.updated, second.errors) == (0, 3, [])
    with db.session() as session:
        rows = {row.program_code: row for row in session.scalars(select(Disbursement))}
        enrolled = sorted(session.scalars(select(Enrolment.program_code)))
    assert enrolled == ["BPNT", "PBI-JK", "PKH"]
    assert rows["PKH"].status == "tersalur" and rows["PKH"].disbursed_at is not None
    assert rows["BPNT"].channel == "PT Pos" and rows["BPNT"].disbursed_at is None
    assert rows["PBI-JK"].channel is None
    assert count(db, Disbursement) == 3


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"nik": "3578013001650005"}, "nik: no recipient with this NIK"),
        ({"nik": "3201015503880000"}, "nik: Nomor urut pada NIK tidak valid."),
        ({"program": "KIP"}, "program: unknown 'KIP' (expected"),
        (
            {"channel": "BCA"},
            "channel: unknown 'BCA' (expected BRI, BNI, Mandiri, BSI, BTN, PT Pos)",
        ),
        ({"channel": ""}, "channel: unknown ''"),
        ({"amount": "750.000"}, "amount: '750.000' is not a positive whole number"),
        ({"amount": "0"}, "amount: '0' is not a positive whole number"),
        ({"amount": "-5"}, "amount: '-5'"),
        (
            {"amount": "9" * 30},
            "amount: 999999999999999999999999999999 is more than Rp1,000,000,000",
        ),
        ({"scheduled_date": "11/12/2026"}, "scheduled_date: '11/12/2026' is not a date"),
        (
            {"status": "cair"},
            "status: unknown 'cair' (expected dijadwalkan, tersalur, gagal, ditunda)",
        ),
        ({"period": ""}, "period: must not be empty"),
    ],
)
def test_bad_disbursement_row_is_reported_and_good_rows_kept(db: Database, change, reason) -> None:
    import_recipients(db, recipients_csv(SITI))
    good = PKH | {"program": "BPNT", "amount": "600000"}

    report = import_disbursements(
        db, disbursements_csv(good, PKH | change, good | {"period": "Tahap 3 2026"})
    )

    assert [error.line for error in report.errors] == [3]
    assert reason in report.errors[0].reason
    assert report.inserted == 2


def test_disbursement_errors_are_sorted_by_line_across_checks(db: Database) -> None:
    import_recipients(db, recipients_csv(SITI))
    report = import_disbursements(
        db,
        disbursements_csv(PKH | {"nik": "3578013001650005"}, PKH | {"status": "x"}, PKH),
    )

    assert [error.line for error in report.errors] == [2, 3]


# --- demo data ------------------------------------------------------------------------------

TODAY = date(2026, 11, 23)


def test_demo_generator_is_deterministic_and_valid() -> None:
    data = generate(recipients=1000, today=TODAY)

    assert data == generate(recipients=1000, today=TODAY)
    niks = [row["nik"] for row in data.recipients]
    assert len(niks) == len(set(niks)) == 1000 + sum(p.registered for p in DEMO_PERSONAS)
    for row in data.recipients:
        nik = parse_nik(row["nik"], today=TODAY)
        assert nik.province_code == row["province"]
        birth = date.fromisoformat(row["birth_date"])
        assert (birth.day, birth.month, birth.year % 100) == (
            nik.birth_date.day,
            nik.birth_date.month,
            nik.birth_date.year % 100,
        )
    zones = {PROVINCES[row["province"]].tz_label for row in data.recipients}
    assert zones == {"WIB", "WITA", "WIT"}
    with_phone = sum(bool(row["phone"]) for row in data.recipients) / len(data.recipients)
    assert 0.6 < with_phone < 0.8
    statuses = Counter(row["status"] for row in data.disbursements)
    assert statuses["tersalur"] > statuses["gagal"] > 0
    assert statuses["dijadwalkan"] > statuses["ditunda"] > 0
    assert {row["program"] for row in data.disbursements} == {"PKH", "BPNT", "BLT", "PBI-JK"}
    soon = [
        row
        for row in data.disbursements
        if row["status"] == "dijadwalkan"
        and TODAY + timedelta(days=3)
        <= date.fromisoformat(row["scheduled_date"])
        <= TODAY + timedelta(days=10)
    ]
    assert len(soon) > 50


def test_demo_csvs_import_without_errors_and_seed_is_idempotent(
    db: Database, tmp_path: Path
) -> None:
    data = generate(recipients=300, today=TODAY)
    recipients_report = import_recipients(
        db, write_recipients_csv(tmp_path / "r.csv", data.recipients)
    )
    disbursements_report = import_disbursements(
        db, write_disbursements_csv(tmp_path / "d.csv", data.disbursements)
    )
    assert recipients_report.errors == [] and disbursements_report.errors == []

    again = seed_demo(db, recipients=300, today=TODAY)

    assert [(report.inserted, report.errors) for report in again] == [(0, []), (0, [])]
    assert count(db, Recipient) == len(data.recipients)
    assert count(db, Disbursement) == len(data.disbursements)


def test_personas_share_one_phone_and_one_is_not_registered(db: Database) -> None:
    seed_demo(db, recipients=0, today=TODAY)

    with db.session() as session:
        phones = Counter(
            session.scalars(select(Recipient.phone).where(Recipient.phone.is_not(None)))
        )
        registered = set(session.scalars(select(Recipient.nik)))
    assert max(phones.values()) == 2
    for persona in DEMO_PERSONAS:
        assert (persona.nik in registered) is persona.registered


# --- commands -----------------------------------------------------------------------------


@pytest.fixture
def cli_env(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """The commands' database; the root logger gets back the handlers the command replaced."""
    monkeypatch.setenv("DATABASE_URL", sqlite_db.url)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield sqlite_db
    root.handlers[:] = handlers
    root.setLevel(level)


def test_import_command_reports_bad_rows_and_exits_zero(cli_env: Database, tmp_path: Path) -> None:
    path = tmp_path / "recipients.csv"
    path.write_text(csv_text(RECIPIENT_COLUMNS, SITI, AHMAD | {"province": "99"}), encoding="utf-8")

    result = CliRunner().invoke(main, ["import-recipients", str(path)])

    assert result.exit_code == 0, result.output
    assert "2 rows read, 1 imported (1 new, 0 updated), 1 bad" in result.output
    assert "line 3: province: unknown province code '99'" in result.output


def test_import_command_exits_one_when_file_is_unreadable(
    cli_env: Database, tmp_path: Path
) -> None:
    result = CliRunner().invoke(main, ["import-disbursements", str(tmp_path / "missing.csv")])

    assert result.exit_code == 1
    assert "cannot read" in result.output


def test_seed_demo_and_personas_commands(cli_env: Database) -> None:
    runner = CliRunner()
    seeded = runner.invoke(main, ["seed-demo", "--recipients", "50"])
    personas = runner.invoke(main, ["demo-personas"])

    assert seeded.exit_code == 0, seeded.output
    assert "0 bad" in seeded.output
    assert personas.exit_code == 0
    for persona in DEMO_PERSONAS:
        assert persona.nik in personas.output
