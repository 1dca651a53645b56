"""Navigation actions: showing the service menu and leaving a task.

The menu is the one answer every citizen needs to be able to find again, so it
lists the SMS keywords that the webhook honours whatever the NLU says (see
DESIGN.md), both menus read from the one keyword table (bot/conversation/keywords.py).
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.base import CHANNEL_WHATSAPP, BansosAction
from bot.reports.dialogue import SLOTS as REPORT_SLOTS
from bot.conversation.choices import as_buttons
from bot.conversation.keywords import menu_choices, sms_menu, whatsapp_menu

# Slots that hold the task in progress. Cleared when a status answer has been
# given, a report filed, or the user cancels, so a NIK does not linger in the
# conversation (a phone is often shared in a family). Forms added later should
# list their slots here.
TASK_SLOTS = (
    ("nik", "status_topic", "program")
    + ("status_by_name", "status_name", "status_village", "status_village_choice")
    + REPORT_SLOTS
)


def menu_text(channel: Text) -> Text:
    """Return the menu for a channel; anything but WhatsApp gets the SMS version."""
    return whatsapp_menu() if channel == CHANNEL_WHATSAPP else sms_menu()


class ActionShowMenu(BansosAction):
    """Send the list of services with their keywords (intent ``help``, keyword MENU).

    The keywords also go as buttons: WhatsApp shows them as a list to tap.
    """

    def name(self) -> Text:
        return "action_show_menu"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[Text, Any],
    ) -> List[EventType]:
        dispatcher.utter_message(
            text=menu_text(self.channel(tracker)), buttons=as_buttons(menu_choices())
        )
        return []


class ActionResetSlots(BansosAction):
    """Forget the task in progress (NIK, topic, programme).

    Rasa has no built-in action that clears chosen slots without restarting the
    whole conversation, and a restart would also drop the session start and any
    slot other parts of the assistant rely on.
    """

    def name(self) -> Text:
        return "action_reset_slots"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[Text, Any],
    ) -> List[EventType]:
        known_slots = (domain or {}).get("slots") or {}
        return [
            SlotSet(slot, None)
            for slot in TASK_SLOTS
            if slot in known_slots and tracker.get_slot(slot) is not None
        ]
