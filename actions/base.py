"""Shared base class for the assistant's custom actions.

Every action answers over two channels with very different budgets: WhatsApp,
where a longer formatted message is fine, and SMS on feature phones, where each
160-character GSM-7 segment may cost the recipient money. The webhook tells Rasa
which one a message came from in the message metadata, and actions read it
through :meth:`BansosAction.channel` so they all agree on the default.
"""

from __future__ import annotations

import abc
from typing import Any, Dict, Text

from rasa_sdk import Action, Tracker

CHANNEL_SMS = "sms"
CHANNEL_WHATSAPP = "whatsapp"
KNOWN_CHANNELS = frozenset({CHANNEL_SMS, CHANNEL_WHATSAPP})

# SMS is the safe default: a short answer is still readable on WhatsApp, while a
# long WhatsApp-style answer could cost a feature-phone user several segments.
DEFAULT_CHANNEL = CHANNEL_SMS


class BansosAction(Action, abc.ABC):
    """Base for all Asisten Bansos actions.

    ``name()`` stays abstract so that ``rasa_sdk``'s executor, which registers
    every non-abstract subclass of ``Action`` it finds, never tries to register
    this helper class itself.
    """

    @abc.abstractmethod
    def name(self) -> Text:
        """Return the action name as declared in domain.yml."""

    @staticmethod
    def channel(tracker: Tracker) -> Text:
        """Return the channel of the latest user message: ``"sms"`` or ``"whatsapp"``.

        The webhook puts ``{"channel": ...}`` in the message metadata. Anything
        missing or unexpected (a test client, an older webhook, a typo) falls back
        to SMS so the answer is never too long for a feature phone.
        """
        channel = BansosAction.metadata(tracker).get("channel")
        if isinstance(channel, str) and channel.strip().lower() in KNOWN_CHANNELS:
            return channel.strip().lower()
        return DEFAULT_CHANNEL

    @classmethod
    def is_sms(cls, tracker: Tracker) -> bool:
        """Return True when the answer must fit the SMS budget."""
        return cls.channel(tracker) == CHANNEL_SMS

    @staticmethod
    def metadata(tracker: Tracker) -> Dict[Text, Any]:
        """Return the latest message's metadata as a dict (empty when absent)."""
        metadata: Any = (tracker.latest_message or {}).get("metadata") or {}
        return metadata if isinstance(metadata, dict) else {}
