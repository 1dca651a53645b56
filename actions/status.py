"""Status, schedule and history in the conversation: the NIK form and the answer.

A thin adapter over bot.registry.status.StatusService, which holds every rule (who may see
what, the rate limit, the wording). The form asks nothing when the sender's phone
identifies exactly one household; a phone shared by several households is asked to
pick one by number, so the slot `nik` holds either a NIK or that number until the
answer has been given and the slot is cleared again.

The service is built on first use from the environment (actions.runtime: no engine
or network at import time); tests hand their own to `status_service.override`.
Database calls run in a worker thread so one slow query never stalls the action
server's event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import runtime
from actions.base import BansosAction
from bot.rules.nik import InvalidNik, find_niks, parse_nik
from bot.registry.status import RETRY_NIK, StatusService, parse_choice

NIK_SLOT = "nik"
TOPIC_SLOT = "status_topic"
PROGRAM_SLOT = "program"

status_service: runtime.Lazy[StatusService] = runtime.Lazy(
    lambda: runtime.services().status
)


def _slot_text(value: Any) -> Optional[str]:
    """A slot as text: entity mappings may deliver a list when a message has several."""
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else str(value)


class ValidateStatusForm(FormValidationAction):
    """Decides whether the NIK must be asked for and checks what the user sent."""

    def name(self) -> Text:
        return "validate_status_form"

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        """Skip the NIK when the phone names one household and the user gave no NIK.

        A NIK just sent (even one that failed validation) keeps the slot required,
        so a wrong NIK is asked again instead of silently answering for the phone.
        """
        just_sent = NIK_SLOT in tracker.slots_to_validate()
        if just_sent or tracker.get_slot(NIK_SLOT) is not None:
            return domain_slots
        households = await asyncio.to_thread(
            status_service().households_for_contact, tracker.sender_id
        )
        if len(households) == 1:
            return [slot for slot in domain_slots if slot != NIK_SLOT]
        return domain_slots

    async def validate_nik(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        """Accept a valid NIK, or a household number when the phone has several."""
        text = _slot_text(slot_value) or ""
        households = await asyncio.to_thread(
            status_service().households_for_contact, tracker.sender_id
        )
        choice = parse_choice(text, len(households))
        if choice is not None:
            return {NIK_SLOT: str(choice)}
        found = find_niks(text)
        # Without a whole NIK, the reason is about the words holding digits, so
        # "nik saya 3201 0155" is told it is too short rather than that it has letters.
        numeric = " ".join(word for word in text.split() if any(ch.isdigit() for ch in word))
        candidate = found[0] if found else numeric or text
        try:
            nik = parse_nik(candidate)
        except InvalidNik as exc:
            dispatcher.utter_message(text=f"{exc.reason} {RETRY_NIK}")
            return {NIK_SLOT: None}
        return {NIK_SLOT: nik.value}


class ActionAskStatusFormNik(BansosAction):
    """Asks for the NIK, listing the households when the phone has several.

    After a rejected NIK the validation has already asked again, so this stays
    silent rather than sending a second request in the same SMS.
    """

    def name(self) -> Text:
        return "action_ask_status_form_nik"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        recent = tracker.slots_to_validate()
        if NIK_SLOT in recent and recent[NIK_SLOT] is None:
            return []
        answer = await asyncio.to_thread(status_service().ask_for_nik, tracker.sender_id)
        dispatcher.utter_message(text=answer.text)
        return []


class ActionAnswerStatus(BansosAction):
    """Gives the status, schedule or history answer, then forgets the NIK."""

    def name(self) -> Text:
        return "action_answer_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        program = _slot_text(tracker.get_slot(PROGRAM_SLOT))
        answer = await asyncio.to_thread(
            status_service().answer,
            tracker.sender_id,
            _slot_text(tracker.get_slot(NIK_SLOT)),
            _slot_text(tracker.get_slot(TOPIC_SLOT)),
            program,
            self.channel(tracker),
        )
        dispatcher.utter_message(text=answer.text)
        events: List[EventType] = [SlotSet(NIK_SLOT, None), SlotSet(TOPIC_SLOT, None)]
        if program is not None:
            events.append(SlotSet(PROGRAM_SLOT, None))
        return events
