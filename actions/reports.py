"""Usul, sanggah and pengaduan by chat, and TIKET: the Rasa side of bot.reports.service.

`report_form` is one form for the three kinds; actions.report_form decides its
steps and wording. `validate_report_form` runs every turn of it: when the form
starts it reads the opening message (a keyword may carry the whole report in the
`report_text` entity), afterwards it reads the answer to the question asked, and
in both cases it asks the next question itself. The form therefore has no
action_ask_* actions, and a question can depend on the kind, the channel and the
answers so far. A message that is no answer (BATAL, MENU, another keyword)
yields no slot, so Rasa rejects the form for that turn and the rules answer it.

The webhook puts each message's stored `message_id` in the Rasa metadata; on
WhatsApp the form fetches that message's media (photos as evidence) from
bot.reports.service, together with photos sent without a caption since the previous
answer (the webhook answers those alone, so they never reach Rasa).

Services are built on first use (actions.runtime); database calls run in a worker
thread so a slow query never stalls the action server's event loop.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import replace
from typing import Any, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import runtime
from actions.handoff import escalations
from actions.base import CHANNEL_WHATSAPP, BansosAction
from bot.reports.dialogue import (
    KIND,
    KINDS_BY_INTENT,
    SLOTS,
    FormInput,
    AnswerOutcome,
    Turn,
    answer,
    draft,
    next_slot,
    question,
    question_choices,
    start,
)
from bot.conversation.choices import as_buttons
from bot.reports.service import AttachmentDraft, InvalidReport, ReportService
from bot.reports.models import ReportKind

log = logging.getLogger(__name__)

FORM = "report_form"
REQUESTED_SLOT = "requested_slot"
REPORT_TEXT_ENTITY = "report_text"
TICKET_REF_ENTITY = "ticket_ref"

ASK_TICKET = (
    "Kirim nomor laporan Bapak/Ibu dengan kata TIKET, contoh: TIKET ADU-20260101-ABCD."
)
NOT_FILED = "Laporan belum terkirim. Ketik USUL, SANGGAH atau ADU untuk mengulang."
CANNOT_FILE = (
    "Maaf, laporan belum dapat kami simpan. Mohon coba lagi nanti atau hubungi "
    "call center 171."
)

report_service: runtime.Lazy[ReportService] = runtime.Lazy(
    lambda: runtime.services().reports
)


class Stage(enum.Enum):
    """Why the form runs this time."""

    STARTED = "started"  # just activated: read the opening message
    ANSWERED = "answered"  # the user replied to the question asked
    RESUMED = "resumed"  # back after a rule answered something else: ask again


# Events Rasa puts between the user's message and the form's run that say nothing
# about why it runs.
_NEUTRAL_EVENTS = frozenset({"slot", "loop_interrupted", "user_featurization"})


def stage(tracker: Tracker) -> Stage:
    """Read from the events whether the form starts, gets an answer, or resumes.

    Rasa also runs the form's validation when it comes back after a rule answered a
    message the form rejected (a greeting, say); that message must not be read
    again as an answer, so anything but slots between the user's message and this
    run means the form resumes.
    """
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "active_loop" and event.get("name") == FORM:
            return Stage.STARTED
        if kind == "user":
            return Stage.ANSWERED
        if kind in _NEUTRAL_EVENTS or (
            kind == "action" and event.get("name") in (FORM, "action_extract_slots")
        ):
            continue
        return Stage.RESUMED
    return Stage.RESUMED


def _message_id(metadata: Any) -> Optional[int]:
    value = metadata.get("message_id") if isinstance(metadata, dict) else None
    return value if isinstance(value, int) else None


def _previous_message_id(tracker: Tracker) -> Optional[int]:
    """The stored id of the user message before the latest one."""
    users = (event for event in reversed(tracker.events) if event.get("event") == "user")
    next(users, None)
    previous = next(users, None)
    return _message_id(previous.get("metadata")) if previous else None


def latest_message(tracker: Tracker) -> FormInput:
    """The latest user message as the form reads it (its media are fetched apart)."""
    latest = tracker.latest_message or {}
    text = str(latest.get("text") or "")
    intent = (latest.get("intent") or {}).get("name")
    return FormInput(text=text, intent=intent, is_payload=text.startswith("/"))


def _turn(tracker: Tracker, whatsapp: bool) -> Turn:
    values = {slot: tracker.get_slot(slot) for slot in SLOTS}
    return Turn(values[KIND], whatsapp, values)


class ValidateReportForm(BansosAction):
    """Runs each turn of report_form: reads the answer and asks the next question."""

    def name(self) -> Text:
        return "validate_report_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        whatsapp = self.channel(tracker) == CHANNEL_WHATSAPP
        message = latest_message(tracker)
        current = stage(tracker)
        if current is Stage.STARTED or tracker.get_slot(KIND) is None:
            # A complaint is the most general kind, should the form start otherwise.
            kind = KINDS_BY_INTENT.get(message.intent or "", ReportKind.PENGADUAN)
            report_text = next(tracker.get_latest_entity_values(REPORT_TEXT_ENTITY), None)
            media = await self._media(tracker, whatsapp, since_previous=False)
            turn = start(kind, whatsapp, replace(message, media=media), report_text)
            opening = True
        else:
            turn = _turn(tracker, whatsapp)
            opening = False
            requested = tracker.get_slot(REQUESTED_SLOT)
            if current is Stage.ANSWERED and requested:
                if message.is_payload:
                    return []
                media = await self._media(tracker, whatsapp, since_previous=True)
                if answer(turn, requested, replace(message, media=media)) is AnswerOutcome.INTERRUPT:
                    return []
        asked = next_slot(turn)
        texts = list(turn.messages)
        if asked is not None:
            text = question(turn, asked, opening=opening)
            if text:
                texts.append(text)
        if texts:
            # On WhatsApp the question's answers also come as buttons to tap.
            offered = question_choices(turn, asked) if asked is not None else []
            dispatcher.utter_message(text="\n".join(texts), buttons=as_buttons(offered))
        events: List[EventType] = [SlotSet(slot, value) for slot, value in turn.changes.items()]
        return events + [SlotSet(REQUESTED_SLOT, asked)]

    @staticmethod
    async def _media(
        tracker: Tracker, whatsapp: bool, since_previous: bool
    ) -> tuple[AttachmentDraft, ...]:
        """WhatsApp media of this message, and of captionless ones since the previous answer.

        SMS in Indonesia carries no media, so nothing is looked up there.
        """
        current = _message_id(BansosAction.metadata(tracker))
        if not whatsapp or current is None:
            return ()
        previous = _previous_message_id(tracker) if since_previous else None
        return await asyncio.to_thread(
            report_service().media_of_message, tracker.sender_id, current, previous
        )


class ActionSubmitReport(BansosAction):
    """Files the confirmed report and gives its reference and what happens next."""

    def name(self) -> Text:
        return "action_submit_report"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        turn = _turn(tracker, self.channel(tracker) == CHANNEL_WHATSAPP)
        service = report_service()
        reporter = await asyncio.to_thread(service.reporter_id, tracker.sender_id)
        if reporter is None or turn.kind is None:
            log.warning("report not filed: no reporter contact or kind for this conversation")
            dispatcher.utter_message(text=CANNOT_FILE)
            return []
        try:
            created = await asyncio.to_thread(
                service.create, draft(turn, reporter, self.channel(tracker))
            )
        except InvalidReport as exc:
            # The form checks every answer with the same rules, so this is a bug.
            log.warning("report draft refused at filing: field %s", exc.field)
            dispatcher.utter_message(text=f"{exc.reason} {NOT_FILED}")
            return []
        escalation = await asyncio.to_thread(escalations().escalate_report, created.reference)
        notice = f" {escalation.notice}" if escalation else ""
        dispatcher.utter_message(text=created.reply_text + notice)
        return []


class ActionForgetReport(BansosAction):
    """Forgets a report in progress but keeps the other slots.

    Used when the user leaves the form for a status question, whose NIK and
    topic were just taken from that same message.
    """

    def name(self) -> Text:
        return "action_forget_report"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        return [SlotSet(slot, None) for slot in SLOTS if tracker.get_slot(slot) is not None]


class ActionCheckTicket(BansosAction):
    """Answers `TIKET <ref>`: the status and latest note, to the reporter only."""

    def name(self) -> Text:
        return "action_check_ticket"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        reference = next(tracker.get_latest_entity_values(TICKET_REF_ENTITY), None)
        if not reference:
            dispatcher.utter_message(text=ASK_TICKET)
            return []
        service = report_service()
        reporter = await asyncio.to_thread(service.reporter_id, tracker.sender_id)
        text = await asyncio.to_thread(service.lookup, str(reference), reporter)
        dispatcher.utter_message(text=text)
        return []
