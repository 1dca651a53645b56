"""The "Sinyal" page and the supervisors' daily summary, on the demo complaints with their
planted cluster (Andir, Kabupaten Bandung: levies naming agen Darto)."""
from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from bot.channels.later import LaterSender
from bot.channels.outbox import Outbox
from bot.channels.sandbox import SandboxTransport
from bot.conversation.models import Channel, Contact, Direction, Message, utcnow
from bot.config import Settings
from bot.db import Database
from bot.handoff.audit import AuditLog
from bot.handoff.staff_users import StaffDirectory
from bot.notices.pacing import SendingWindow
from bot.reports.demo_complaints import REPORTER_PREFIX, seed_demo_complaints
from bot.registry.models import Recipient
from bot.reports.models import ComplaintCategory, Report, ReportKind
from bot.reports.service import ReportDraft, ReportService
from bot.reports.signal_alerts import SignalAlerts
from bot.reports.signal_models import SignalAnnouncement
from bot.reports.signals import SignalQuery, SignalService, stat_settings
from tests.support.staff import PASSWORD, make_staff, post_form, signed_in, staff_services

BANDUNG = "/staff/signals?province=32&regency=Kabupaten+Bandung"
XSS = "<script>alert(1)</script>"
SUPERVISOR_PHONE = "+6281311112222"
# Sending hours that never close, for tests not about them.
ALWAYS = SendingWindow.parse("00:00", "24:00")


@pytest.fixture
def seeded(app: Flask, sqlite_db: Database) -> Database:
    seed_demo_complaints(sqlite_db)
    return sqlite_db


def page(app: Flask, username: str, path: str = BANDUNG) -> str:
    response = signed_in(app, username).get(path)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_supervisor_sees_the_planted_cluster_with_its_reason_and_no_reporter(app: Flask, seeded: Database) -> None:
    make_staff(app, "sari", role="supervisor", full_name="Sari Lestari")
    html = page(app, "sari")
    assert "Desa/Kel. Andir, Kec. Baleendah, Kabupaten Bandung:" in html
    assert "pelapor mengadukan potongan/pungli dalam 30 hari" in html
    assert "Agen Darto" in html
    assert "Manggahang, Kec." not in html  # the neighbours are not clusters
    assert "0899" not in html and REPORTER_PREFIX not in html
    assert "<svg" in html and "<title" in html
    # Drilled down to the district, both are still there: the agent's complaints are all from Andir.
    district = page(app, "sari", BANDUNG + "&district=Baleendah")
    assert "Andir, Kec. Baleendah" in district and "Agen Darto" in district
    assert "Agen Darto" not in page(app, "sari", BANDUNG + "&district=Elsewhere")


def test_the_reports_behind_a_cluster_are_listed_for_whoever_may_see_them(app: Flask, seeded: Database) -> None:
    make_staff(app, "sari", role="supervisor", full_name="Sari Lestari")
    client = signed_in(app, "sari")
    html = client.get(BANDUNG).get_data(as_text=True)
    link = html.split('href="/staff/signals/reports?cluster=', 1)[1].split('"', 1)[0]
    behind = client.get("/staff/signals/reports?cluster=" + link.replace("&amp;", "&")).get_data(as_text=True)
    with seeded.session() as session:
        andir = session.scalars(select(Report.reference).where(
            Report.village == "Andir",
            Report.category == ComplaintCategory.POTONGAN_PUNGLI,
            Report.created_at >= utcnow() - timedelta(days=30),
        )).all()
    assert len(andir) >= 8 and all(reference in behind for reference in andir)
    assert "Manggahang" not in behind


def test_an_agent_sees_only_their_region(app: Flask, seeded: Database) -> None:
    make_staff(app, "ambon", role="agent", region="81", full_name="Yosep Wattimena")
    make_staff(app, "bandung", role="agent", region="3204", full_name="Asep Suryana")
    elsewhere = page(app, "ambon")
    assert "Andir" not in elsewhere and "Agen Darto" not in elsewhere
    assert "Tidak ada aduan pada periode dan wilayah ini." in elsewhere
    national = page(app, "ambon", "/staff/signals")
    assert '">Maluku</a></td>' in national  # a row of the table
    assert '">Jawa Barat</a></td>' not in national
    assert "Agen Darto" in page(app, "bandung")


def test_staff_named_in_the_reports_behind_a_cluster_do_not_see_it(app: Flask, seeded: Database) -> None:
    make_staff(app, "darto", role="supervisor", full_name="Darto Sutrisno")
    html = page(app, "darto")
    assert "Andir, Kec. Baleendah" not in html and "Agen Darto" not in html
    cluster = hashlib.sha256(b"desa|32|Kabupaten Bandung|Baleendah|Andir|potongan_pungli").hexdigest()
    response = signed_in(app, "darto").get("/staff/signals/reports", query_string={"cluster": cluster})
    assert response.status_code == 403


def test_region_names_typed_by_citizens_are_escaped_in_charts_and_tables(app: Flask, sqlite_db: Database) -> None:
    with sqlite_db.session() as session:
        contact = Contact(address="+6281300000009", last_channel=Channel.SMS)
        session.add(contact)
        session.flush()
        session.add(Report(
            reference="ADU-20261201-ABCD", kind=ReportKind.PENGADUAN, reporter_contact_id=contact.id,
            reporter_channel=Channel.SMS, category=ComplaintCategory.DATA_SALAH, description="Nama saya salah ketik",
            province_code="32", regency="Kabupaten Bogor", district=XSS, village="Tengah", routed_to="3201",
            created_at=utcnow(), updated_at=utcnow(),
        ))
    make_staff(app, "sari", role="supervisor")
    html = page(app, "sari", "/staff/signals?province=32&regency=Kabupaten+Bogor")
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_bad_filters_are_ignored_not_errors(app: Flask, seeded: Database) -> None:
    make_staff(app, "sari", role="supervisor")
    html = page(app, "sari", "/staff/signals?days=1000&category=nope&province=99&regency=" + "x" * 500)
    assert "30 hari terakhir" in html and "Semua provinsi" in html


def test_the_admin_sets_a_supervisors_phone_and_a_bad_number_is_refused(app: Flask, sqlite_db: Database) -> None:
    make_staff(app, "admin", role="admin")
    sari = make_staff(app, "sari", role="supervisor")
    client = signed_in(app, "admin")
    path = f"/staff/admin/users/{sari.id}"
    post_form(client, path, path, {"role": "agent", "region": "3204", "active": "y", "phone": "12ab"})
    refused = staff_services(app).directory.get_user(sari.id)
    assert refused.phone is None
    assert (refused.role, refused.region) == ("supervisor", None)  # nothing of the refused form is saved
    assert "Nomor HP tidak valid" in client.get(path).get_data(as_text=True)
    post_form(client, path, path, {"role": "supervisor", "region": "32", "active": "y", "phone": "0813-1111-2222"})
    assert staff_services(app).directory.get_user(sari.id).phone == SUPERVISOR_PHONE


def summaries_to(db: Database, phone: str) -> list[str]:
    with db.session() as session:
        return list(session.scalars(
            select(Message.body).join(Contact).where(Contact.address == phone, Message.direction == Direction.OUTBOUND)
        ))


def test_the_daily_summary_goes_once_per_new_cluster_and_never_to_the_named(app: Flask, seeded: Database) -> None:
    admin = make_staff(app, "admin", role="admin")
    directory = staff_services(app).directory
    sari = make_staff(app, "sari", role="supervisor", full_name="Sari Lestari")
    darto = make_staff(app, "darto", role="supervisor", full_name="Darto Sutrisno")
    ambon = make_staff(app, "ambon", role="supervisor", region="81", full_name="Yosep Wattimena")
    directory.set_phone(sari.id, SUPERVISOR_PHONE, admin)
    directory.set_phone(darto.id, "+6281311113333", admin)
    directory.set_phone(ambon.id, "+6281311114444", admin)
    alerts = SignalAlerts(
        seeded, app.extensions["bansos"].signals, directory, LaterSender(Outbox(seeded, SandboxTransport())), ALWAYS
    )
    assert alerts.send_new() == 1
    [text] = summaries_to(seeded, SUPERVISOR_PHONE)
    assert text.startswith("Sinyal Asisten Bansos: 2 klaster aduan baru di wilayah Bapak/Ibu.")
    assert "Andir" in text and "Agen Darto" in text
    assert summaries_to(seeded, "+6281311113333") == []  # named in the reports behind both
    assert summaries_to(seeded, "+6281311114444") == []  # not their region
    assert alerts.send_new() == 0
    assert len(summaries_to(seeded, SUPERVISOR_PHONE)) == 1


def test_a_cluster_found_after_todays_summary_waits_for_tomorrows(app: Flask, seeded: Database) -> None:
    _with_phones(app, ("sari", "Sari Lestari", SUPERVISOR_PHONE))
    assert _alerts(app, seeded).send_new() == 1
    with seeded.session() as session:  # as if one of the two clusters appeared only now
        session.delete(session.scalars(select(SignalAnnouncement)).first())
    later = utcnow() + timedelta(hours=3)
    assert _alerts(app, seeded, clock=lambda: later).send_new() == 0
    tomorrow = utcnow() + timedelta(hours=24)
    assert _alerts(app, seeded, clock=lambda: tomorrow).send_new() == 1
    texts = summaries_to(seeded, SUPERVISOR_PHONE)
    assert len(texts) == 2 and any(t.startswith("Sinyal Asisten Bansos: 1 klaster aduan baru") for t in texts)


def test_an_agent_asking_for_another_regions_reports_gets_none(app: Flask, seeded: Database) -> None:
    make_staff(app, "ambon", role="agent", region="81")
    html = page(app, "ambon", "/staff/signals/reports?province=32&regency=Kabupaten+Bandung")
    assert "Tidak ada laporan yang boleh Anda lihat di sini." in html
    assert "ADU-" not in html


def test_the_weekly_figures_add_up_and_lead_to_their_reports(app: Flask, seeded: Database) -> None:
    make_staff(app, "sari", role="supervisor")
    viewer = staff_services(app).directory.active_staff()[0]
    signals = app.extensions["bansos"].signals
    query = SignalQuery(days=30, province="32", regency="Kabupaten Bandung")
    figures = signals.page(viewer, query)
    assert sum(week.count for week in figures.weeks) == figures.total == sum(row.total for row in figures.rows)
    for week in figures.weeks:
        assert len(signals.reports_behind(viewer, query, week=week.index)) == week.count


def test_seeding_the_demo_again_replaces_its_complaints(app: Flask, seeded: Database) -> None:
    def demo_reports() -> int:
        with seeded.session() as session:
            return len(session.scalars(select(Report.id).join(Contact).where(Contact.address.startswith(REPORTER_PREFIX))).all())

    first = demo_reports()
    assert seed_demo_complaints(seeded) == first == demo_reports()
    make_staff(app, "sari", role="supervisor")
    viewer = staff_services(app).directory.active_staff()[0]
    titles = [cluster.title for cluster in app.extensions["bansos"].signals.visible_clusters(viewer)]
    assert titles == ["Desa/Kel. Andir, Kec. Baleendah, Kabupaten Bandung", "Agen Darto"]


def test_the_daily_summary_on_each_database_backend(db: Database) -> None:
    """The same once-only rule on PostgreSQL too (with TEST_DATABASE_URL)."""
    seed_demo_complaints(db)
    directory = StaffDirectory(db, AuditLog(db))
    admin = directory.create_user("admin", PASSWORD, "admin", "Admin")
    sari = directory.create_user("sari", PASSWORD, "supervisor", "Sari Lestari", "32")
    directory.set_phone(sari.id, "0813 1111 2222", admin)
    signals = SignalService(db, stat_settings(Settings()))
    alerts = SignalAlerts(db, signals, directory, LaterSender(Outbox(db, SandboxTransport())), ALWAYS)
    assert (alerts.send_new(), alerts.send_new()) == (1, 0)
    [text] = summaries_to(db, SUPERVISOR_PHONE)
    assert "Andir" in text


def test_a_complaint_without_a_village_is_placed_by_the_registry(app: Flask, sqlite_db: Database) -> None:
    """By the subject NIK's household, else by the household registered to the reporter's phone."""
    with sqlite_db.session() as session:
        session.add_all([
            Recipient(nik="3204014501900003", name="Euis Rahayu", birth_date=date(1990, 1, 5), province_code="32",
                      regency="Kabupaten Bandung", district="Baleendah", village="Jelekong"),
            Recipient(nik="3204014501900011", name="Neneng Kurniasih", birth_date=date(1990, 1, 5), phone="+6281300000021",
                      province_code="32", regency="Kabupaten Bandung", district="Baleendah", village="Manggahang"),
        ])
        by_phone = Contact(address="+6281300000021", last_channel=Channel.SMS)
        other = Contact(address="+6281300000022", last_channel=Channel.SMS)
        session.add_all([by_phone, other])
        session.flush()
        ids = (by_phone.id, other.id)
    service = ReportService(sqlite_db, Outbox(sqlite_db, SandboxTransport()))
    service.create(ReportDraft(
        kind=ReportKind.PENGADUAN, reporter_contact_id=ids[1], category=ComplaintCategory.DANA_BELUM_DITERIMA,
        description="Bantuan tahap ini belum masuk", subject_nik="3204014501900003",
    ))
    service.create(ReportDraft(
        kind=ReportKind.PENGADUAN, reporter_contact_id=ids[0], category=ComplaintCategory.DATA_SALAH,
        description="Nama saya salah ketik di data", province_code="32",
    ))
    make_staff(app, "sari", role="supervisor")
    html = page(app, "sari", BANDUNG + "&district=Baleendah")
    assert '<td>Jelekong</td>' in html and '<td>Manggahang</td>' in html


def _complaints(db: Database, texts: list[str], category: str, village: str | None = "Manggahang", **where: str) -> None:
    """Complaints of distinct reporters, filed two days ago in Kabupaten Bandung (or `where`)."""
    with db.session() as session:
        for number, text in enumerate(texts):
            contact = Contact(address=where.get("phone_prefix", "+62813555") + f"{number:04d}", last_channel=Channel.SMS)
            session.add(contact)
            session.flush()
            session.add(Report(
                reference=f"ADU-20261201-{category[:2].upper()}{number:02d}{(village or 'XX')[:2].upper()}",
                kind=ReportKind.PENGADUAN, reporter_contact_id=contact.id, reporter_channel=Channel.SMS,
                category=category, description=text, province_code="32",
                regency=where.get("regency", "Kabupaten Bandung"), district=where.get("district", "Baleendah"),
                village=village, routed_to="3204", is_sensitive=False,
                created_at=utcnow() - timedelta(days=2), updated_at=utcnow(),
            ))


YUNI = ["Dana belum cair, kata pendamping Yuni harus bayar dulu ke dia"] * 3


def test_an_officer_named_in_non_sensitive_complaints_does_not_see_their_cluster(app: Flask, sqlite_db: Database) -> None:
    """"Dana belum diterima" is watched but not sensitive; the cluster still names the officer."""
    _complaints(sqlite_db, YUNI, ComplaintCategory.DANA_BELUM_DITERIMA)
    make_staff(app, "yuni", role="supervisor", region="32", full_name="Yuni Astuti")
    make_staff(app, "sari", role="supervisor", region="32", full_name="Sari Lestari")
    assert "Pendamping Yuni" in page(app, "sari")
    assert "Pendamping Yuni" not in page(app, "yuni")
    cluster = hashlib.sha256(b"nama|32|Kabupaten Bandung|pendamping yuni").hexdigest()
    assert signed_in(app, "sari").get("/staff/signals/reports", query_string={"cluster": cluster}).status_code == 200
    assert signed_in(app, "yuni").get("/staff/signals/reports", query_string={"cluster": cluster}).status_code == 403


def _alerts(app: Flask, db: Database, sender: object = None, window: SendingWindow = ALWAYS, clock=utcnow) -> SignalAlerts:
    return SignalAlerts(
        db, app.extensions["bansos"].signals, staff_services(app).directory,
        sender or LaterSender(Outbox(db, SandboxTransport())), window, clock,
    )


def _with_phones(app: Flask, *people: tuple[str, str, str]) -> None:
    admin = make_staff(app, "admin", role="admin")
    for username, full_name, phone in people:
        user = make_staff(app, username, role="supervisor", region="32", full_name=full_name)
        staff_services(app).directory.set_phone(user.id, phone, admin)


def test_an_officer_named_in_non_sensitive_complaints_is_not_sent_their_cluster(app: Flask, sqlite_db: Database) -> None:
    _complaints(sqlite_db, YUNI, ComplaintCategory.DANA_BELUM_DITERIMA)
    _with_phones(app, ("yuni", "Yuni Astuti", "+6281311115555"), ("sari", "Sari Lestari", SUPERVISOR_PHONE))
    assert _alerts(app, sqlite_db).send_new() == 1
    assert summaries_to(sqlite_db, "+6281311115555") == []
    [text] = summaries_to(sqlite_db, SUPERVISOR_PHONE)
    assert "Pendamping Yuni" in text


def test_the_summary_finds_the_clusters_once_a_run_not_once_per_supervisor(
    app: Flask, seeded: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_phones(
        app, ("sari", "Sari Lestari", SUPERVISOR_PHONE), ("budi", "Budi Santoso", "+6281311116666"),
        ("wati", "Wati Suryani", "+6281311117777"),
    )
    signals = app.extensions["bansos"].signals
    loads = []
    original = signals._load
    monkeypatch.setattr(signals, "_load", lambda *args, **kwargs: loads.append(1) or original(*args, **kwargs))
    assert _alerts(app, seeded).send_new() == 3
    assert len(loads) == 1


class _FailingOnce:
    """A sender whose first hand-over to the outbox raises, as a database error would."""

    def __init__(self, sender: LaterSender) -> None:
        self.sender, self.failed = sender, False

    def send(self, contact_id, message):  # type: ignore[no-untyped-def]
        if not self.failed:
            self.failed = True
            raise RuntimeError("outbox unavailable")
        return self.sender.send(contact_id, message)


def test_a_summary_that_cannot_be_sent_stops_no_one_else_and_goes_at_the_next_run(app: Flask, seeded: Database) -> None:
    _with_phones(app, ("sari", "Sari Lestari", SUPERVISOR_PHONE), ("budi", "Budi Santoso", "+6281311116666"))
    alerts = _alerts(app, seeded, sender=_FailingOnce(LaterSender(Outbox(seeded, SandboxTransport()))))
    assert alerts.send_new() == 1
    assert summaries_to(seeded, SUPERVISOR_PHONE) == []  # sari comes first; her send failed
    assert len(summaries_to(seeded, "+6281311116666")) == 1
    assert alerts.send_new() == 1  # sari's clusters were not marked announced
    assert len(summaries_to(seeded, SUPERVISOR_PHONE)) == 1
    assert len(summaries_to(seeded, "+6281311116666")) == 1
    assert alerts.send_new() == 0


def test_the_summary_waits_for_the_supervisors_sending_hours(app: Flask, seeded: Database) -> None:
    _with_phones(app, ("sari", "Sari Lestari", SUPERVISOR_PHONE))
    window = SendingWindow.parse("08:00", "20:00")
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    night = _alerts(app, seeded, window=window, clock=lambda: today + timedelta(hours=19))  # 02:00 WIB
    assert night.send_new() == 0 and summaries_to(seeded, SUPERVISOR_PHONE) == []
    morning = _alerts(app, seeded, window=window, clock=lambda: today + timedelta(hours=26))  # 09:00 WIB
    assert morning.send_new() == 1 and len(summaries_to(seeded, SUPERVISOR_PHONE)) == 1


def test_a_cluster_is_recorded_once_per_supervisor(db: Database) -> None:
    from sqlalchemy import inspect
    from sqlalchemy.exc import IntegrityError

    from bot.reports.signal_models import SignalAnnouncement

    directory = StaffDirectory(db, AuditLog(db))
    sari = directory.create_user("sari", PASSWORD, "supervisor", "Sari Lestari", "32")
    with db.session() as session:
        session.add(SignalAnnouncement(staff_user_id=sari.id, cluster_hash="a" * 64))
    with pytest.raises(IntegrityError):
        with db.session() as session:
            session.add(SignalAnnouncement(staff_user_id=sari.id, cluster_hash="a" * 64))
    # And complaints since a date are read through an index.
    indexes = inspect(db.engine).get_indexes("reports")
    assert any(index["column_names"] == ["kind", "created_at"] for index in indexes)


def test_lookups_in_the_registry_are_chunked(app: Flask, sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """However many complaints, no IN list outgrows the database's limit on bound values."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    import bot.reports.signals as signals_module

    monkeypatch.setattr(signals_module, "IN_CHUNK", 2)
    with sqlite_db.session() as session:
        session.add_all(
            Recipient(nik=f"32040145019000{n:02d}", name=f"Warga {n}", birth_date=date(1990, 1, 5), phone=f"+62813555{n:04d}",
                      province_code="32", regency="Kabupaten Bandung", district="Baleendah", village="Jelekong")
            for n in range(5)
        )
    _complaints(sqlite_db, ["Nama saya salah ketik di data"] * 5, ComplaintCategory.DATA_SALAH, village=None)
    bound: list[int] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "FROM recipients" in statement and " IN " in statement:
            bound.append(len(parameters))

    # On every engine: the app's is its own, on the same database file.
    event.listen(Engine, "before_cursor_execute", count)
    try:
        make_staff(app, "sari", role="supervisor")
        html = page(app, "sari", BANDUNG + "&district=Baleendah")
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert '<td>Jelekong</td>' in html
    assert bound and max(bound) <= 2


def test_villages_typed_by_citizens_are_matched_to_the_registry(app: Flask, sqlite_db: Database) -> None:
    """"andir" is Andir; an unknown village in a regency the registry knows is placed by the registry or left out."""
    with sqlite_db.session() as session:
        session.add_all([
            Recipient(nik="3204014501900003", name="Euis Rahayu", birth_date=date(1990, 1, 5), province_code="32",
                      regency="Kabupaten Bandung", district="Baleendah", village="Jelekong"),
            Recipient(nik="3204014501900011", name="Neneng Kurniasih", birth_date=date(1990, 1, 5), phone="+62813777" + "0000",
                      province_code="32", regency="Kabupaten Bandung", district="Baleendah", village="Manggahang"),
        ])
    _complaints(sqlite_db, ["Nama saya salah ketik"] * 2, ComplaintCategory.DATA_SALAH, village=" jelekong ",
                regency="kabupaten  bandung", district="baleendah")
    _complaints(sqlite_db, ["Nama saya salah ketik"], ComplaintCategory.DATA_SALAH, village="Kampung Antah",
                phone_prefix="+62813777")
    _complaints(sqlite_db, ["Nama saya salah ketik"], ComplaintCategory.DATA_SALAH, village="Antah Berantah",
                phone_prefix="+62813888")
    make_staff(app, "sari", role="supervisor")
    html = page(app, "sari", BANDUNG + "&district=Baleendah")
    assert html.count("<td>Jelekong</td>") == 1 and "jelekong" not in html
    assert "<td>Manggahang</td>" in html  # by the reporter's registered phone
    assert "Antah" not in html
