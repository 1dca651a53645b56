"""Several web hosts behind one load balancer: nothing one host needs lives in another's process.

Issue 14, item 5. Each test builds two independent apps with `create_app`, as two hosts
would run them: each has its own engine and pool, its own services, its own Flask and
extension state. They share only what real hosts share: the database and SECRET_KEY.
A browser reaches them through one address, so it keeps one cookie jar whichever host
answers (`Browser`, a load balancer without sticky sessions); Twilio posts to whichever
host the balancer picks. What must hold across hosts:

- a staff session opened on one host is good on the other, and logout on either ends
  it everywhere (the session is a row in `staff_sessions`, the cookie only names it);
- a CSRF token one host put in a form is accepted by the other, and a forged one, or
  another browser's, is refused (the raw token rides in the signed session cookie);
- the NIK look-up limit counts the look-ups of every host together, and a NIK asked on
  one host is recognised on the other (rows in `nik_lookups`, keyed by SECRET_KEY);
- a Twilio retry that reaches the other host gets the stored reply, and the message is
  stored and sent to Rasa once (the unique provider id in `messages`);
- the login lockout counts failures made on any host (`staff_users.failed_logins`).

A host with another SECRET_KEY shares none of the signed part: the last test shows it,
which is why every host must be given the same key (a development key is per machine).
Every test runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.
"""
from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.test import Client, TestResponse

from app import create_app
from bot.conversation.models import Direction, Message
from bot.db import Database
from bot.handoff.staff_users import MAX_FAILED_LOGINS
from bot.registry.status import RATE_LIMITED, StatusService
from bot.services import Services
from tests.support.staff import PASSWORD, csrf_token, make_staff
from tests.support.twilio import TEST_AUTH_TOKEN, TwilioSigner, sms_form
from tools.fake_rasa import FakeRasa

SECRET_KEY = "several-hosts-shared-secret-key"
OTHER_SECRET_KEY = "a-host-given-another-secret-key"
LOGIN = "/staff/login"
INBOX = "/staff/chats"
LOGOUT = "/staff/logout"
MESSAGES = "/webhooks/twilio/messages"
SESSION_COOKIE = "session"
USERNAME = "andi"
WRONG_PASSWORD = "salah-sekali-123"
PHONE = "+6281234567890"
# A sender asking about other people's NIKs; none of these NIKs is registered.
SENDER = "kwarga-lain"
OTHER_NIKS = [f"35780130016500{n:02d}" for n in range(10, 20)]
NOT_REGISTERED = "tidak terdaftar"


class Browser:
    """One browser behind the load balancer: one cookie jar, whichever host answers.

    The balancer has no sticky sessions, so each request may go to any host; `via`
    says which one serves the next request.
    """

    def __init__(self) -> None:
        self._host: Flask | None = None
        self._client = Client(self._balance)

    def _balance(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        assert self._host is not None, "say which host serves the request: browser.via(host)"
        return self._host(environ, start_response)

    def via(self, host: Flask) -> Client:
        self._host = host
        return self._client

    @property
    def session_cookie(self) -> str | None:
        cookie = self._client.get_cookie(SESSION_COOKIE)
        return cookie.value if cookie else None

    def restore_session_cookie(self, value: str) -> None:
        """Present an old copy of the cookie again, as someone who kept one would."""
        self._client.set_cookie(SESSION_COOKIE, value)


def services(host: Flask) -> Services:
    """What one host built for itself at start-up (bot/services.py)."""
    return host.extensions["bansos"]


def host_config(db: Database, rasa: FakeRasa, secret_key: str) -> dict[str, Any]:
    """One host's settings: every host of a deployment is given the same ones."""
    return {
        "database_url": db.url,
        "rasa_url": rasa.url,  # type: ignore[attr-defined]
        "rasa_timeout": 5.0,
        "twilio_auth_token": TEST_AUTH_TOKEN,
        "twilio_account_sid": "",
        "public_base_url": "",
        "replay_wait_seconds": 5.0,
        "secret_key": secret_key,
    }


@pytest.fixture
def hosts(db: Database, rasa: FakeRasa) -> Iterator[tuple[Flask, Flask]]:
    """Hosts A and B: two apps over the same database with the same SECRET_KEY."""
    a, b = (create_app(host_config(db, rasa, SECRET_KEY)) for _ in range(2))
    # Two hosts share no object: had they one, a test here could pass on it alone.
    assert services(a) is not services(b) and services(a).db.engine is not services(b).db.engine
    yield a, b
    for host in (a, b):
        services(host).db.dispose()


@pytest.fixture
def stranger(db: Database, rasa: FakeRasa) -> Iterator[Flask]:
    """A third host over the same database that was given another SECRET_KEY."""
    host = create_app(host_config(db, rasa, OTHER_SECRET_KEY))
    yield host
    services(host).db.dispose()


def log_in(browser: Browser, form_host: Flask, post_host: Flask, password: str = PASSWORD) -> TestResponse:
    """Open the login form on `form_host` and send it to `post_host`."""
    token = csrf_token(browser.via(form_host).get(LOGIN).get_data(as_text=True))
    return browser.via(post_host).post(
        LOGIN, data={"csrf_token": token, "username": USERNAME, "password": password}
    )


def signed_in(browser: Browser, host: Flask) -> bool:
    """Whether `host` lets the browser see the inbox (it redirects to the login otherwise)."""
    status = browser.via(host).get(INBOX).status_code
    assert status in (200, 302), status
    return status == 200


def replies_of(response: TestResponse) -> list[str]:
    """The texts of a TwiML answer, as Twilio would send them."""
    assert response.status_code == 200, response.get_data(as_text=True)
    return [message.text or "" for message in ET.fromstring(response.data).iter("Message")]


def count_messages(db: Database, direction: str) -> int:
    """Messages stored in `direction` by every host together."""
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Message).where(Message.direction == direction)) or 0


def ask(status: StatusService, nik: str) -> str:
    """What one host's status service answers SENDER about someone else's `nik`."""
    return status.answer(SENDER, nik, "status").text


# --- sessions and CSRF ---------------------------------------------------------------


def test_a_session_opened_on_one_host_holds_on_the_other_and_logout_ends_it_on_both(
    hosts: tuple[Flask, Flask],
) -> None:
    a, b = hosts
    make_staff(a, USERNAME)
    browser = Browser()

    assert log_in(browser, a, a).status_code == 302
    assert signed_in(browser, b) and signed_in(browser, a)

    kept = browser.session_cookie
    assert kept is not None
    token = csrf_token(browser.via(b).get(INBOX).get_data(as_text=True))
    assert browser.via(b).post(LOGOUT, data={"csrf_token": token}).status_code == 302
    assert not signed_in(browser, a)
    # Logout ended the session itself, not just this copy of the cookie: an old copy
    # presented to the other host is refused as well.
    browser.restore_session_cookie(kept)
    assert not signed_in(browser, a)


def test_a_csrf_token_from_one_hosts_form_is_accepted_by_the_other(hosts: tuple[Flask, Flask]) -> None:
    a, b = hosts
    make_staff(a, USERNAME)
    browser = Browser()

    assert log_in(browser, a, b).status_code == 302
    assert signed_in(browser, a)
    # Every later form too: a token from B's page, sent to A.
    token = csrf_token(browser.via(b).get(INBOX).get_data(as_text=True))
    assert browser.via(a).post(LOGOUT, data={"csrf_token": token}).status_code == 302
    assert not signed_in(browser, b)


@pytest.mark.parametrize("forgery", ["made up", "altered", "another browser's"])
def test_a_forged_csrf_token_is_refused_by_the_other_host(hosts: tuple[Flask, Flask], forgery: str) -> None:
    a, b = hosts
    make_staff(a, USERNAME)
    browser = Browser()
    genuine = csrf_token(browser.via(a).get(LOGIN).get_data(as_text=True))
    if forgery == "made up":
        token = "forged"
    elif forgery == "altered":
        # A character inside the signature: the last one of base64 may carry only
        # padding bits, and changing those changes nothing.
        at = len(genuine) - 10
        token = genuine[:at] + ("A" if genuine[at] != "A" else "B") + genuine[at + 1:]
    else:
        token = csrf_token(Browser().via(a).get(LOGIN).get_data(as_text=True))

    response = browser.via(b).post(LOGIN, data={"csrf_token": token, "username": USERNAME, "password": PASSWORD})
    assert response.status_code == 400
    assert not signed_in(browser, a) and not signed_in(browser, b)


# --- counters kept in the database ---------------------------------------------------


def test_the_nik_lookup_limit_counts_the_lookups_of_every_host(hosts: tuple[Flask, Flask]) -> None:
    """The look-up runs in the action server, which each host builds with the same
    composition root (bot/services.py) as its web app: each host's StatusService here."""
    status_a, status_b = (services(host).status for host in hosts)
    limit = status_a.max_niks_per_day
    half = (limit + 1) // 2

    for nik in OTHER_NIKS[:half]:
        assert NOT_REGISTERED in ask(status_a, nik)
    for nik in OTHER_NIKS[half:limit]:
        assert NOT_REGISTERED in ask(status_b, nik)

    refused = RATE_LIMITED.format(limit=limit)
    assert ask(status_b, OTHER_NIKS[limit]) == refused
    assert ask(status_a, OTHER_NIKS[limit]) == refused
    # A NIK asked on A costs nothing again on B: both hosts key its hash alike.
    assert NOT_REGISTERED in ask(status_b, OTHER_NIKS[0])


def test_a_lockout_counts_the_failed_logins_made_on_every_host(hosts: tuple[Flask, Flask]) -> None:
    a, b = hosts
    make_staff(a, USERNAME)
    browser = Browser()
    for attempt in range(MAX_FAILED_LOGINS):
        host = hosts[attempt % 2]  # A, B, A, B, A: no host alone sees enough to lock
        assert log_in(browser, host, host, WRONG_PASSWORD).status_code == 401

    for host in (a, b):
        response = log_in(browser, host, host, PASSWORD)
        assert response.status_code == 401 and "dikunci" in response.get_data(as_text=True)
    assert not signed_in(browser, a)


# --- Twilio's retries ----------------------------------------------------------------


def test_a_twilio_retry_to_the_other_host_gets_the_same_reply_and_runs_once(
    hosts: tuple[Flask, Flask], db: Database, rasa: FakeRasa, signer: TwilioSigner
) -> None:
    a, b = hosts
    form = sms_form(PHONE, "halo")
    first = replies_of(signer.post(a.test_client(), MESSAGES, form))
    rasa.replies = [{"text": "jawaban yang tidak boleh muncul"}]

    retried = replies_of(signer.post(b.test_client(), MESSAGES, form))
    assert first == retried == ["Halo, ada yang bisa dibantu?"]
    assert len(rasa.received) == 1
    assert (count_messages(db, Direction.INBOUND), count_messages(db, Direction.OUTBOUND)) == (1, 1)


def test_a_twilio_retry_arriving_while_the_first_host_still_works_runs_once(
    hosts: tuple[Flask, Flask], db: Database, rasa: FakeRasa, signer: TwilioSigner
) -> None:
    """Twilio retries a slow webhook; the balancer may hand the retry to the other host."""
    rasa.delay = 0.5
    form = sms_form(PHONE, "halo")
    results: list[list[str]] = []
    barrier = threading.Barrier(len(hosts))

    def post(host: Flask) -> None:
        client = host.test_client()
        barrier.wait()
        results.append(replies_of(signer.post(client, MESSAGES, form)))

    threads = [threading.Thread(target=post, args=(host,)) for host in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [["Halo, ada yang bisa dibantu?"]] * 2
    assert len(rasa.received) == 1
    assert (count_messages(db, Direction.INBOUND), count_messages(db, Direction.OUTBOUND)) == (1, 1)


# --- why every host needs the same SECRET_KEY ----------------------------------------


def test_a_host_with_another_secret_key_honours_nothing_the_others_signed(
    hosts: tuple[Flask, Flask], stranger: Flask
) -> None:
    a, b = hosts
    make_staff(a, USERNAME)
    browser = Browser()
    assert log_in(browser, a, a).status_code == 302
    assert not signed_in(browser, stranger)
    assert log_in(Browser(), a, stranger).status_code == 400

    limit = services(a).status.max_niks_per_day
    for nik in OTHER_NIKS[:limit]:
        assert NOT_REGISTERED in ask(services(a).status, nik)
    # The same NIK again: free on B, but the stranger's hash of it is another one.
    assert NOT_REGISTERED in ask(services(b).status, OTHER_NIKS[0])
    assert ask(services(stranger).status, OTHER_NIKS[0]) == RATE_LIMITED.format(limit=limit)
