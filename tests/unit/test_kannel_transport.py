"""KannelTransport against a stand-in for smsbox's sendsms interface.

The real gateway is in tests/e2e/test_kannel.py; here Kannel's answers (accepted,
queued, refused, down, silent) are produced on demand.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.config import Settings
from bot.channels.delivery import FailureKind, classify_failure
from bot.channels.kannel import DLR_MASK, UNREACHABLE_ERROR, KannelTransport
from bot.channels.outbox import NETWORK_ERROR, ProviderUnreachable, Template
from bot.conversation.models import MessageStatus
from bot.rules.smstext import segment_count
from tools.http_stub import StubServer

TO = "+6281234567890"
SECRET = "kannel-webhook-secret_01"


class FakeSendsms:
    """Answers like smsbox's /cgi-bin/sendsms; `answer` and `delay` change its mood."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.answer: tuple[int, Any] = (202, "0: Accepted for delivery")
        self.delay = 0.0
        self.calls: list[dict[str, str]] = []

    def respond(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.calls.append({k: v[0] for k, v in parse_qs(urlsplit(path).query).items()})
        time.sleep(self.delay)
        return self.answer


@pytest.fixture(scope="module")
def sendsms_server() -> Iterator[tuple[FakeSendsms, str]]:
    fake = FakeSendsms()
    with StubServer(fake.respond) as server:
        yield fake, f"{server.url}/cgi-bin/sendsms"


@pytest.fixture
def sendsms(sendsms_server: tuple[FakeSendsms, str]) -> tuple[FakeSendsms, str]:
    """The module's stand-in, in a good mood and with no calls yet."""
    fake, url = sendsms_server
    fake.reset()
    return fake, url


def settings(url: str, **overrides: Any) -> Settings:
    base = Settings(
        kannel_sendsms_url=url,
        kannel_username="bansos",
        kannel_password="sendsms-pw",
        kannel_sms_from="99171",
        kannel_callback_url="http://10.0.0.5:8000",
        kannel_webhook_secret=SECRET,
        kannel_http_timeout=1.0,
    )
    return base.with_overrides(overrides)


def test_accepted_message_is_queued_under_our_own_reference(sendsms: tuple[FakeSendsms, str]) -> None:
    fake, url = sendsms
    result = KannelTransport(settings(url)).send(TO, "Bantuan PKH cair 12 Mei. Balas MENU", "sms")
    assert (result.provider, result.status, result.error_code) == ("kannel", MessageStatus.QUEUED, None)
    assert result.sid and result.sid.startswith("K") and len(result.sid) <= 64
    [call] = fake.calls
    assert call["username"] == "bansos" and call["password"] == "sendsms-pw"
    assert (call["to"], call["from"], call["text"]) == (TO, "99171", "Bantuan PKH cair 12 Mei. Balas MENU")
    assert (call["coding"], call["charset"], call["dlr-mask"]) == ("0", "UTF-8", str(DLR_MASK))
    assert call["dlr-url"] == (
        f"http://kannel:{SECRET}@10.0.0.5:8000/webhooks/kannel/dlr?ref={result.sid}&type=%d&reply=%A"
    )
    assert "smsc" not in call


def test_every_message_gets_a_new_reference(sendsms: tuple[FakeSendsms, str]) -> None:
    transport = KannelTransport(settings(sendsms[1]))
    assert transport.send(TO, "satu", "sms").sid != transport.send(TO, "satu", "sms").sid


@pytest.mark.parametrize(
    "text, coding",
    [
        ("Jadwal cair: 12 Mei, BRI", "0"),
        ("Harga €5 [diskon]", "0"),
        ("Baik Bu, kami cek dulu 🙏", "2"),
        ("Nama: Siti Nur’aini", "2"),
    ],
)
def test_gsm7_unless_the_text_needs_ucs2(sendsms: tuple[FakeSendsms, str], text: str, coding: str) -> None:
    fake, url = sendsms
    KannelTransport(settings(url)).send(TO, text, "sms")
    assert (fake.calls[0]["text"], fake.calls[0]["coding"], fake.calls[0]["charset"]) == (text, coding, "UTF-8")


@pytest.mark.parametrize("text", ["kata " * 200, "kata 🙏 " * 60], ids=["GSM-7", "UCS-2"])
def test_long_text_is_shortened_to_three_segments_before_kannel_drops_the_rest(
    sendsms: tuple[FakeSendsms, str], text: str
) -> None:
    fake, url = sendsms
    KannelTransport(settings(url)).send(TO, text, "sms")
    sent = fake.calls[0]["text"]
    assert segment_count(sent) == 3 and sent.endswith("...")
    assert text.startswith(sent[:-3].rstrip())


def test_sender_and_smsc_are_optional_configuration(sendsms: tuple[FakeSendsms, str]) -> None:
    fake, url = sendsms
    KannelTransport(settings(url, kannel_sms_from="", kannel_smsc="aggregator-1")).send(TO, "halo", "sms")
    assert "from" not in fake.calls[0] and fake.calls[0]["smsc"] == "aggregator-1"


def test_a_template_changes_nothing_for_sms(sendsms: tuple[FakeSendsms, str]) -> None:
    fake, url = sendsms
    KannelTransport(settings(url)).send(TO, "Bantuan cair", "sms", Template("HX123", {"1": "Siti"}))
    assert fake.calls[0]["text"] == "Bantuan cair"


@pytest.mark.parametrize(
    "answer, error_code, kind",
    [
        ((403, "Authorization failed for sendsms"), "403", FailureKind.PERMANENT),
        ((400, "Missing receiver number"), "400", FailureKind.PERMANENT),
        ((503, "Temporal failure, try again later."), "503", FailureKind.TRANSIENT),
    ],
)
def test_refusal_is_a_failure_with_its_meaning(
    sendsms: tuple[FakeSendsms, str], answer: tuple[int, str], error_code: str, kind: str
) -> None:
    fake, url = sendsms
    fake.answer = answer
    result = KannelTransport(settings(url)).send(TO, "halo", "sms")
    assert (result.sid, result.status, result.error_code) == (None, MessageStatus.FAILED, error_code)
    assert classify_failure(result.error_code, result.http_status).kind == kind


def test_queued_for_later_while_no_smsc_is_connected_is_still_accepted(sendsms: tuple[FakeSendsms, str]) -> None:
    fake, url = sendsms
    fake.answer = (202, "3: Queued for later delivery")
    assert KannelTransport(settings(url)).send(TO, "halo", "sms").status == MessageStatus.QUEUED


def test_kannel_down_means_never_sent_so_retrying_is_safe() -> None:
    result = KannelTransport(settings("http://127.0.0.1:9/cgi-bin/sendsms")).send(TO, "halo", "sms")
    assert (result.status, result.error_code) == (MessageStatus.FAILED, UNREACHABLE_ERROR)
    assert classify_failure(result.error_code, result.http_status).kind == FailureKind.TRANSIENT


def test_no_answer_means_it_may_have_left(sendsms: tuple[FakeSendsms, str]) -> None:
    fake, url = sendsms
    fake.delay = 1.5
    result = KannelTransport(settings(url, kannel_http_timeout=0.3)).send(TO, "halo", "sms")
    assert (result.status, result.error_code) == (MessageStatus.FAILED, NETWORK_ERROR)
    assert classify_failure(result.error_code, result.http_status).kind == FailureKind.UNKNOWN


def test_kannel_cannot_be_asked_what_it_sent(sendsms: tuple[FakeSendsms, str]) -> None:
    with pytest.raises(ProviderUnreachable):
        KannelTransport(settings(sendsms[1])).sent_to(TO, "sms", datetime.now(timezone.utc))


def test_whatsapp_is_not_for_kannel(sendsms: tuple[FakeSendsms, str]) -> None:
    with pytest.raises(ValueError, match="SMS only"):
        KannelTransport(settings(sendsms[1])).send(TO, "halo", "whatsapp")
    assert sendsms[0].calls == []


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"kannel_username": ""}, "KANNEL_USERNAME"),
        ({"kannel_password": ""}, "KANNEL_PASSWORD"),
        ({"kannel_webhook_secret": ""}, "KANNEL_WEBHOOK_SECRET"),
        ({"kannel_webhook_secret": "has%25percent"}, "URL-safe"),
        ({"kannel_webhook_secret": "user:pass@host"}, "URL-safe"),
    ],
)
def test_incomplete_configuration_fails_at_start_up(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KannelTransport(settings("http://127.0.0.1:13013/cgi-bin/sendsms", **overrides))
