"""Reaching a person from the conversation: the `request_human` intent and repeated fallbacks.

A thin adapter over bot.handoff.service.Escalations. The PETUGAS keyword never gets here
(the core escalates it without Rasa); these actions cover the NLU's side:

- `action_handoff` answers `request_human` ("mau bicara dengan petugas").
- `action_handoff_fallback` follows `utter_default` after `nlu_fallback`: it stays
  silent the first time and escalates the second time in a row. It counts from the
  tracker's own user events (the NLU's verdict), not from reply texts, so changing
  a response's wording cannot break it.

Once a handoff is open the core routes the citizen's next messages to staff, and
handing back restarts this tracker, so no slot or event needs setting here.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import runtime
from actions.base import BansosAction
from bot.handoff.service import Escalations
from bot.handoff.models import HandoffReason

FALLBACK_INTENT = "nlu_fallback"
FALLBACKS_BEFORE_HANDOFF = 2
# Without a stored contact (a test console talking to Rasa directly) there is no
# chat to hand over; the citizen still learns how to reach a person.
NO_CONTACT_TEXT = (
    "Untuk berbicara dengan petugas, hubungi call center 171 atau dinas sosial setempat."
)
# Events after which earlier user turns no longer count.
_FRESH_START = frozenset({"restart", "session_started"})

escalations: runtime.Lazy[Escalations] = runtime.Lazy(
    lambda: runtime.services().escalations
)


def recent_intents(events: List[Dict[Text, Any]]) -> List[Text]:
    """Intents of the user turns since the conversation last started, oldest first.

    A reverted user turn (Rasa's own fallback undoes it) no longer counts.
    """
    intents: List[Text] = []
    for event in events:
        kind = event.get("event")
        if kind in _FRESH_START:
            intents.clear()
        elif kind == "user":
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            intents.append(intent or "")
        elif kind == "user_utterance_reverted" and intents:
            intents.pop()
    return intents


def misunderstood_in_a_row(tracker: Tracker) -> bool:
    """Whether the last FALLBACKS_BEFORE_HANDOFF user turns all fell back."""
    latest = recent_intents(tracker.events)[-FALLBACKS_BEFORE_HANDOFF:]
    return len(latest) == FALLBACKS_BEFORE_HANDOFF and all(i == FALLBACK_INTENT for i in latest)


async def _escalate(dispatcher: CollectingDispatcher, tracker: Tracker, reason: Text) -> None:
    escalation = await asyncio.to_thread(
        escalations().escalate_conversation, tracker.sender_id, reason
    )
    dispatcher.utter_message(text=escalation.notice if escalation else NO_CONTACT_TEXT)


class ActionHandoff(BansosAction):
    """Hands the chat to a person and says roughly when they will answer."""

    def name(self) -> Text:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        await _escalate(dispatcher, tracker, HandoffReason.REQUESTED)
        return []


class ActionHandoffFallback(BansosAction):
    """After the second "not understood" in a row, hands the chat to a person."""

    def name(self) -> Text:
        return "action_handoff_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        if misunderstood_in_a_row(tracker):
            await _escalate(dispatcher, tracker, HandoffReason.NOT_UNDERSTOOD)
        return []
