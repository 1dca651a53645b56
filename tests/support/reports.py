"""Many reports written straight to the database, for tests about exports of any size.

Filing 1,200 reports through ReportService would test the filing rules 1,200 times
and take seconds; one bulk insert gives the export something big to read at once.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import insert

from bot.db import Database
from bot.conversation.models import Channel, Contact
from bot.reports.models import ComplaintCategory, Report, ReportKind

FILED_AT = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)


def insert_reports(db: Database, count: int, description: str) -> list[str]:
    """`count` plain complaints from one new reporter; their references, in filing order."""
    references = [f"ADU-20261123-{number:05d}" for number in range(count)]
    with db.session() as session:
        contact = Contact(address="+6281300000001", last_channel=Channel.SMS)
        session.add(contact)
        session.flush()
        session.execute(
            insert(Report),
            [
                {
                    "reference": reference,
                    "kind": ReportKind.PENGADUAN,
                    "reporter_contact_id": contact.id,
                    "reporter_channel": Channel.SMS,
                    "category": ComplaintCategory.DANA_BELUM_DITERIMA,
                    "description": description,
                    "province_code": "32",
                    "routed_to": "32",
                    "created_at": FILED_AT,
                    "updated_at": FILED_AT,
                }
                for reference in references
            ],
        )
    return references
