"""WhatsApp buttons: the choices each reply offers, the Twilio contents that show them,
and the local fake Twilio refusing what Twilio's documented shapes and limits refuse."""
from __future__ import annotations

import json
from typing import Any

import pytest

from bot.channels.buttons import (
    LIST_PICKER,
    QUICK_REPLY,
    SHAPES,
    Shape,
    shape_for,
)
from bot.channels.twilio import parse_inbound
from bot.conversation.choices import Choice, Reply, as_buttons, choices_of, from_buttons
from bot.conversation.keywords import keyword_payload, menu_choices, sms_menu
from bot.reports.dialogue import CATEGORY, CONFIRM, PROPOSED_FOR, Turn, question, question_choices
from bot.reports.models import CATEGORIES, ReportKind
from tools.fake_twilio import FakeTwilioApi
from tools.fake_twilio_content import check_types
from tests.support.twilio import whatsapp_form

ACCOUNT = "/2010-04-01/Accounts/AC" + "0" * 32 + "/Messages.json"


def _turn(kind: str, **values: Any) -> Turn:
    return Turn(kind, True, dict(values))


# ---- the choices each reply offers -------------------------------------------------


def test_every_menu_choice_sends_a_keyword_the_webhook_honours() -> None:
    choices = menu_choices()
    assert [c.payload for c in choices] == ["CEK", "JADWAL", "RIWAYAT", "USUL", "SANGGAH", "ADU", "TIKET", "PETUGAS"]
    assert all(keyword_payload(c.payload) for c in choices)
    # STOP is typed, never tapped by mistake; the SMS menu still lists it.
    assert "STOP" not in {c.payload for c in choices} and "STOP/MULAI" in sms_menu()


@pytest.mark.parametrize("kind", [ReportKind.USUL, ReportKind.SANGGAH, ReportKind.PENGADUAN])
def test_category_buttons_send_the_numbers_the_question_lists(kind: str) -> None:
    turn = _turn(kind)
    text = question(turn, CATEGORY)
    choices = question_choices(turn, CATEGORY)
    assert len(choices) == len(CATEGORIES[kind])
    for choice in choices:
        # The question's numbered line for this choice, exactly as SMS shows it.
        assert f"{choice.payload}. {choice.title}" in text


def test_confirmation_offers_ya_ubah_batal_as_typed() -> None:
    turn = _turn(ReportKind.PENGADUAN)
    assert [c.payload for c in question_choices(turn, CONFIRM)] == ["YA", "UBAH", "BATAL"]
    assert [c.payload for c in question_choices(turn, PROPOSED_FOR)] == ["1", "2"]


def test_choices_travel_as_rasa_buttons_and_back() -> None:
    choices = [Choice("Ya, kirim", "YA"), Choice("CEK", "CEK", "Cek status kepesertaan bansos")]
    assert from_buttons(as_buttons(choices)) == tuple(choices)
    assert from_buttons([{"title": "no payload"}, "junk", {"title": "Ok", "payload": "1"}]) == (Choice("Ok", "1"),)
    assert from_buttons(None) == ()


def test_a_reply_is_its_text_and_offers_its_choices() -> None:
    reply = Reply("Balas YA", [Choice("Ya", "YA")])
    assert reply == "Balas YA" and choices_of(reply) == (Choice("Ya", "YA"),)
    assert choices_of("plain text") == ()


# ---- which content shows them -----------------------------------------------------


def test_three_short_choices_are_buttons_more_are_a_list() -> None:
    body = "Ringkasan laporan. Balas YA, UBAH atau BATAL."
    assert shape_for(body, [Choice("Ya", "YA"), Choice("Ubah", "UBAH"), Choice("Batal", "BATAL")]) == Shape(QUICK_REPLY, 3)
    four = [Choice(f"Pilihan {n}", str(n)) for n in range(1, 5)]
    assert shape_for(body, four) == Shape(LIST_PICKER, 4)
    # A title WhatsApp would cut (over 20 characters) goes to a list, where it fits.
    assert shape_for(body, [Choice("Untuk keluarga saya sendiri", "1"), Choice("Lain", "2")]) == Shape(LIST_PICKER, 2)


@pytest.mark.parametrize(
    "body, choices",
    [
        ("Pilih", []),
        ("Pilih", [Choice(f"P{n}", str(n)) for n in range(11)]),
        ("x" * 1025, [Choice("Ya", "YA")]),
        ("Pilih", [Choice("Ya", "YA"), Choice("Iya", "YA")]),
        ("Pilih", [Choice("Ya", "Y" * 201)]),
    ],
    ids=["none", "eleven", "body-too-long", "same-payload-twice", "payload-too-long"],
)
def test_choices_that_cannot_be_tapped_go_as_text(body: str, choices: list[Choice]) -> None:
    assert shape_for(body, choices) is None


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.friendly_name)
def test_every_content_we_create_has_a_shape_twilio_accepts(shape: Shape) -> None:
    definition = shape.definition()
    check_types(definition["types"])
    check_types(_filled(definition["types"], definition["variables"]), rendered=True)


def test_list_items_fit_and_descriptions_keep_the_whole_label() -> None:
    label = "KKS atau PIN dipegang orang lain"  # 32 characters: more than a list item shows
    choices = [Choice(label, "3")] + [Choice(f"Pilihan {n}", str(n)) for n in (1, 2, 4)]
    shape = shape_for("Apa jenis aduan Bapak/Ibu?", choices)
    assert shape == Shape(LIST_PICKER, 4)
    variables = shape.variables("Apa jenis aduan Bapak/Ibu?", choices)
    assert variables["1"] == "Apa jenis aduan Bapak/Ibu?"
    assert len(variables["2"]) <= 24 and variables["3"] == "3" and variables["4"] == label
    check_types(_filled(shape.definition()["types"], variables), rendered=True)


def _filled(types: dict[str, Any], variables: dict[str, str]) -> dict[str, Any]:
    text = json.dumps(types)
    for name, value in variables.items():
        text = text.replace("{{%s}}" % name, json.dumps(value)[1:-1])
    return json.loads(text)


# ---- the fake refuses what Twilio refuses ----------------------------------------


def _create(fake: FakeTwilioApi, types: dict[str, Any]) -> tuple[int, Any]:
    body = {"friendly_name": "t", "language": "id", "variables": {}, "types": types}
    return fake.respond("POST", "/v1/Content", body)


@pytest.mark.parametrize(
    "types",
    [
        {"twilio/quick-reply": {"body": "Pilih", "actions": [{"title": f"B{n}", "id": str(n)} for n in range(11)]}},
        {"twilio/quick-reply": {"body": "Pilih", "actions": []}},
        {"twilio/quick-reply": {"body": "x" * 1025, "actions": [{"title": "Ya", "id": "YA"}]}},
        {"twilio/list-picker": {"body": "Pilih", "items": [{"item": "A", "id": "1", "description": "a"}]}},
        {"twilio/list-picker": {"body": "Pilih", "button": "Pilih", "items": [{"item": "A" * 25, "id": "1", "description": "a"}]}},
        {"twilio/list-picker": {"body": "Pilih", "button": "Pilih", "items": [{"item": "A", "id": "1"}]}},
        {"twilio/list-picker": {"body": "Pilih", "button": "Pilih", "items": [{"item": "A", "id": "1" * 201, "description": "a"}]}},
        {"twilio/text": None},
    ],
    ids=["eleven-buttons", "no-buttons", "long-body", "list-without-button", "long-item", "no-description",
         "long-id", "no-type"],
)
def test_fake_refuses_contents_twilio_refuses(types: dict[str, Any]) -> None:
    fake = FakeTwilioApi()
    status, answer = _create(fake, types)
    assert status == 400 and answer["code"] == 21656
    assert fake.content.contents == {}


def test_fake_checks_a_content_message_as_the_citizen_would_see_it() -> None:
    fake = FakeTwilioApi(strict_content=True)
    four = Shape(QUICK_REPLY, 3).definition()
    four["types"][QUICK_REPLY]["actions"].append({"title": "{{8}}", "id": "{{9}}"})
    four["variables"].update({"8": "Empat", "9": "4"})
    status, created = fake.respond("POST", "/v1/Content", four)
    assert status == 201
    form = {"To": "whatsapp:+6281200000001", "From": "whatsapp:+6281100000000", "ContentSid": created["sid"]}
    # Four buttons in a session message without approval: Twilio shows three at most.
    status, answer = fake.respond("POST", ACCOUNT, {**form, "ContentVariables": "{}"})
    assert status == 400 and "at most 3" in answer["message"]
    # An unknown (or deleted) content: Twilio's 21655, "The ContentSid is Invalid".
    status, answer = fake.respond("POST", ACCOUNT, {**form, "ContentSid": "HX" + "1" * 32})
    assert status == 400 and answer["code"] == 21655
    assert fake.sent == []


def test_fake_shows_a_content_message_with_its_body() -> None:
    fake = FakeTwilioApi()
    status, created = fake.respond("POST", "/v1/Content", Shape(QUICK_REPLY, 1).definition())
    variables = json.dumps({"1": "Kirim laporan?", "2": "Ya", "3": "YA"})
    status, sent = fake.respond(
        "POST", ACCOUNT, {"To": "whatsapp:+6281200000001", "ContentSid": created["sid"], "ContentVariables": variables}
    )
    assert status == 201 and sent["body"] == "Kirim laporan?"
    status, listed = fake.respond("GET", "/v1/Content", None)
    assert [c["friendly_name"] for c in listed["contents"]] == ["bansos_quick_reply_1"]


# ---- a tap arrives as the typed answer -------------------------------------------


@pytest.mark.parametrize(
    "extra, body",
    [
        ({"ButtonPayload": "YA", "ButtonText": "Ya, kirim"}, "YA"),
        ({"ListId": "3", "ListTitle": "Pengaduan"}, "3"),
        ({}, "Ya, kirim"),
    ],
    ids=["quick-reply", "list-item", "typed"],
)
def test_a_tap_is_read_as_its_payload(extra: dict[str, str], body: str) -> None:
    form = {**whatsapp_form("+6281200000001", "Ya, kirim"), **extra}
    assert parse_inbound(form).body == body
