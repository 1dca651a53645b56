"""The services one process needs, built once from its settings."""
from __future__ import annotations

from dataclasses import dataclass

from bot.channels.routing import make_transport
from bot.config import Settings
from bot.conversation.inbound import Conversations
from bot.db import Database
from bot.channels.delivery import DeliveryTracker
from bot.channels.outbox import Outbox
from bot.notices.pacing import RetryPolicy
from bot.conversation.rasa_client import RasaClient


@dataclass
class Services:
    settings: Settings
    db: Database
    rasa: RasaClient
    conversations: Conversations
    delivery: DeliveryTracker
    outbox: Outbox


def build_services(settings: Settings) -> Services:
    db = Database(settings.database_url)
    rasa = RasaClient(settings.rasa_url, settings.rasa_timeout, settings.rasa_token)
    return Services(
        settings=settings,
        db=db,
        rasa=rasa,
        conversations=Conversations(db, rasa, settings),
        delivery=DeliveryTracker(db, RetryPolicy.from_settings(settings)),
        outbox=Outbox(db, make_transport(settings)),
    )
