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
from actions.status import (
    ActionAnswerStatus,
    ActionAskStatusFormNik,
    ActionAskStatusFormStatusName,
    ActionAskStatusFormStatusVillage,
    ActionAskStatusFormStatusVillageChoice,
    ValidateStatusForm,
)
from bot.db import Database
from bot.registry.demo import DEMO_PERSONAS, seed_demo
from tests.support.villages import RESIDENT, VILLAGE, add_sukamaju_villages
from bot.conversation.models import Contact
from bot.registry.status import (
    AREA_UNKNOWN,
    ASK_AREA,
    ASK_NAME,
    ASK_NIK,
    RETRY_AREA,
    ASK_VILLAGE,
    RETRY_NAME,
    RETRY_NIK,
    RETRY_VILLAGE,
    VILLAGE_UNKNOWN,
    StatusService,
)

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)
NIK = {persona.key: persona.nik for persona in DEMO_PERSONAS}
DOMAIN: dict[str, Any] = {
    "forms": {
        "status_form": {
            "required_slots": [
                "nik", "status_by_name", "status_name", "status_village", "status_village_choice",
            ]
        }
    },
    "slots": {
        "nik": {"type": "text", "mappings": [{"type": "from_entity", "entity": "nik"}]},
        "status_topic": {
            "type": "categorical",
            "mappings": [{"type": "from_intent", "intent": "check_status", "value": "status"}],
        },
        "program": {"type": "text", "mappings": [{"type": "from_entity", "entity": "program"}]},
        "status_by_name": {
            "type": "bool",
            "mappings": [{"type": "from_intent", "intent": "check_status_by_name", "value": True}],
        },
        **{
            slot: {"type": "text", "mappings": [{"type": "from_text"}]}
            for slot in ("status_name", "status_village", "status_village_choice")
        },
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

    assert events == [SlotSet("requested_slot", "nik")]
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

    assert events == [SlotSet("nik", value), SlotSet("requested_slot", None)]
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

    assert events == [SlotSet("nik", None), SlotSet("requested_slot", "nik")]
    assert texts == [f"{reason} {RETRY_NIK}"]


@pytest.mark.parametrize("typed", ["1", "2"])
def test_household_number_is_accepted_on_a_shared_phone(typed: str) -> None:
    events, texts = run(ValidateStatusForm(), make_tracker("ksumiati", just_set={"nik": typed}))

    assert events == [SlotSet("nik", typed), SlotSet("requested_slot", None)]
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


# --- without a NIK: name and village ---------------------------------------------------------

BY_NAME = {"status_by_name": True}
EUIS = {"status_by_name": True, "status_name": "Euis Komalasari", "status_village": "Sukamaju"}


def requested(events: list[dict[str, Any]]) -> Any:
    return next(e["value"] for e in events if e["name"] == "requested_slot")


def stranger(slots: dict[str, Any], just_set: dict[str, Any] | None = None) -> Tracker:
    """A phone registered to nobody, on the name path."""
    return make_tracker("kstranger", slots=slots, just_set=just_set)


def test_without_a_nik_the_form_asks_the_name_then_the_village() -> None:
    events, _ = run(ValidateStatusForm(), stranger(BY_NAME))
    assert requested(events) == "status_name"

    slots = BY_NAME | {"status_name": "Euis Komalasari", "requested_slot": "status_name"}
    events, _ = run(ValidateStatusForm(), stranger(slots))
    assert requested(events) == "status_village"


def test_a_shared_village_name_asks_which_village() -> None:
    tracker = stranger(EUIS | {"requested_slot": "status_village"})
    events, _ = run(ValidateStatusForm(), tracker)

    assert requested(events) == "status_village_choice"


def test_a_shared_village_just_sent_is_kept_and_its_number_asked() -> None:
    slots = BY_NAME | {"status_name": "Euis Komalasari", "requested_slot": "status_village"}
    tracker = stranger(slots, just_set={"status_village": "desa Sukamaju"})
    events, texts = run(ValidateStatusForm(), tracker)

    # Only the village is set this turn, so the question that follows is not silenced.
    assert [e for e in events if e["name"] != "requested_slot"] == [
        SlotSet("status_village", "desa Sukamaju")
    ]
    assert requested(events) == "status_village_choice" and texts == []


def test_a_village_of_its_own_needs_no_choice() -> None:
    slots = EUIS | {"status_village": "Batu Merah", "requested_slot": "status_village"}
    events, _ = run(ValidateStatusForm(), stranger(slots))

    assert requested(events) is None


def test_a_registered_phone_is_recognised_even_after_lupa_nik() -> None:
    events, texts = run(ValidateStatusForm(), make_tracker("ksiti", slots=BY_NAME))

    assert events == [SlotSet("requested_slot", None)] and texts == []


def test_a_name_sent_at_once_is_checked_and_the_village_asked() -> None:
    tracker = stranger(BY_NAME, just_set={"status_name": "  Euis   Komalasari "})
    events, texts = run(ValidateStatusForm(), tracker)

    assert SlotSet("status_name", "Euis Komalasari") in events and texts == []


@pytest.mark.parametrize(
    "typed, reason",
    [("Euis 2", "Nama tidak boleh berisi angka."), ("Ed", "Nama terlalu pendek.")],
)
def test_what_is_not_a_name_is_asked_again_with_its_reason(typed: str, reason: str) -> None:
    tracker = stranger(BY_NAME | {"requested_slot": "status_name"}, just_set={"status_name": typed})
    events, texts = run(ValidateStatusForm(), tracker)

    assert SlotSet("status_name", None) in events
    assert texts == [f"{reason} {RETRY_NAME}"]


def test_a_nik_sent_instead_of_a_name_is_checked_as_a_nik() -> None:
    just_set = {"status_name": NIK["siti"], "nik": NIK["siti"]}
    tracker = stranger(BY_NAME | {"requested_slot": "status_name"}, just_set=just_set)
    events, texts = run(ValidateStatusForm(), tracker)

    assert SlotSet("nik", NIK["siti"]) in events
    assert requested(events) is None and texts == []


def test_the_keyword_nama_again_asks_the_name_again() -> None:
    just_set = {"status_name": "/check_status_by_name"}
    tracker = stranger(BY_NAME | {"requested_slot": "status_name"}, just_set=just_set)
    events, texts = run(ValidateStatusForm(), tracker)

    assert SlotSet("status_name", None) in events and texts == [ASK_NAME]
    assert run(ActionAskStatusFormStatusName(), tracker) == ([], [])


def test_an_unknown_village_is_said_so_and_asked_again() -> None:
    slots = BY_NAME | {"status_name": "Euis Komalasari", "requested_slot": "status_village"}
    tracker = stranger(slots, just_set={"status_village": "Entah Berantah"})
    events, texts = run(ValidateStatusForm(), tracker)

    assert SlotSet("status_village", None) in events
    assert texts == [VILLAGE_UNKNOWN.format(village="Entah Berantah")]
    assert run(ActionAskStatusFormStatusVillage(), tracker) == ([], [])


def test_an_empty_village_gets_its_reason() -> None:
    slots = BY_NAME | {"status_name": "Euis Komalasari", "requested_slot": "status_village"}
    tracker = stranger(slots, just_set={"status_village": "desa"})

    texts = run(ValidateStatusForm(), tracker)[1]

    assert texts == [f"Nama desa/kelurahan belum terisi. {RETRY_VILLAGE}"]


@pytest.mark.parametrize("typed, accepted", [("2", "2"), ("2.", "2"), ("3", None), ("Bogor", None)])
def test_the_village_number(typed: str, accepted: str | None) -> None:
    slots = EUIS | {"requested_slot": "status_village_choice"}
    tracker = stranger(slots, just_set={"status_village_choice": typed})
    events, texts = run(ValidateStatusForm(), tracker)

    assert SlotSet("status_village_choice", accepted) in events
    assert texts == ([] if accepted else ["Balas angka 1 sampai 2, atau ketik BATAL."])


def test_the_questions_of_the_name_path() -> None:
    assert run(ActionAskStatusFormStatusName(), stranger(BY_NAME))[1] == [ASK_NAME]
    assert run(ActionAskStatusFormStatusVillage(), stranger(BY_NAME))[1] == [ASK_VILLAGE]
    choice = run(ActionAskStatusFormStatusVillageChoice(), stranger(EUIS))[1][0]
    assert choice.splitlines()[1:3] == [
        "1. Sukamaju, Kec. Baleendah, Kab. Bandung",
        "2. Sukamaju, Kec. Cibinong, Kab. Bogor",
    ]


def buttons(action: Any, tracker: Tracker) -> list[list[dict[str, Any]]]:
    """The buttons of each message the action sent (WhatsApp shows them as choices)."""
    dispatcher = CollectingDispatcher()
    asyncio.run(action.run(dispatcher, tracker, DOMAIN))
    return [message["buttons"] for message in dispatcher.messages]


def test_numbered_lists_go_out_as_choices() -> None:
    assert buttons(ActionAskStatusFormNik(), make_tracker("ksumiati")) == [
        [{"title": "S******", "payload": "1"}, {"title": "R********", "payload": "2"}]
    ]
    assert buttons(ActionAskStatusFormStatusVillageChoice(), stranger(EUIS)) == [[
        {"title": "Sukamaju, Kec. Baleendah, Kab. Bandung", "payload": "1"},
        {"title": "Sukamaju, Kec. Cibinong, Kab. Bogor", "payload": "2"},
    ]]
    assert buttons(ActionAskStatusFormNik(), make_tracker("kstranger")) == [[]]


ASEP = {"status_by_name": True, "status_name": RESIDENT, "status_village": VILLAGE}


def test_twelve_villages_of_one_name_are_narrowed_by_kecamatan_or_kabupaten(sqlite_db: Database) -> None:
    add_sukamaju_villages(sqlite_db)
    asking = ASEP | {"requested_slot": "status_village_choice"}
    assert run(ActionAskStatusFormStatusVillageChoice(), stranger(ASEP)) == (
        [], [ASK_AREA.format(count=12, village=VILLAGE)]
    )
    # A number is no answer to a list never shown.
    events, texts = run(ValidateStatusForm(), stranger(asking, just_set={"status_village_choice": "12"}))
    assert SlotSet("status_village_choice", None) in events
    assert texts == [AREA_UNKNOWN.format(village=VILLAGE, area="12")]
    events, texts = run(ValidateStatusForm(), stranger(asking, just_set={"status_village_choice": "Bogor" * 30}))
    assert SlotSet("status_village_choice", None) in events
    assert texts == [f"Nama kecamatan/kabupaten terlalu panjang. {RETRY_AREA}"]

    # Kota Bogor has two: they are listed, with their choices, and the number then decides.
    events, texts = run(ValidateStatusForm(), stranger(asking, just_set={"status_village_choice": "Kota Bogor"}))
    assert SlotSet("status_village", f"{VILLAGE}, Kota Bogor") in events
    assert SlotSet("status_village_choice", None) in events
    assert texts[0].splitlines()[1:3] == [
        "1. Sukamaju, Kec. Bogor Barat, Kota Bogor",
        "2. Sukamaju, Kec. Bogor Utara, Kota Bogor",
    ]
    narrowed = asking | {"status_village": f"{VILLAGE}, Kota Bogor"}
    events, texts = run(ValidateStatusForm(), stranger(narrowed, just_set={"status_village_choice": "2"}))
    assert SlotSet("status_village_choice", "2") in events and texts == []

    # The kecamatan names one village: nothing more is asked, and the answer is for it.
    events, texts = run(ValidateStatusForm(), stranger(asking, just_set={"status_village_choice": "kec. Cisarua"}))
    assert SlotSet("status_village", f"{VILLAGE}, kec. Cisarua") in events
    assert requested(events) is None and texts == []
    answer = run(ActionAnswerStatus(), stranger(ASEP | {"status_village": f"{VILLAGE}, kec. Cisarua", "status_village_choice": "1"}))[1][0]
    assert answer.startswith("Hasil cek Desa/Kel. Sukamaju, Kec. Cisarua, Kab. Bogor:")
    assert RESIDENT not in answer


def test_the_answer_by_name_is_public_only_and_every_slot_is_cleared() -> None:
    events, texts = run(ActionAnswerStatus(), stranger(EUIS | {"status_village_choice": "2"}))

    assert texts[0].splitlines()[1] == "E*** K*********:"
    assert "Rp" not in texts[0] and NIK["euis"] not in texts[0] and "Komalasari" not in texts[0]
    assert {e["name"] for e in events if e["value"] is None} >= {
        "status_by_name", "status_name", "status_village", "status_village_choice", "status_topic",
    }


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
