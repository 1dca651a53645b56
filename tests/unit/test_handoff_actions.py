"""The handoff actions, run with real rasa_sdk trackers and dispatchers."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions import handoff as handoff_actions
from actions.handoff import NO_CONTACT_TEXT, ActionHandoff, ActionHandoffFallback, recent_intents
from bot.db import Database
from bot.handoff.service import Escalations
from bot.handoff.models import Handoff, HandoffReason
from bot.conversation.models import Contact


@pytest.fixture(autouse=True)
def service(sqlite_db: Database) -> Iterator[Escalations]:
    with sqlite_db.session() as session:
        session.add(Contact(address="+6281210000001", conversation_key="kwarga"))
    service = Escalations(sqlite_db)
    handoff_actions.escalations.override(service)
    yield service
    handoff_actions.escalations.override(None)


def user(intent: str, text: str = "...") -> dict[str, Any]:
    return {"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}, "metadata": {"channel": "sms"}}


def bot(name: str) -> list[dict[str, Any]]:
    return [{"event": "action", "name": name}, {"event": "bot", "text": "..."}]


LISTEN = {"event": "action", "name": "action_listen"}


def tracker(sender: str, events: list[dict[str, Any]]) -> Tracker:
    latest = next((e["parse_data"] | {"text": e["text"], "metadata": e["metadata"]} for e in reversed(events) if e["event"] == "user"), {})
    return Tracker(sender, {}, latest, events, False, None, {}, "action_listen")


def run(action: Any, tracker_: Tracker) -> list[dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    assert asyncio.run(action.run(dispatcher, tracker_, {})) == []
    return dispatcher.messages


def open_handoffs(db: Database) -> list[tuple[int, str]]:
    with db.session() as session:
        return list(session.execute(select(Handoff.contact_id, Handoff.reason)).tuples())


def test_request_human_escalates_and_says_when(sqlite_db: Database) -> None:
    messages = run(ActionHandoff(), tracker("kwarga", [LISTEN, user("request_human")]))
    assert "petugas" in messages[0]["text"]
    assert [reason for _, reason in open_handoffs(sqlite_db)] == [HandoffReason.REQUESTED]


def test_request_human_from_an_unknown_sender_points_to_the_call_centre(sqlite_db: Database) -> None:
    messages = run(ActionHandoff(), tracker("rasa-shell", [LISTEN, user("request_human")]))
    assert messages[0]["text"] == NO_CONTACT_TEXT
    assert open_handoffs(sqlite_db) == []


def test_first_fallback_adds_nothing_to_the_default_answer(sqlite_db: Database) -> None:
    events = [LISTEN, user("greet"), *bot("utter_greet"), LISTEN, user("nlu_fallback"), *bot("utter_default")]
    assert run(ActionHandoffFallback(), tracker("kwarga", events)) == []
    assert open_handoffs(sqlite_db) == []


def test_second_fallback_in_a_row_escalates(sqlite_db: Database) -> None:
    events = [LISTEN, user("nlu_fallback"), *bot("action_handoff_fallback"), LISTEN, user("nlu_fallback")]
    messages = run(ActionHandoffFallback(), tracker("kwarga", events))
    assert "memahami" in messages[0]["text"]
    assert [reason for _, reason in open_handoffs(sqlite_db)] == [HandoffReason.NOT_UNDERSTOOD]


@pytest.mark.parametrize(
    "events",
    [
        [user("nlu_fallback"), user("greet"), user("nlu_fallback")],
        [user("nlu_fallback"), {"event": "restart"}, user("nlu_fallback")],
        [user("nlu_fallback"), {"event": "session_started"}, user("nlu_fallback")],
        [user("nlu_fallback"), user("greet"), {"event": "user_utterance_reverted"}, user("greet"), user("nlu_fallback")],
    ],
    ids=["understood-between", "restart-between", "new-session", "reverted-then-understood"],
)
def test_fallbacks_that_are_not_in_a_row_do_not_escalate(sqlite_db: Database, events: list[dict[str, Any]]) -> None:
    run(ActionHandoffFallback(), tracker("kwarga", events))
    assert open_handoffs(sqlite_db) == []


def test_a_reverted_turn_does_not_hide_two_fallbacks() -> None:
    events = [user("nlu_fallback"), user("greet"), {"event": "user_utterance_reverted"}, user("nlu_fallback")]
    assert recent_intents(events) == ["nlu_fallback", "nlu_fallback"]
