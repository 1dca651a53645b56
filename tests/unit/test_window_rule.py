"""The rule for messages the app sends on its own: WhatsApp free text inside the 24-hour
window, outside it an approved template or SMS, in the order each kind of message needs."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.channels.window import (
    HAND_BACK,
    KINDS,
    NOTICE,
    REPORT_STATUS,
    STAFF_REPLY,
    Addressee,
    Route,
    Way,
    after_failed_template,
    choose_route,
)
from bot.conversation.models import Channel

NOW = datetime(2026, 12, 2, 6, 0, tzinfo=timezone.utc)
MOBILE = "+6281234567890"
LANDLINE = "+62215550123"
SID = "HX" + "1" * 32


def whatsapp_user(silent_for: timedelta, address: str = MOBILE, is_phone: bool = True, opted_out: bool = False) -> Addressee:
    return Addressee(address, is_phone, opted_out, Channel.WHATSAPP, NOW - silent_for)


def test_inside_the_window_every_kind_goes_as_whatsapp_free_text() -> None:
    user = whatsapp_user(timedelta(hours=23, minutes=59))
    for kind in KINDS.values():
        assert choose_route(user, kind, SID, NOW) == Route(Way.FREE_TEXT, Channel.WHATSAPP)


def test_the_window_closes_at_24_hours() -> None:
    assert choose_route(whatsapp_user(timedelta(hours=24)), REPORT_STATUS, SID, NOW).way == Way.TEMPLATE


def test_a_whatsapp_user_who_never_wrote_on_whatsapp_is_outside_the_window() -> None:
    user = Addressee(MOBILE, True, False, Channel.WHATSAPP, None)
    assert choose_route(user, REPORT_STATUS, None, NOW) == Route(Way.SMS, Channel.SMS)


def test_outside_the_window_a_template_that_carries_the_message_comes_before_sms() -> None:
    user = whatsapp_user(timedelta(hours=25))
    assert choose_route(user, REPORT_STATUS, SID, NOW) == Route(Way.TEMPLATE, Channel.WHATSAPP, SID)
    assert choose_route(user, HAND_BACK, SID, NOW) == Route(Way.TEMPLATE, Channel.WHATSAPP, SID)


def test_without_a_configured_template_the_message_goes_by_sms() -> None:
    assert choose_route(whatsapp_user(timedelta(days=3)), REPORT_STATUS, None, NOW) == Route(Way.SMS, Channel.SMS)


def test_a_staff_reply_goes_by_sms_before_a_template_that_only_announces_it() -> None:
    user = whatsapp_user(timedelta(days=2))
    assert choose_route(user, STAFF_REPLY, SID, NOW) == Route(Way.SMS, Channel.SMS)
    assert choose_route(user, NOTICE, SID, NOW) == Route(Way.SMS, Channel.SMS)


def test_a_whatsapp_business_id_gets_the_announcing_template_and_the_text_waits() -> None:
    user = whatsapp_user(timedelta(days=2), address="wa-id-3f9a", is_phone=False)
    assert choose_route(user, STAFF_REPLY, SID, NOW) == Route(Way.TEMPLATE, Channel.WHATSAPP, SID, holds_text=True)


@pytest.mark.parametrize("address, is_phone", [("wa-id-3f9a", False), (LANDLINE, True)])
def test_no_sms_to_an_address_that_takes_none(address: str, is_phone: bool) -> None:
    user = whatsapp_user(timedelta(days=2), address=address, is_phone=is_phone)
    route = choose_route(user, REPORT_STATUS, None, NOW)
    assert route.way == Way.NONE and "SMS" in route.reason
    assert after_failed_template(user).way == Way.NONE


def test_nothing_goes_to_a_contact_who_sent_stop() -> None:
    user = whatsapp_user(timedelta(hours=1), opted_out=True)
    assert choose_route(user, REPORT_STATUS, SID, NOW).way == Way.NONE
    assert after_failed_template(user).way == Way.NONE
    sms_user = Addressee(MOBILE, True, True, Channel.SMS, None)
    assert "STOP" in choose_route(sms_user, STAFF_REPLY, SID, NOW).reason


def test_an_sms_user_gets_sms_whatever_the_window() -> None:
    user = Addressee(MOBILE, True, False, Channel.SMS, NOW - timedelta(days=9))
    assert choose_route(user, REPORT_STATUS, SID, NOW) == Route(Way.FREE_TEXT, Channel.SMS)


def test_a_failed_template_falls_back_to_sms_where_the_number_takes_it() -> None:
    assert after_failed_template(whatsapp_user(timedelta(days=2))) == Route(Way.SMS, Channel.SMS)


def test_template_texts_render_their_named_variables_and_nothing_else() -> None:
    text = REPORT_STATUS.render({"reference": "PGD-7K3M9Q", "kind": "pengaduan", "status": "sedang ditindaklanjuti petugas", "nik": "x"})
    assert text.startswith("Kabar laporan PGD-7K3M9Q: pengaduan Bapak/Ibu sedang ditindaklanjuti petugas.")
    assert "{{" not in text
    for kind in KINDS.values():
        assert set(kind.variables) == {part.split("}}")[0] for part in kind.approval_text.split("{{")[1:]}
        assert all(len(name) <= 16 and name.isalnum() for name in kind.variables), "Twilio's variable keys"
