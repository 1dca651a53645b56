"""The benchmarks' own parts: the floor app and the stand-ins' kept-alive connections.

`make bench` measures the app against them; a floor that stopped checking signatures,
or a stand-in that closed connections again, would move every figure in the README.
"""
from __future__ import annotations

import http.client
import os

import pytest

from scripts.bench_floor import create_app
from tests.support.twilio import TEST_AUTH_TOKEN, TwilioSigner, sms_form
from tools.fake_rasa import FakeRasa
from tools.http_stub import RawReply, StubServer


def test_the_floor_answers_a_signed_webhook_with_rasas_text_and_refuses_a_bad_signature(
    rasa: FakeRasa, signer: TwilioSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"ENV_FILE": os.devnull, "RASA_URL": rasa.url, "RASA_URLS": "", "PUBLIC_BASE_URL": "",
                        "TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN}.items():
        monkeypatch.setenv(name, value)
    client = create_app().test_client()
    form = sms_form("+6281234567890", "halo")

    answered = signer.post(client, "/webhooks/twilio/messages", form)
    forged = client.post("/webhooks/twilio/messages", data=form, headers={"X-Twilio-Signature": "forged"})

    assert answered.status_code == 200
    assert "Halo, ada yang bisa dibantu?" in answered.get_data(as_text=True)
    assert [turn["message"] for turn in rasa.received] == ["halo"], "the floor asks Rasa once per message"
    assert forged.status_code == 403


@pytest.mark.parametrize("keep_alive", [True, False])
def test_a_stub_keeps_its_connection_open_only_when_asked(keep_alive: bool) -> None:
    with StubServer(lambda method, path, body: (200, {"ok": path}), keep_alive=keep_alive) as server:
        host, port = server.server.server_address[:2]
        connection = http.client.HTTPConnection(host, port, timeout=5)
        connection.request("GET", "/first")
        first = connection.getresponse()
        assert first.read() == b'{"ok": "/first"}'
        assert first.will_close is not keep_alive
        if keep_alive:
            connection.request("GET", "/second")
            assert connection.getresponse().read() == b'{"ok": "/second"}'
            assert len(server.requests) == 2, "both requests came on the one connection"
        connection.close()


def test_a_kept_alive_stub_still_ends_a_body_of_unknown_length_by_closing() -> None:
    with StubServer(lambda method, path, body: (200, RawReply(b"file", send_length=False)), keep_alive=True) as server:
        host, port = server.server.server_address[:2]
        connection = http.client.HTTPConnection(host, port, timeout=5)
        connection.request("GET", "/media")
        response = connection.getresponse()
        assert response.read() == b"file"
        connection.close()
