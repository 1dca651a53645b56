"""The composition root: every service of the core, built in this one place.

The web app (app.py), the action server (actions/runtime.py), the scheduler
(bot/notices/scheduler.py) and the CLI each call `build_services` once per process
and take what they need from the result, so a service is wired one way everywhere
(one ReportService, one outbox, one transport per process).
"""
from __future__ import annotations

from dataclasses import dataclass

from bot.channels.delivery import DeliveryTracker
from bot.channels.outbox import Outbox
from bot.channels.routing import make_transport
from bot.config import Settings
from bot.conversation.inbound import Conversations
from bot.conversation.rasa_client import RasaClient
from bot.db import Database
from bot.handoff.audit import AuditLog
from bot.handoff.service import Escalations, HandoffDesk
from bot.handoff.staff_services import StaffServices
from bot.handoff.staff_users import StaffDirectory
from bot.notices.pacing import RetryPolicy
from bot.registry.status import StatusService
from bot.reports.service import ReportService
from bot.reports.staff_view import StaffReports


@dataclass
class Services:
    settings: Settings
    db: Database
    rasa: RasaClient
    outbox: Outbox
    delivery: DeliveryTracker
    escalations: Escalations
    conversations: Conversations
    reports: ReportService
    status: StatusService
    # What the staff dashboard works with.
    staff: StaffServices


def build_services(settings: Settings) -> Services:
    """Build every service from the settings; fails at start-up on a bad configuration."""
    db = Database.from_settings(settings)
    rasa = RasaClient(settings.rasa_replicas, settings.rasa_timeout, settings.rasa_token)
    outbox = Outbox(db, make_transport(settings))
    escalations = Escalations(db)
    reports = ReportService(db, outbox)
    audit = AuditLog(db)
    return Services(
        settings=settings,
        db=db,
        rasa=rasa,
        outbox=outbox,
        delivery=DeliveryTracker(db, RetryPolicy.from_settings(settings)),
        escalations=escalations,
        conversations=Conversations(db, rasa, settings, escalations, outbox),
        reports=reports,
        status=StatusService(db, settings.effective_secret_key),
        staff=StaffServices(
            db=db,
            audit=audit,
            directory=StaffDirectory(db, audit),
            desk=HandoffDesk(db, outbox, rasa, audit),
            reports=StaffReports(db, reports, audit),
        ),
    )
