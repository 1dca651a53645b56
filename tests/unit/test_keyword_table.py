"""The one table of SMS keywords: the parser, both menus and the core read it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.conversation.keywords import KEYWORDS, Argument, keyword_payload, sms_menu, whatsapp_menu
from bot.rules.smstext import is_gsm7, segment_count

ROOT = Path(__file__).resolve().parents[2]
WORDS = [word for keyword in KEYWORDS for word in keyword.words]


def test_every_word_is_one_keyword_and_every_intent_is_in_the_domain() -> None:
    assert len(WORDS) == len(set(WORDS))
    domain = (ROOT / "domain.yml").read_text()
    intents = domain[domain.index("\nintents:") : domain.index("\nentities:")]
    assert {k.intent for k in KEYWORDS} <= set(re.findall(r"^  - (\w+)", intents, re.M))


@pytest.mark.parametrize("word", WORDS)
def test_every_word_alone_is_its_intent_in_any_case(word: str) -> None:
    intent = next(k.intent for k in KEYWORDS if word in k.words)
    assert keyword_payload(word.lower()) == keyword_payload(f" {word} ") == f"/{intent}"


def test_arguments_follow_the_table() -> None:
    assert keyword_payload("CEK 3201 0155 0388 0003") == '/check_status{"nik": "3201015503880003"}'
    assert keyword_payload("TIKET adu-20261123-k7qx") == '/check_ticket{"ticket_ref": "ADU-20261123-K7QX"}'
    assert keyword_payload("ADU#Siti#uang belum cair") == '/file_complaint{"report_text": "Siti#uang belum cair"}'
    assert keyword_payload("JADWAL besok kapan") is None, "a keyword that takes nothing, followed by text, is free text"
    assert all(k.argument in (Argument.NONE, Argument.NIK, Argument.TICKET, Argument.REPORT, Argument.NAME) for k in KEYWORDS)


def test_both_menus_list_every_keyword_a_citizen_types() -> None:
    for keyword in KEYWORDS:
        if keyword.sms_menu:
            assert keyword.words[0] in sms_menu() and keyword.words[0] in whatsapp_menu()
    assert is_gsm7(sms_menu()) and segment_count(sms_menu()) <= 2
    assert "\n\n" not in whatsapp_menu(), "a blank line splits a WhatsApp answer into bubbles"
