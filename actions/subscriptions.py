"""Opting out of and back into notices when said in words ("jangan kirim sms lagi").

The STOP/BERHENTI/MULAI keywords are handled by the core without Rasa; these actions
give the NLU intents the same effect through the same bot/ function.
"""
from __future__ import annotations

import asyncio
from typing import List, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import runtime
from actions.base import BansosAction
from bot.conversation.subscriptions import set_opted_out


class _ActionSubscription(BansosAction):
    opted_out: bool

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        reply = await asyncio.to_thread(
            set_opted_out, runtime.database(), tracker.sender_id, self.opted_out
        )
        dispatcher.utter_message(text=reply)
        return []


class ActionOptOut(_ActionSubscription):
    opted_out = True

    def name(self) -> Text:
        return "action_opt_out"


class ActionOptIn(_ActionSubscription):
    opted_out = False

    def name(self) -> Text:
        return "action_opt_in"
