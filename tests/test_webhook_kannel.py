"""The Kannel endpoints from Kannel's point of view: every contract case and bad input.

Requests are built the way Kannel 1.4.5's smsbox sends them (the query strings in the
table were captured from the real gateway): `get-url` with the text URL-encoded in the
query (%b, raw bytes: UTF-16BE for UCS-2), `post-url` with the text as the body, the
secret as HTTP Basic userinfo. Rasa is the scripted stand-in; tests/e2e/test_kannel.py
runs the same path through a real bearerbox and smsbox.
"""
from __future__ import annotations

import base64
import itertools
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app import create_app
from bot.conversation import replies
from bot.conversation.inbound import InboundResult
from bot.db import Database
from bot.conversation.models import Contact, Direction, Message, MessageStatus
from bot.rules.smstext import is_gsm7, segment_count
from tools.fake_rasa import FakeRasa
from tests.support.twilio import TwilioSigner, whatsapp_form

INBOUND = "/webhooks/kannel/sms"
DLR = "/webhooks/kannel/dlr"
SECRET = "kannel-webhook-test-secret_0123"
PHONE = "+6281234567890"
GREETING = "Halo, ada yang bisa dibantu?"
_refs = itertools.count(1)


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


KANNEL_AUTH = basic("kannel", SECRET)


def call(
    client: FlaskClient,
    path: str,
    query: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
    remote: str = "127.0.0.1",
) -> Any:
    """One request as Kannel makes it: the query string is sent exactly as given."""
    return client.open(
        f"{path}?{query}",
        method=method,
        data=body,
        content_type=content_type,
        headers=KANNEL_AUTH if headers is None else headers,
        environ_base={"REMOTE_ADDR": remote},
    )


def new_id() -> str:
    return str(uuid.uuid4())


def count(db: Database, *where: Any) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Message).where(*where)) or 0


def stored(db: Database, message_id: str) -> Message:
    with db.session() as session:
        return session.scalars(
            select(Message).where(Message.provider == "kannel", Message.provider_sid == message_id)
        ).one()


@pytest.fixture
def kannel_config(app_config: dict[str, Any], rasa: FakeRasa) -> dict[str, Any]:
    return {**app_config, "rasa_url": rasa.url, "kannel_webhook_secret": SECRET}  # type: ignore[attr-defined]


@pytest.fixture
def app(kannel_config: dict[str, Any]) -> Flask:
    return create_app(kannel_config)


# (case, method, query without id, body, content type, text stored)
INBOUND_CASES = [
    (
        "get-url, 7-bit text keeps its spacing",
        "GET", "from=%2B6281234567890&to=99171&text=halo++apa&coding=0&charset=UTF-8",
        None, None, "halo  apa",
    ),
    (
        "get-url, UCS-2 text with an emoji and a newline",
        "GET", "from=%2B6281234567890&to=99171&text=%00h%00a%00l%00o%00+%D8%3D%DEO%00%0A%00x&coding=2&charset=UTF-16BE",
        None, None, "halo 🙏\nx",
    ),
    (
        "get-url, UTF-8 after smsbox's mo-recode",
        "GET", "from=6281234567890&to=99171&text=Matur+nuwun+%F0%9F%99%8F&coding=0&charset=UTF-8",
        None, None, "Matur nuwun 🙏",
    ),
    (
        "get-url, ISO-8859-1 charset",
        "GET", "from=6281234567890&to=99171&text=Caf%E9+Bu+Siti&coding=0&charset=ISO-8859-1",
        None, None, "Café Bu Siti",
    ),
    (
        "post-url, UCS-2 body",
        "POST", "from=6281234567890&to=99171&coding=2&charset=UTF-16BE",
        "Terima kasih 🙏 Pak".encode("utf-16-be"), 'text/plain; charset="UTF-16BE"', "Terima kasih 🙏 Pak",
    ),
    (
        "post-url, a whole complaint in one 7-bit SMS",
        "POST", "from=081234567890&to=99171&coding=0&charset=UTF-8",
        b"Budi Santoso\n3201014501900003\nJl. Mawar 5 RT 02\nUang PKH tidak diterima", 'text/plain; charset="UTF-8"',
        "Budi Santoso\n3201014501900003\nJl. Mawar 5 RT 02\nUang PKH tidak diterima",
    ),
    (
        "get-url, unknown charset falls back to UTF-8",
        "GET", "from=6281234567890&to=99171&text=halo&coding=0&charset=X-NOPE",
        None, None, "halo",
    ),
]


@pytest.mark.parametrize(
    "case, method, query, body, content_type, text", INBOUND_CASES, ids=[c[0] for c in INBOUND_CASES]
)
def test_sms_from_kannel_is_stored_decoded_and_answered_in_the_response(
    client: FlaskClient, sqlite_db: Database, rasa: FakeRasa,
    case: str, method: str, query: str, body: bytes | None, content_type: str | None, text: str,
) -> None:
    message_id = new_id()
    response = call(client, INBOUND, f"id={message_id}&{query}", method=method, body=body, content_type=content_type)
    assert response.status_code == 200, response.data
    assert response.content_type == "text/plain; charset=utf-8"
    assert response.get_data(as_text=True) == GREETING
    inbound = stored(sqlite_db, message_id)
    assert (inbound.direction, inbound.channel, inbound.body) == (Direction.INBOUND, "sms", text)
    assert inbound.status == MessageStatus.ANSWERED
    assert count(sqlite_db, Message.in_reply_to_id == inbound.id) == 1
    assert rasa.received[0]["metadata"]["channel"] == "sms"
    with sqlite_db.session() as session:
        assert session.scalars(select(Contact.address)).all() == [PHONE]


def test_binary_sms_is_kept_but_not_read_as_text(client: FlaskClient, sqlite_db: Database, rasa: FakeRasa) -> None:
    message_id = new_id()
    query = f"id={message_id}&from=6281234567890&to=99171&text=%06%05%04%15%81%00%00&coding=1&charset="
    response = call(client, INBOUND, query)
    assert response.get_data(as_text=True) == replies.EMPTY_MESSAGE
    assert stored(sqlite_db, message_id).body == ""
    assert rasa.received == []


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("from=%2B6281234567890&text=halo&coding=0", id="no id"),
        pytest.param("id=&from=%2B6281234567890&text=halo&coding=0", id="empty id"),
        pytest.param(f"id={new_id()}&text=halo&coding=0", id="no sender"),
        pytest.param(f"id={'x' * 65}&from=%2B6281234567890&text=halo", id="id too long"),
    ],
)
def test_missing_id_or_sender_is_a_bad_request(client: FlaskClient, sqlite_db: Database, query: str) -> None:
    assert call(client, INBOUND, query).status_code == 400
    assert count(sqlite_db) == 0


@pytest.mark.parametrize(
    "headers, remote",
    [
        pytest.param({}, "127.0.0.1", id="no credentials"),
        pytest.param(basic("kannel", "wrong-secret"), "127.0.0.1", id="wrong secret"),
        pytest.param(basic("kannel", SECRET[:-1]), "127.0.0.1", id="secret prefix"),
        pytest.param(basic("admin", SECRET), "127.0.0.1", id="wrong user"),
        pytest.param(basic("kannel", SECRET + "é"), "127.0.0.1", id="non-ASCII password"),
        pytest.param({"Authorization": f"Bearer {SECRET}"}, "127.0.0.1", id="bearer scheme"),
        pytest.param(KANNEL_AUTH, "203.0.113.7", id="address not allowed"),
        pytest.param(KANNEL_AUTH, "127.0.0.2", id="loopback neighbour not allowed"),
    ],
)
def test_unauthenticated_or_foreign_caller_is_refused_and_nothing_stored(
    client: FlaskClient, sqlite_db: Database, rasa: FakeRasa, headers: dict[str, str], remote: str
) -> None:
    query = f"id={new_id()}&from=%2B6281234567890&text=halo&coding=0&charset=UTF-8"
    assert call(client, INBOUND, query, headers=headers, remote=remote).status_code == 403
    assert call(client, DLR, "ref=K1&type=1", headers=headers, remote=remote).status_code == 403
    assert count(sqlite_db) == 0
    assert rasa.received == []


def test_without_a_secret_every_request_is_refused(kannel_config: dict[str, Any], sqlite_db: Database) -> None:
    client = create_app({**kannel_config, "kannel_webhook_secret": ""}).test_client()
    for headers in (KANNEL_AUTH, basic("kannel", "")):
        query = f"id={new_id()}&from=%2B6281234567890&text=halo"
        assert call(client, INBOUND, query, headers=headers).status_code == 403
    assert count(sqlite_db) == 0


@pytest.mark.parametrize("remote", ["10.20.0.5", "::1"])
def test_allow_list_takes_networks_and_ipv6(kannel_config: dict[str, Any], remote: str) -> None:
    client = create_app({**kannel_config, "kannel_allowed_ips": ("10.20.0.0/24", "::1")}).test_client()
    query = f"id={new_id()}&from=%2B6281234567890&text=halo&coding=0"
    assert call(client, INBOUND, query, remote=remote).status_code == 200


@pytest.mark.parametrize(
    "peer, proxy_headers, status",
    [
        pytest.param("203.0.113.7", {"X-Forwarded-For": "127.0.0.1"}, 403, id="forged allowed address from outside"),
        pytest.param("127.0.0.1", {"X-Forwarded-For": "203.0.113.7"}, 403, id="through a proxy on the same machine"),
        pytest.param("127.0.0.1", {"Forwarded": "for=203.0.113.7"}, 403, id="standard Forwarded header"),
        pytest.param("127.0.0.1", {}, 200, id="Kannel itself, directly"),
    ],
)
def test_kannel_is_judged_by_the_socket_peer_and_refused_through_a_proxy(
    kannel_config: dict[str, Any], sqlite_db: Database, peer: str, proxy_headers: dict[str, str], status: int
) -> None:
    client = create_app({**kannel_config, "trusted_proxy_hops": 1}).test_client()
    query = f"id={new_id()}&from=%2B6281234567890&text=halo&coding=0"
    headers = {**KANNEL_AUTH, **proxy_headers}
    assert call(client, INBOUND, query, headers=headers, remote=peer).status_code == status
    assert call(client, DLR, "ref=K-none&type=1", headers=headers, remote=peer).status_code == (
        403 if status == 403 else 404
    )
    if status == 403:
        assert count(sqlite_db) == 0


def test_replayed_message_id_gets_the_same_reply_and_is_processed_once(
    client: FlaskClient, sqlite_db: Database, rasa: FakeRasa
) -> None:
    query = f"id={new_id()}&from=%2B6281234567890&text=halo&coding=0&charset=UTF-8"
    first = call(client, INBOUND, query).get_data(as_text=True)
    rasa.replies = [{"text": "jawaban lain"}]
    second = call(client, INBOUND, query).get_data(as_text=True)
    assert first == second == GREETING
    assert len(rasa.received) == 1
    assert count(sqlite_db, Message.direction == Direction.INBOUND) == 1


def test_reply_is_one_gsm7_sms_of_at_most_three_segments(client: FlaskClient, rasa: FakeRasa) -> None:
    rasa.replies = [
        {"text": "*Jadwal* pencairan “BPNT” 🙏 " + "rincian panjang " * 40},
        {"text": "Ketik MENU."},
    ]
    body = call(client, INBOUND, f"id={new_id()}&from=%2B6281234567890&text=jadwal").get_data(as_text=True)
    assert is_gsm7(body) and segment_count(body) <= 3
    assert "“" not in body and "🙏" not in body and "*" not in body


def test_no_reply_is_an_empty_answer_kannel_does_not_send(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """While staff hold a chat the bot stays silent; smsbox's omit-empty sends nothing."""
    monkeypatch.setattr(app.extensions["bansos"].conversations, "handle", lambda inbound: InboundResult([]))
    response = call(app.test_client(), INBOUND, f"id={new_id()}&from=%2B6281234567890&text=halo")
    assert (response.status_code, response.get_data()) == (200, b"")


def test_rasa_down_gets_the_apology(kannel_config: dict[str, Any], sqlite_db: Database) -> None:
    client = create_app({**kannel_config, "rasa_url": "http://127.0.0.1:9", "rasa_timeout": 1.0}).test_client()
    message_id = new_id()
    body = call(client, INBOUND, f"id={message_id}&from=%2B6281234567890&text=cek+bansos").get_data(as_text=True)
    assert body == replies.SERVICE_DOWN
    assert stored(sqlite_db, message_id).status == MessageStatus.NEEDS_FOLLOWUP


def test_kannel_sms_and_twilio_whatsapp_are_one_contact(
    client: FlaskClient, signer: TwilioSigner, sqlite_db: Database, rasa: FakeRasa
) -> None:
    call(client, INBOUND, f"id={new_id()}&from=6281234567890&text=halo")
    signer.post(client, "/webhooks/twilio/messages", whatsapp_form(PHONE, "halo juga"))
    with sqlite_db.session() as session:
        assert session.scalars(select(Contact.address)).all() == [PHONE]
    assert rasa.received[0]["sender"] == rasa.received[1]["sender"]


def _outbound(db: Database, status: str = MessageStatus.QUEUED) -> str:
    """A message of ours that Kannel accepted, named as KannelTransport names them."""
    ref = f"Ktest{next(_refs):04d}"
    with db.session() as session:
        contact = Contact(address=PHONE)
        session.add(contact)
        session.flush()
        session.add(
            Message(
                contact_id=contact.id, direction=Direction.OUTBOUND, channel="sms",
                provider="kannel", provider_sid=ref, body="Bantuan cair", status=status,
            )
        )
    return ref


def _status_of(db: Database, ref: str) -> tuple[str, str | None]:
    message = stored(db, ref)
    return message.status, message.error_code


# (case, %d, %A, status afterwards, error code)
DLR_CASES = [
    ("delivered to the phone", "1", "", MessageStatus.DELIVERED, None),
    ("accepted by the SMSC", "8", "ACK%2F", MessageStatus.SENT, None),
    ("buffered at the SMSC", "4", "", MessageStatus.SENT, None),
    (
        "not delivered, SMPP receipt",
        "2", "id%3A4bd2+sub%3A001+dlvrd%3A000+submit+date%3A2605121000+done+date%3A2605121200+stat%3AUNDELIV+err%3A001+text%3A",
        MessageStatus.UNDELIVERED, "001",
    ),
    ("rejected by the SMSC", "16", "NACK%2F0x0000000b%2FInvalid+Destination+Address", MessageStatus.FAILED, "0x0000000b"),
    ("delivered, receipt without an error", "1", "stat%3ADELIVRD+err%3A000", MessageStatus.DELIVERED, None),
]


@pytest.mark.parametrize("case, dlr_type, reply, status, error", DLR_CASES, ids=[c[0] for c in DLR_CASES])
def test_delivery_report_updates_the_stored_message(
    client: FlaskClient, sqlite_db: Database, case: str, dlr_type: str, reply: str, status: str, error: str | None
) -> None:
    ref = _outbound(sqlite_db)
    response = call(client, DLR, f"ref={ref}&type={dlr_type}&reply={reply}")
    assert (response.status_code, response.get_data()) == (200, b"ok")
    assert _status_of(sqlite_db, ref) == (status, error)


def test_late_report_never_moves_a_message_backwards(client: FlaskClient, sqlite_db: Database) -> None:
    ref = _outbound(sqlite_db)
    call(client, DLR, f"ref={ref}&type=1&reply=")
    call(client, DLR, f"ref={ref}&type=8&reply=ACK%2F")
    assert _status_of(sqlite_db, ref) == (MessageStatus.DELIVERED, None)


def test_unknown_dlr_type_is_acknowledged_and_ignored(client: FlaskClient, sqlite_db: Database) -> None:
    ref = _outbound(sqlite_db)
    response = call(client, DLR, f"ref={ref}&type=32")
    assert response.status_code == 200
    assert _status_of(sqlite_db, ref) == (MessageStatus.QUEUED, None)


def test_report_for_an_unknown_message_is_not_found_so_kannel_retries(client: FlaskClient) -> None:
    assert call(client, DLR, "ref=Knever-sent&type=1").status_code == 404


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("type=1", id="no ref"),
        pytest.param("ref=K1", id="no type"),
        pytest.param("ref=K1&type=delivered", id="type not a number"),
        pytest.param("ref=K1&type=%25d", id="escape not expanded"),
        pytest.param(f"ref={'K' * 65}&type=1", id="ref too long"),
    ],
)
def test_malformed_delivery_report_is_a_bad_request(client: FlaskClient, query: str) -> None:
    assert call(client, DLR, query).status_code == 400


def test_delivery_reports_come_by_get_only(client: FlaskClient, sqlite_db: Database) -> None:
    ref = _outbound(sqlite_db)
    assert call(client, DLR, f"ref={ref}&type=1", method="POST").status_code == 405
