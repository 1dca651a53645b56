"""The composition root: every service of the core, built in this one place.

The web app (app.py), the action server (actions/runtime.py), the scheduler
(bot/notices/scheduler.py) and the CLI each call `build_services` once per process
and take what they need from the result, so a service is wired one way everywhere
(one ReportService, one outbox, one transport per process).
"""
from __future__ import annotations

from dataclasses import dataclass

from bot.channels.buttons import ButtonContents
from bot.channels.delivery import DeliveryTracker
from bot.channels.later import LaterSender, templates_from_settings
from bot.channels.outbox import Outbox
from bot.channels.routing import make_transport
from bot.channels.twilio import make_client
from bot.channels.twilio_media import TwilioMedia
from bot.config import Settings
from bot.conversation.inbound import Conversations
from bot.conversation.rasa_client import RasaClient
from bot.db import Database
from bot.handoff.audit import AuditLog
from bot.handoff.conversation_export import ConversationExport
from bot.handoff.service import Escalations, HandoffDesk
from bot.handoff.staff_services import StaffServices
from bot.handoff.staff_users import StaffDirectory
from bot.media.intake import MediaIntake
from bot.media.staff import StaffMedia
from bot.media.store import make_media_store
from bot.notices.pacing import RetryPolicy
from bot.registry.status import StatusService
from bot.reports.service import ReportService
from bot.reports.signals import SignalService, stat_settings
from bot.reports.staff_view import StaffReports


@dataclass
class Services:
    settings: Settings
    db: Database
    rasa: RasaClient
    outbox: Outbox
    # Messages the app sends on its own (WhatsApp's 24-hour window): `later.send`.
    later: LaterSender
    delivery: DeliveryTracker
    escalations: Escalations
    conversations: Conversations
    reports: ReportService
    status: StatusService
    # What the staff dashboard works with.
    staff: StaffServices
    # The "Sinyal" page and the supervisors' daily summary.
    signals: SignalService
    # Citizens' attachments fetched from the provider into our media store.
    media: MediaIntake


def _buttons(settings: Settings) -> ButtonContents | None:
    """WhatsApp's buttons need Twilio's Content API; without Twilio, choices go as text."""
    return ButtonContents(make_client(settings)) if settings.twilio_enabled else None


def _media_source(settings: Settings) -> TwilioMedia | None:
    """Media are fetched from Twilio with its credentials; without them they wait, recorded."""
    return TwilioMedia(settings) if settings.twilio_enabled else None


def build_services(settings: Settings) -> Services:
    """Build every service from the settings; fails at start-up on a bad configuration."""
    db = Database.from_settings(settings)
    rasa = RasaClient(settings.rasa_replicas, settings.rasa_timeout, settings.rasa_token)
    outbox = Outbox(db, make_transport(settings), templates_from_settings(settings))
    later = LaterSender(outbox)
    escalations = Escalations(db)
    reports = ReportService(db, outbox)
    audit = AuditLog(db)
    desk = HandoffDesk(db, outbox, rasa, audit)
    media_store = make_media_store(settings, db)
    staff_reports = StaffReports(db, reports, audit)
    return Services(
        settings=settings,
        db=db,
        rasa=rasa,
        outbox=outbox,
        later=later,
        delivery=DeliveryTracker(db, RetryPolicy.from_settings(settings), fall_back=later.fall_back_soon),
        escalations=escalations,
        conversations=Conversations(db, rasa, settings, escalations, outbox, _buttons(settings)),
        reports=reports,
        status=StatusService(db, settings.effective_secret_key),
        staff=StaffServices(
            db=db,
            audit=audit,
            directory=StaffDirectory(db, audit),
            desk=desk,
            reports=staff_reports,
            conversation_export=ConversationExport(db, desk, audit),
            media=StaffMedia(db, media_store, audit, desk, staff_reports),
        ),
        signals=SignalService(db, stat_settings(settings)),
        media=MediaIntake(db, media_store, _media_source(settings), outbox, settings),
    )
