"""Status, schedule and history in the conversation: the NIK form and the answer.

A thin adapter over bot.registry.status.StatusService, which holds every rule (who may see
what, the rate limit, the wording). The form asks nothing when the sender's phone
identifies exactly one household; a phone shared by several households is asked to
pick one by number, so the slot `nik` holds either a NIK or that number until the
answer has been given and the slot is cleared again.

A citizen without a NIK ("lupa NIK", NAMA, CEK NAMA ... DESA ...) is asked the full
name and the village instead, and which village by number when several share the
name; when more share it than one list shows, the kecamatan or kabupaten/kota first,
which is kept in the village slot after a comma ("Sukamaju, Cibinong"). The answer is
then the public one (StatusService.answer_by_name). Numbered lists also go as
WhatsApp choices (Rasa buttons, bot/conversation/choices.py).

The service is built on first use from the environment (actions.runtime: no engine
or network at import time); tests hand their own to `status_service.override`.
Database calls run in a worker thread so one slow query never stalls the action
server's event loop.
"""

from __future__ import annotations

import abc
import asyncio
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import runtime
from actions.base import BansosAction
from bot.conversation.choices import Reply, as_buttons, choices_of
from bot.rules.nik import InvalidNik, find_niks, parse_nik
from bot.registry.by_name import InvalidName, Village, normalise_name, with_area
from bot.registry.status import (
    AREA_UNKNOWN,
    ASK_NAME,
    RETRY_AREA,
    ASK_VILLAGE,
    RETRY_NAME,
    RETRY_NIK,
    RETRY_VILLAGE,
    RETRY_VILLAGE_CHOICE,
    VILLAGE_UNKNOWN,
    StatusAnswer,
    StatusService,
    parse_choice,
)

NIK_SLOT = "nik"
TOPIC_SLOT = "status_topic"
PROGRAM_SLOT = "program"
BY_NAME_SLOT = "status_by_name"
NAME_SLOT = "status_name"
VILLAGE_SLOT = "status_village"
VILLAGE_CHOICE_SLOT = "status_village_choice"
BY_NAME_SLOTS = (BY_NAME_SLOT, NAME_SLOT, VILLAGE_SLOT, VILLAGE_CHOICE_SLOT)

status_service: runtime.Lazy[StatusService] = runtime.Lazy(
    lambda: runtime.services().status
)


def _slot_text(value: Any) -> Optional[str]:
    """A slot as text: entity mappings may deliver a list when a message has several."""
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else str(value)


async def _villages(text: Optional[str]) -> List[Village]:
    """The villages going by a name already accepted; none for a name never accepted."""
    try:
        return await asyncio.to_thread(status_service().villages, text)
    except InvalidName:
        return []


async def _known_villages(
    dispatcher: CollectingDispatcher, text: str, unknown: str, retry: str = RETRY_VILLAGE
) -> Optional[List[Village]]:
    """The villages `text` names; None, once the citizen is told why (`unknown` when
    the register has none of that name, else the reason and `retry`), for text naming
    no village."""
    try:
        villages = await asyncio.to_thread(status_service().villages, text)
    except InvalidName as exc:
        dispatcher.utter_message(text=f"{exc.reason} {retry}")
        return None
    if not villages:
        dispatcher.utter_message(text=unknown)
        return None
    return villages


def _say(dispatcher: CollectingDispatcher, answer: StatusAnswer) -> None:
    """Send an answer, its numbered list also as WhatsApp choices."""
    dispatcher.utter_message(text=answer.text, buttons=as_buttons(answer.choices))


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
        """The NIK; or name and village for a citizen without one; or nothing at all.

        A NIK just sent (even one that failed validation) keeps the slot required,
        so a wrong NIK is asked again instead of silently answering for the phone.
        A phone that names one household asks nothing, unless a name was given.
        The village number is asked only when the village name is shared.
        """
        just_sent = NIK_SLOT in tracker.slots_to_validate()
        if just_sent or tracker.get_slot(NIK_SLOT) is not None:
            return [NIK_SLOT]
        if tracker.get_slot(NAME_SLOT) is None:
            households = await asyncio.to_thread(
                status_service().households_for_contact, tracker.sender_id
            )
            if len(households) == 1:
                return []
        if not tracker.get_slot(BY_NAME_SLOT):
            return [NIK_SLOT]
        village = _slot_text(tracker.get_slot(VILLAGE_SLOT))
        if village is None:
            return [NAME_SLOT, VILLAGE_SLOT]
        if len(await _villages(village)) > 1:
            return [NAME_SLOT, VILLAGE_SLOT, VILLAGE_CHOICE_SLOT]
        return [NAME_SLOT, VILLAGE_SLOT]

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

    async def validate_status_name(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        """Accept a full name (a NIK sent instead makes the form a NIK form again).

        The keyword NAMA sent again arrives here as its payload ("/check_status_by_name"):
        the name is simply asked for again.
        """
        text = " ".join((_slot_text(slot_value) or "").split())
        if text.startswith("/"):
            dispatcher.utter_message(text=ASK_NAME)
            return {NAME_SLOT: None}
        try:
            normalise_name(text)
        except InvalidName as exc:
            dispatcher.utter_message(text=f"{exc.reason} {RETRY_NAME}")
            return {NAME_SLOT: None}
        return {NAME_SLOT: text}

    async def validate_status_village(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        """Accept a village the register knows."""
        text = " ".join((_slot_text(slot_value) or "").split())
        if await _known_villages(dispatcher, text, VILLAGE_UNKNOWN.format(village=text)) is None:
            return {VILLAGE_SLOT: None}
        return {VILLAGE_SLOT: text}

    async def validate_status_village_choice(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        """Accept the number of one of the villages listed; or, when too many share the
        name to list, the kecamatan or kabupaten/kota, which narrows the village."""
        village = _slot_text(tracker.get_slot(VILLAGE_SLOT))
        villages = await _villages(village)
        text = " ".join((_slot_text(slot_value) or "").split())
        listed = status_service().village_choice(villages)
        if listed.choices:
            choice = status_service().village_number(text, villages)
            if choice is None:
                dispatcher.utter_message(text=RETRY_VILLAGE_CHOICE.format(count=len(villages)))
                return {VILLAGE_CHOICE_SLOT: None}
            return {VILLAGE_CHOICE_SLOT: str(choice)}
        narrowed = with_area(village, text)
        unknown = AREA_UNKNOWN.format(village=(village or "").partition(",")[0].strip(), area=text)
        found = await _known_villages(dispatcher, narrowed, unknown, RETRY_AREA)
        if found is None:
            return {VILLAGE_CHOICE_SLOT: None}
        if len(found) == 1:
            return {VILLAGE_SLOT: narrowed, VILLAGE_CHOICE_SLOT: "1"}
        # Still several: this validation asks (the question action stays silent after it).
        _say(dispatcher, status_service().village_choice(found))
        return {VILLAGE_SLOT: narrowed, VILLAGE_CHOICE_SLOT: None}


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
        _say(dispatcher, answer)
        return []


class _AskAfterValidation(BansosAction):
    """Asks for one slot of the name path, silent right after a rejected answer.

    The validation has then already said what was wrong and asked again.
    """

    slot: str = ""

    def name(self) -> Text:
        return f"action_ask_status_form_{self.slot}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        recent = tracker.slots_to_validate()
        if self.slot in recent and recent[self.slot] is None:
            return []
        question = await self.question(tracker)
        dispatcher.utter_message(text=str(question), buttons=as_buttons(choices_of(question)))
        return []

    @abc.abstractmethod
    async def question(self, tracker: Tracker) -> str:
        """The question to send (a Reply when it offers choices); abstract, so rasa_sdk
        registers only the subclasses."""


class ActionAskStatusFormStatusName(_AskAfterValidation):
    """Asks the full name as written on the KTP."""

    slot = NAME_SLOT

    async def question(self, tracker: Tracker) -> str:
        return ASK_NAME


class ActionAskStatusFormStatusVillage(_AskAfterValidation):
    """Asks the kelurahan/desa."""

    slot = VILLAGE_SLOT

    async def question(self, tracker: Tracker) -> str:
        return ASK_VILLAGE


class ActionAskStatusFormStatusVillageChoice(_AskAfterValidation):
    """Lists the villages that share the name given, to pick one by number; or, when
    too many share it to list, asks for the kecamatan or kabupaten/kota."""

    slot = VILLAGE_CHOICE_SLOT

    async def question(self, tracker: Tracker) -> str:
        villages = await _villages(_slot_text(tracker.get_slot(VILLAGE_SLOT)))
        answer = status_service().village_choice(villages)
        return Reply(answer.text, answer.choices)


class ActionAnswerStatus(BansosAction):
    """Gives the status, schedule or history answer, then forgets the NIK."""

    def name(self) -> Text:
        return "action_answer_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        program = _slot_text(tracker.get_slot(PROGRAM_SLOT))
        name = _slot_text(tracker.get_slot(NAME_SLOT))
        if tracker.get_slot(NIK_SLOT) is None and name is not None:
            answer = await asyncio.to_thread(
                status_service().answer_by_name,
                tracker.sender_id,
                name,
                _slot_text(tracker.get_slot(VILLAGE_SLOT)),
                _slot_text(tracker.get_slot(VILLAGE_CHOICE_SLOT)),
            )
            dispatcher.utter_message(text=answer.text)
            return [SlotSet(slot, None) for slot in BY_NAME_SLOTS] + [
                SlotSet(TOPIC_SLOT, None),
                SlotSet(PROGRAM_SLOT, None),
            ]
        answer = await asyncio.to_thread(
            status_service().answer,
            tracker.sender_id,
            _slot_text(tracker.get_slot(NIK_SLOT)),
            _slot_text(tracker.get_slot(TOPIC_SLOT)),
            program,
            self.channel(tracker),
        )
        _say(dispatcher, answer)
        events: List[EventType] = [SlotSet(NIK_SLOT, None), SlotSet(TOPIC_SLOT, None)]
        if program is not None:
            events.append(SlotSet(PROGRAM_SLOT, None))
        return events
