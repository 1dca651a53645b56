"""Conversation export: one chat's conversation or a region's in a period, as CSV, for
supervisors only, NIKs masked unless asked for, every export audited, on SQLite and
PostgreSQL; and `bansos conversations export`, which shares it."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, select

from app import create_app
from bot.channels.outbox import Outbox
from bot.channels.sandbox import SandboxTransport
from bot.conversation.models import Channel, Contact, Direction, Message, MessageStatus
from bot.db import Database
from bot.handoff.conversation_export import BATCH_SIZE, EXPORT_COLUMNS, InvalidExport, Period
from bot.handoff.conversations_cli import conversations
from bot.handoff.models import Handoff, HandoffReason, HandoffStatus
from bot.handoff.staff_models import AuditEntry
from bot.registry.models import Recipient
from bot.reports.models import ComplaintCategory, ReportKind
from bot.reports.service import ReportDraft, ReportService
from tests.support.staff import make_staff, post_form, signed_in

BANDUNG = "+6281234567890"
MAKASSAR = "+6285712345678"
STRANGER = "+6281398765432"
BANDUNG_NIK = "3204014501900003"
MAKASSAR_NIK = "7371014501900003"
NOVEMBER = {"first": "2026-11-01", "last": "2026-11-30"}
# Masked numbers start with "+", so the shared CSV writer quotes them like any formula-like cell.


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def add_message(session: Any, contact_id: int, body: str, when: datetime, **extra: Any) -> int:
    message = Message(
        contact_id=contact_id,
        direction=extra.pop("direction", Direction.INBOUND),
        channel=extra.pop("channel", Channel.SMS),
        provider="sandbox",
        body=body,
        status=extra.pop("status", MessageStatus.ANSWERED),
        created_at=when,
        updated_at=when,
        **extra,
    )
    session.add(message)
    session.flush()
    return message.id


@pytest.fixture
def world(db: Database) -> dict[str, int]:
    """Bandung (a registered household, 3204, WIB), Makassar (a chat worked in 7371, WITA)
    and a stranger (no household, no chat: the national queue)."""
    with db.session() as session:
        bandung, makassar, stranger = (Contact(address=a) for a in (BANDUNG, MAKASSAR, STRANGER))
        makassar.last_channel = Channel.WHATSAPP
        session.add_all([bandung, makassar, stranger])
        session.add(Recipient(
            nik=BANDUNG_NIK, name="Siti Aminah", birth_date=date(1990, 1, 5), phone=BANDUNG, province_code="32",
        ))
        session.flush()
        add_message(session, bandung.id, f"NIK saya {BANDUNG_NIK} belum cair", at(2026, 11, 10, 3, 0))
        add_message(
            session, bandung.id, "Baik, kami cek.", at(2026, 11, 10, 3, 0, 5),
            direction=Direction.OUTBOUND, status=MessageStatus.DELIVERED,
        )
        for text in ('=HYPERLINK("http://x","klik")', "+62 812", "-1+1", "@SUM(A1)"):
            add_message(session, bandung.id, text, at(2026, 11, 11, 2, 0))
        add_message(
            session, bandung.id, "", at(2026, 11, 12, 2, 0), channel=Channel.WHATSAPP,
            media=[{"url": "https://api.twilio.com/m/1", "content_type": "image/jpeg"}, {"url": "https://api.twilio.com/m/2"}],
        )
        # 1 December 00:30 in Bandung (WIB): outside November there.
        add_message(session, bandung.id, "Desember di Bandung", at(2026, 11, 30, 17, 30))
        # 1 November 00:30 in Makassar (WITA): inside November there.
        add_message(session, makassar.id, "November di Makassar", at(2026, 10, 31, 16, 30), channel=Channel.WHATSAPP)
        add_message(session, makassar.id, f"Kartu {MAKASSAR_NIK} dipegang ketua", at(2026, 11, 15, 1, 0), channel=Channel.WHATSAPP)
        add_message(session, makassar.id, "Oktober di Makassar", at(2026, 10, 30, 1, 0), channel=Channel.WHATSAPP)
        add_message(session, stranger.id, "Halo", at(2026, 11, 20, 1, 0))
        handoff = Handoff(
            contact_id=makassar.id, reason=HandoffReason.REQUESTED, channel=Channel.WHATSAPP,
            region="7371", province_code="73", status=HandoffStatus.WAITING, created_at=at(2026, 11, 15, 1, 0),
        )
        session.add(handoff)
        session.flush()
        return {"bandung": bandung.id, "makassar": makassar.id, "stranger": stranger.id, "chat": handoff.id}


@pytest.fixture
def dashboard(app_config: dict[str, Any], db: Database, world: dict[str, int]) -> Flask:
    """The app on the parametrised database, with an agent of Makassar and a supervisor."""
    app = create_app({**app_config, "database_url": db.url})
    make_staff(app, "ani", region="73", full_name="Ani Lestari")
    make_staff(app, "sri", role="supervisor", full_name="Sri Wahyuni")
    return app


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def audit(db: Database) -> list[tuple[str, str, str, str]]:
    with db.session() as session:
        return list(session.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.target, AuditEntry.detail).order_by(AuditEntry.id)
        ).tuples())


def exports(db: Database) -> list[tuple[str, str, str, str]]:
    return [entry for entry in audit(db) if entry[1].startswith("export")]


def region_export(client: FlaskClient, data: dict[str, str]) -> Any:
    return post_form(client, "/staff/conversations/export", "/staff/conversations/export.csv", data)


def chat_export(client: FlaskClient, chat: int, include_nik: bool = False) -> Any:
    data = {"include_nik": "y"} if include_nik else {}
    return post_form(client, f"/staff/chats/{chat}", f"/staff/chats/{chat}/export.csv", data)


# ---- the dashboard ------------------------------------------------------------------


def test_agents_are_refused_and_nothing_is_exported(dashboard: Flask, db: Database, world: dict[str, int]) -> None:
    agent = signed_in(dashboard, "ani")
    chat_page = agent.get(f"/staff/chats/{world['chat']}").get_data(as_text=True)
    assert "Unduh percakapan" not in chat_page
    assert "Ekspor percakapan" not in agent.get("/staff/reports").get_data(as_text=True)
    assert agent.get("/staff/conversations/export").status_code == 403
    token_page = f"/staff/chats/{world['chat']}"
    assert post_form(agent, token_page, f"/staff/chats/{world['chat']}/export.csv").status_code == 403
    assert post_form(agent, token_page, "/staff/conversations/export.csv", NOVEMBER).status_code == 403
    assert exports(db) == []


def test_supervisor_exports_a_region_and_period_with_niks_masked(dashboard: Flask, db: Database) -> None:
    response = region_export(signed_in(dashboard, "sri"), {"province": "32", **NOVEMBER})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.get_data(as_text=True)
    found = rows(body)
    assert tuple(found[0]) == EXPORT_COLUMNS
    assert {row["contact"] for row in found} == {"'+62812****7890"}
    assert BANDUNG not in body and BANDUNG_NIK not in body
    assert found[0]["text"] == "NIK saya 3204********0003 belum cair"
    assert found[0]["region"] == "3204"
    assert found[0]["time_local"] == "2026-11-10T10:00:00+07:00"
    assert found[0]["time_utc"] == "2026-11-10T03:00:00+00:00"
    assert [row["direction"] for row in found[:2]] == ["in", "out"]
    assert found[1]["status"] == "delivered"
    assert "Desember di Bandung" not in body
    assert ("sri", "export_conversations", "conversations", "region=32 from=2026-11-01 to=2026-11-30") in exports(db)
    assert ("sri", "export_finished", "conversations", f"rows={len(found)}") in exports(db)


def test_supervisor_gets_whole_niks_when_asked_and_the_audit_says_so(dashboard: Flask, db: Database) -> None:
    body = region_export(
        signed_in(dashboard, "sri"), {"province": "32", "include_nik": "y", **NOVEMBER}
    ).get_data(as_text=True)
    assert f"NIK saya {BANDUNG_NIK} belum cair" in body
    assert ("sri", "export_conversations", "conversations",
            "region=32 from=2026-11-01 to=2026-11-30 include_nik") in exports(db)


@pytest.mark.parametrize(
    "data, contacts",
    [
        ({"province": "73"}, {"'+62857****5678"}),
        ({"province": "32", "regency": "3204"}, {"'+62812****7890"}),
        ({"regency": "3201"}, set()),
        ({"province": ""}, {"'+62812****7890", "'+62857****5678", "'+62813****5432"}),
    ],
)
def test_region_filter_leaves_out_other_regions(
    dashboard: Flask, data: dict[str, str], contacts: set[str]
) -> None:
    found = rows(region_export(signed_in(dashboard, "sri"), {**data, **NOVEMBER}).get_data(as_text=True))
    assert {row["contact"] for row in found} == contacts


def test_period_is_in_each_citizens_own_dates(dashboard: Flask) -> None:
    found = rows(region_export(signed_in(dashboard, "sri"), {"province": "73", **NOVEMBER}).get_data(as_text=True))
    assert [row["text"] for row in found] == ["November di Makassar", "Kartu 7371********0003 dipegang ketua"]
    assert found[0]["time_local"] == "2026-11-01T00:30:00+08:00"


def test_formula_characters_in_citizen_text_are_neutralised(dashboard: Flask) -> None:
    found = rows(region_export(signed_in(dashboard, "sri"), {"province": "32", **NOVEMBER}).get_data(as_text=True))
    texts = [row["text"] for row in found]
    assert """'=HYPERLINK("http://x","klik")""" in texts
    assert {"'+62 812", "'-1+1", "'@SUM(A1)"} <= set(texts)
    assert [row["media_count"] for row in found if row["channel"] == "whatsapp"] == ["2"]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"province": "32", "first": "2026-11-30", "last": "2026-11-01"}, "Tanggal akhir tidak boleh sebelum tanggal awal."),
        ({"province": "32", "regency": "7371", **NOVEMBER}, "tidak berada di provinsi yang dipilih"),
        ({"regency": "99x", **NOVEMBER}, "Wilayah harus kode provinsi"),
        ({"province": "32", "first": "2026-11-01"}, "Isi tanggal akhir."),
        ({"province": "32", "first": "1 Nov", "last": "2026-11-30"}, "Dari tanggal"),
        ({"province": "99", **NOVEMBER}, "Provinsi"),
    ],
)
def test_bad_input_comes_back_on_the_form_as_typed(
    dashboard: Flask, db: Database, data: dict[str, str], message: str
) -> None:
    response = region_export(signed_in(dashboard, "sri"), data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert message in html
    assert f'value="{data["first"]}"' in html
    assert exports(db) == []


def test_export_without_csrf_token_is_refused(dashboard: Flask, db: Database, world: dict[str, int]) -> None:
    client = signed_in(dashboard, "sri")
    assert client.post("/staff/conversations/export.csv", data={"province": "32", **NOVEMBER}).status_code == 400
    assert client.post(f"/staff/chats/{world['chat']}/export.csv").status_code == 400
    assert exports(db) == []


def test_chat_page_exports_the_whole_conversation(dashboard: Flask, db: Database, world: dict[str, int]) -> None:
    client = signed_in(dashboard, "sri")
    assert "Unduh percakapan" in client.get(f"/staff/chats/{world['chat']}").get_data(as_text=True)
    body = chat_export(client, world["chat"]).get_data(as_text=True)
    assert [row["text"] for row in rows(body)] == [
        "November di Makassar", "Kartu 7371********0003 dipegang ketua", "Oktober di Makassar",
    ]
    assert MAKASSAR_NIK in chat_export(client, world["chat"], include_nik=True).get_data(as_text=True)
    target = f"handoff:{world['chat']}"
    assert exports(db) == [
        ("sri", "export_conversations", target, "whole conversation"),
        ("sri", "export_finished", target, "rows=3"),
        ("sri", "export_conversations", target, "whole conversation include_nik"),
        ("sri", "export_finished", target, "rows=3"),
    ]
    assert chat_export(client, 999999).status_code == 404


def test_a_conversation_whose_sensitive_report_names_the_supervisor_is_kept_from_them(
    dashboard: Flask, db: Database, world: dict[str, int]
) -> None:
    ReportService(db, Outbox(db, SandboxTransport())).create(ReportDraft(
        kind=ReportKind.PENGADUAN, reporter_contact_id=world["makassar"], category=ComplaintCategory.POTONGAN_PUNGLI,
        description="Bu Sri Wahyuni memotong Rp50.000 tiap pencairan", province_code="73",
    ))
    client = signed_in(dashboard, "sri")
    found = rows(region_export(client, NOVEMBER).get_data(as_text=True))
    assert "'+62857****5678" not in {row["contact"] for row in found} and found
    assert post_form(client, "/staff/conversations/export", f"/staff/chats/{world['chat']}/export.csv").status_code == 403


def test_a_huge_conversation_streams_in_batches(dashboard: Flask, db: Database, world: dict[str, int]) -> None:
    count = BATCH_SIZE * 2 + 137
    start = at(2026, 11, 16, 0, 0)
    with db.session() as session:
        session.execute(insert(Message), [
            {
                "contact_id": world["makassar"], "direction": Direction.INBOUND, "channel": Channel.WHATSAPP,
                "provider": "sandbox", "body": f"pesan {i} NIK {MAKASSAR_NIK}", "media": [],
                "status": MessageStatus.WITH_STAFF, "created_at": start + timedelta(seconds=i),
                "updated_at": start + timedelta(seconds=i),
            }
            for i in range(count)
        ])
    response = chat_export(signed_in(dashboard, "sri"), world["chat"])
    assert response.status_code == 200 and response.is_streamed
    body = response.get_data(as_text=True)
    texts = [row["text"] for row in rows(body) if row["text"].startswith("pesan")]
    assert texts == [f"pesan {i} NIK 7371********0003" for i in range(count)]
    assert MAKASSAR_NIK not in body
    assert exports(db)[-1][3] == f"rows={count + 3}"


# ---- the service and the command line -----------------------------------------------


def test_a_period_cannot_end_before_it_starts() -> None:
    with pytest.raises(InvalidExport):
        Period(date(2026, 11, 2), date(2026, 11, 1))


@pytest.fixture
def cli_env(db: Database, world: dict[str, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db.url)
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        monkeypatch.setenv(name, "")
    return db


def test_cli_exports_a_region_and_a_contact_and_audits_both(cli_env: Database, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "jabar.csv"
    result = runner.invoke(conversations, ["export", str(out), "--region", "32", "--from", "2026-11-01", "--to", "2026-11-30"])
    assert result.exit_code == 0, result.output
    found = rows(out.read_text(encoding="utf-8"))
    assert result.output.strip() == f"exported {len(found)} message(s) to {out}"
    assert {row["contact"] for row in found} == {"'+62812****7890"} and BANDUNG_NIK not in out.read_text()
    one = tmp_path / "satu.csv"
    result = runner.invoke(conversations, ["export", str(one), "--contact", "0857-1234-5678", "--include-nik"])
    assert result.exit_code == 0, result.output
    assert MAKASSAR_NIK in one.read_text(encoding="utf-8") and "with full NIKs" in result.output
    entries = exports(cli_env)
    assert ("-", "export_conversations", "conversations", "region=32 from=2026-11-01 to=2026-11-30 via=cli") in entries
    assert any(e[1] == "export_conversations" and e[3] == "whole conversation via=cli include_nik" for e in entries)
    assert ("-", "export_finished", "conversations", f"rows={len(found)}") in entries


@pytest.mark.parametrize(
    "args, message",
    [
        (["--contact", "+6289999999999"], "no conversation with +6289999999999"),
        (["--region", "32"], "Sebutkan nomor warga"),
        (["--from", "2026-11-01"], "--from and --to go together"),
        (["--region", "32x", "--from", "2026-11-01", "--to", "2026-11-30"], "Wilayah harus kode provinsi"),
        (["--contact", BANDUNG, "--region", "32"], "Pilih satu"),
    ],
)
def test_cli_bad_input_is_explained_and_writes_nothing(
    cli_env: Database, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "x.csv"
    result = CliRunner().invoke(conversations, ["export", str(out), *args])
    assert result.exit_code != 0 and message in result.output
    assert not out.exists() and exports(cli_env) == []


def test_a_download_cut_short_is_audited_as_interrupted(dashboard: Flask, db: Database) -> None:
    services = dashboard.extensions["bansos"].staff
    supervisor = services.directory.active_staff()[-1]
    assert supervisor.username == "sri"
    lines = services.conversation_export.for_region(supervisor, "32", Period(date(2026, 11, 1), date(2026, 11, 30)), False)
    assert ("sri", "export_conversations", "conversations", "region=32 from=2026-11-01 to=2026-11-30") in exports(db)
    next(lines), next(lines)
    lines.close()
    assert exports(db)[-1] == ("sri", "export_finished", "conversations", "rows=1 interrupted")
