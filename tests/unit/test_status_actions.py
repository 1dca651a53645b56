"""The status form and answer actions, run with real rasa_sdk trackers and dispatchers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date, datetime, timezone
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import runtime
from actions import status as status_actions
from actions.status import ActionAnswerStatus, ActionAskStatusFormNik, ValidateStatusForm
from bot.db import Database
from bot.registry.demo import DEMO_PERSONAS, seed_demo
from bot.conversation.models import Contact
from bot.registry.status import ASK_NIK, RETRY_NIK, StatusService

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)
NIK = {persona.key: persona.nik for persona in DEMO_PERSONAS}
DOMAIN: dict[str, Any] = {
    "forms": {"status_form": {"required_slots": ["nik"]}},
    "slots": {
        "nik": {"type": "text", "mappings": [{"type": "from_entity", "entity": "nik"}]},
        "status_topic": {
            "type": "categorical",
            "mappings": [{"type": "from_intent", "intent": "check_status", "value": "status"}],
        },
        "program": {"type": "text", "mappings": [{"type": "from_entity", "entity": "program"}]},
    },
}


@pytest.fixture(autouse=True)
def service(sqlite_db: Database) -> Iterator[StatusService]:
    seed_demo(sqlite_db, recipients=0, today=TODAY)
    with sqlite_db.session() as session:
        session.add_all(
            [
                Contact(address="+6281210000001", conversation_key="ksiti"),
                Contact(address="+6285255000005", conversation_key="ksumiati"),
                Contact(address="+6281399998888", conversation_key="kstranger"),
            ]
        )
    service = StatusService(sqlite_db, secret_key="test", clock=lambda: NOW)
    status_actions.status_service.override(service)
    yield service
    status_actions.status_service.override(None)


def make_tracker(
    sender: str,
    slots: dict[str, Any] | None = None,
    just_set: dict[str, Any] | None = None,
    channel: str = "sms",
    text: str = "",
) -> Tracker:
    """A tracker as the action server receives it; `just_set` are this turn's slot candidates."""
    values = {"nik": None, "status_topic": None, "program": None, "requested_slot": "nik"}
    values |= slots or {}
    values |= just_set or {}
    events: list[dict[str, Any]] = [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": text, "parse_data": {}, "metadata": {"channel": channel}},
    ]
    events += [
        {"event": "slot", "name": name, "value": value} for name, value in (just_set or {}).items()
    ]
    latest = {
        "text": text,
        "intent": {"name": "inform"},
        "entities": [],
        "metadata": {"channel": channel},
    }
    return Tracker(
        sender, values, latest, events, False, None, {"name": "status_form"}, "action_listen"
    )


def run(action: Any, tracker: Tracker) -> tuple[list[dict[str, Any]], list[str]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, DOMAIN))
    return events, [message["text"] for message in dispatcher.messages]


# --- validate_status_form --------------------------------------------------------------------


def test_form_asks_nothing_when_the_phone_names_one_household() -> None:
    events, texts = run(ValidateStatusForm(), make_tracker("ksiti"))

    assert events == [SlotSet("requested_slot", None)]
    assert texts == []


@pytest.mark.parametrize("sender", ["kstranger", "ksumiati", "never-seen"])
def test_form_keeps_asking_when_the_phone_does_not_decide(sender: str) -> None:
    events, texts = run(ValidateStatusForm(), make_tracker(sender))

    assert events == []
    assert texts == []


@pytest.mark.parametrize(
    "typed, value",
    [
        ("3201015503880003", "3201015503880003"),
        ("nik saya 3201 0155 0388 0003", "3201015503880003"),
        ("3201.0155.0388.0003", "3201015503880003"),
        (["3201015503880003", "3578013001650005"], "3201015503880003"),
    ],
)
def test_valid_nik_is_normalised(typed: Any, value: str) -> None:
    events, texts = run(ValidateStatusForm(), make_tracker("kstranger", just_set={"nik": typed}))

    assert events == [SlotSet("nik", value)]
    assert texts == []


@pytest.mark.parametrize(
    "sender, typed, reason",
    [
        ("kstranger", "123", "NIK harus 16 angka, Bapak/Ibu mengirim 3 angka."),
        (
            "kstranger",
            "nik saya 3201 0155 0388 00",
            "NIK harus 16 angka, Bapak/Ibu mengirim 14 angka.",
        ),
        ("kstranger", "siti", "NIK berisi huruf. NIK hanya terdiri dari 16 angka."),
        ("kstranger", "nik 3201O15503880003", "NIK berisi huruf. NIK hanya terdiri dari 16 angka."),
        ("kstranger", "3201013202900003", "Tanggal lahir pada NIK tidak valid."),
        ("kstranger", "2", "NIK harus 16 angka, Bapak/Ibu mengirim 1 angka."),
        ("ksumiati", "3", "NIK harus 16 angka, Bapak/Ibu mengirim 1 angka."),
        # One household on the phone, but a wrong NIK typed: ask again, do not answer for the phone.
        ("ksiti", "320101550388", "NIK harus 16 angka, Bapak/Ibu mengirim 12 angka."),
    ],
)
def test_invalid_nik_is_rejected_with_its_reason(sender: str, typed: str, reason: str) -> None:
    events, texts = run(ValidateStatusForm(), make_tracker(sender, just_set={"nik": typed}))

    assert events == [SlotSet("nik", None)]
    assert texts == [f"{reason} {RETRY_NIK}"]


@pytest.mark.parametrize("typed", ["1", "2"])
def test_household_number_is_accepted_on_a_shared_phone(typed: str) -> None:
    events, texts = run(ValidateStatusForm(), make_tracker("ksumiati", just_set={"nik": typed}))

    assert events == [SlotSet("nik", typed)]
    assert texts == []


# --- action_ask_status_form_nik --------------------------------------------------------------


def test_ask_lists_the_households_of_a_shared_phone() -> None:
    events, texts = run(ActionAskStatusFormNik(), make_tracker("ksumiati"))

    assert events == []
    assert texts[0].splitlines()[:3] == [
        "Nomor ini terdaftar untuk 2 keluarga:",
        "1. S******",
        "2. R********",
    ]


def test_ask_for_a_nik_otherwise() -> None:
    assert run(ActionAskStatusFormNik(), make_tracker("kstranger"))[1] == [ASK_NIK]


def test_ask_is_silent_right_after_a_rejected_nik() -> None:
    tracker = make_tracker("kstranger", just_set={"nik": None})

    assert run(ActionAskStatusFormNik(), tracker) == ([], [])


# --- action_answer_status --------------------------------------------------------------------

CLEARED = [SlotSet("nik", None), SlotSet("status_topic", None)]


def test_answer_for_the_registered_phone_and_slots_cleared() -> None:
    events, texts = run(
        ActionAnswerStatus(), make_tracker("ksiti", slots={"status_topic": "schedule"})
    )

    assert events == CLEARED
    assert texts[0].splitlines()[:3] == [
        "Jadwal bansos Siti Wulandari:",
        "PKH Tahap 4 2026 Rp975.000",
        "Jumat, 27 November 2026, KKS Bank BRI",
    ]


def test_answer_by_household_number() -> None:
    events, texts = run(
        ActionAnswerStatus(), make_tracker("ksumiati", slots={"nik": "2", "status_topic": "status"})
    )

    assert events == CLEARED
    assert texts[0].startswith("Bansos a.n. Rahmawati:")


def test_answer_to_a_stranger_is_masked() -> None:
    tracker = make_tracker("kstranger", slots={"nik": NIK["siti"], "status_topic": "history"})
    events, texts = run(ActionAnswerStatus(), tracker)

    assert events == CLEARED
    assert "S*** W********" in texts[0]
    assert "Rp" not in texts[0] and "Wulandari" not in texts[0]


def test_missing_topic_answers_the_status() -> None:
    assert run(ActionAnswerStatus(), make_tracker("ksiti"))[1][0].startswith(
        "Bansos a.n. Siti Wulandari:"
    )


def test_program_slot_narrows_and_is_cleared() -> None:
    tracker = make_tracker("ksiti", slots={"status_topic": "schedule", "program": "PKH"})
    events, texts = run(ActionAnswerStatus(), tracker)

    assert events == CLEARED + [SlotSet("program", None)]
    assert "BPNT" not in texts[0]


@pytest.mark.parametrize("channel, lines", [("sms", 1 + 5), ("whatsapp", 1 + 8)])
def test_history_length_follows_the_channel(channel: str, lines: int) -> None:
    tracker = make_tracker("ksiti", slots={"status_topic": "history"}, channel=channel)

    assert len(run(ActionAnswerStatus(), tracker)[1][0].splitlines()) == lines


# --- building the service -------------------------------------------------------------------


def test_service_is_built_lazily_from_the_settings(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_db.url)
    monkeypatch.setenv("SECRET_KEY", "from-env")
    status_actions.status_service.override(None)
    runtime.forget_built()
    status_actions.status_service.forget()
    try:
        built = status_actions.status_service()
        assert built.db.url == sqlite_db.url
        assert built is status_actions.status_service()
    finally:
        built.db.dispose()
        runtime.forget_built()
        status_actions.status_service.forget()
