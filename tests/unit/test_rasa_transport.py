"""How the app's calls to Rasa behave on the wire (libcurl, bot/conversation/rasa_client.py).

Each test stands for something a citizen would notice: a message answered twice, or
not at all, because a connection went away or the host's settings got in between.
"""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import pytest

from bot.conversation.rasa_client import RasaClient, RasaUnavailable, failure_kind, rendezvous_order
from tools.fake_rasa import FakeRasa

KEYS = [f"k{n:024x}" for n in range(50)]
_ANSWER = b'[{"recipient_id": "k", "text": "Halo"}]'
_KEPT_ALIVE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(_ANSWER), _ANSWER,
)


def _read_request(conn: socket.socket) -> bytes:
    """The request's head and body (our bodies say their length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
    while len(body) < length:
        body += conn.recv(65536)
    return data


@contextmanager
def raw_server(serve: Callable[[socket.socket], None]) -> Iterator[tuple[str, list[socket.socket]]]:
    """A TCP server on 127.0.0.1 that hands each accepted connection to `serve`;
    yields its URL and the connections it accepted."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        # shutdown, not close alone: a thread blocked on a socket keeps it open.
        for sock in (listener, *accepted):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _drop_after_reading(conn: socket.socket) -> None:
    _read_request(conn)
    conn.close()


def _answer_once_then_close_when_idle(conn: socket.socket) -> None:
    """One answer on a kept-alive connection, then the connection closed a moment
    later, as Rasa's Sanic does to a connection idle past its keep-alive time."""
    _read_request(conn)
    conn.sendall(_KEPT_ALIVE)
    time.sleep(0.1)
    conn.close()


def _answer_every_request(conn: socket.socket) -> None:
    with suppress(OSError):
        while _read_request(conn):
            conn.sendall(_KEPT_ALIVE)


def test_a_connection_dropped_mid_turn_may_have_run_and_is_not_asked_elsewhere() -> None:
    healthy = FakeRasa()
    with raw_server(_drop_after_reading) as (dropping, _), healthy.serve() as server:
        urls = [dropping, server.url]
        key = next(k for k in KEYS if rendezvous_order(urls, k)[0] == dropping)
        with pytest.raises(RasaUnavailable) as raised:
            RasaClient(urls, timeout=2).send(key, "halo", {})
    assert raised.value.maybe_ran, "the replica had the turn: asking again may run it twice"
    assert failure_kind(raised.value.__cause__) == "unreachable"
    assert healthy.received == []


def test_a_slow_replica_is_counted_as_a_timeout_and_one_that_is_down_as_unreachable() -> None:
    slow = FakeRasa(delay=1.0)
    with slow.serve() as server, pytest.raises(RasaUnavailable) as timed_out:
        RasaClient(server.url, timeout=0.3).send("k1", "halo", {})
    with pytest.raises(RasaUnavailable) as refused:
        RasaClient("http://127.0.0.1:9", timeout=1).send("k1", "halo", {})
    assert (failure_kind(timed_out.value.__cause__), timed_out.value.maybe_ran) == ("timeout", True)
    assert (failure_kind(refused.value.__cause__), refused.value.maybe_ran) == ("unreachable", False)


def test_a_time_out_of_zero_still_bounds_the_call() -> None:
    """libcurl reads 0 as no limit: RASA_TIMEOUT=0 must not let a hung Rasa hold the turn."""
    with FakeRasa(delay=1.0).serve() as server, pytest.raises(RasaUnavailable) as raised:
        RasaClient(server.url, timeout=0).send("k1", "halo", {})
    assert failure_kind(raised.value.__cause__) == "timeout"


def test_a_kept_alive_connection_the_replica_closed_while_idle_does_not_lose_the_next_message() -> None:
    with raw_server(_answer_once_then_close_when_idle) as (url, accepted):
        client = RasaClient(url, timeout=2)
        assert client.send("k1", "halo", {})[0].text == "Halo"
        time.sleep(0.3)
        assert client.send("k1", "cek", {})[0].text == "Halo"
    assert len(accepted) == 2, "the second message needed a new connection"


def test_a_replica_stopped_after_answering_on_a_kept_alive_connection_sends_the_next_turn_to_the_next() -> None:
    """The kept-alive connection to a stopped replica is dead, not a turn in flight."""
    other = FakeRasa()
    with other.serve() as server:
        with raw_server(_answer_every_request) as (stopping, _):
            urls = [stopping, server.url]
            key = next(k for k in KEYS if rendezvous_order(urls, k)[0] == stopping)
            client = RasaClient(urls, timeout=2)
            assert client.send(key, "halo", {})[0].text == "Halo"
        time.sleep(0.1)
        assert client.send(key, "cek", {})[0].text == "Halo, ada yang bisa dibantu?"
    assert [body["message"] for body in other.received] == ["cek"]


def test_messages_from_one_thread_share_one_connection_to_the_replica() -> None:
    """A new TCP connection per message costs more than the NLU on a small machine."""
    with raw_server(_answer_every_request) as (url, accepted):
        client = RasaClient(url, timeout=2)
        replies = [client.send("k1", "halo", {})[0].text for _ in range(5)]
    assert replies == ["Halo"] * 5
    assert len(accepted) == 1


def test_an_exported_http_proxy_does_not_come_between_the_app_and_rasa(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    fake = FakeRasa()
    with fake.serve() as server:
        client = RasaClient(server.url, timeout=2)
        assert client.send("k1", "halo", {})[0].text == "Halo, ada yang bisa dibantu?"
        assert client.ping()
