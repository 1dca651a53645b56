"""Several Rasa replicas: each conversation on one, the next one when it is down, never two at once."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from bot.conversation.rasa_client import RasaClient, RasaUnavailable, rendezvous_order
from tools.fake_rasa import FakeRasa
from tools.http_stub import StubServer

KEYS = [f"k{n:024x}" for n in range(200)]


@pytest.fixture
def replicas() -> Iterator[list[tuple[FakeRasa, StubServer]]]:
    fakes = [FakeRasa(replies=[{"text": f"dari replika {n}"}]) for n in range(2)]
    servers = [fake.serve() for fake in fakes]
    for server in servers:
        server.__enter__()
    yield list(zip(fakes, servers))
    for server in servers:
        server.__exit__(None, None, None)


def test_every_host_puts_a_conversation_on_the_same_replica_and_the_load_is_shared() -> None:
    urls = ["http://10.0.0.1:5005", "http://10.0.0.2:5005"]
    first = [rendezvous_order(urls, key)[0] for key in KEYS]
    assert first == [rendezvous_order(list(reversed(urls)), key)[0] for key in KEYS], "order of RASA_URLS must not matter"
    shares = Counter(first)
    assert min(shares.values()) > 0.35 * len(KEYS), f"one replica gets too little: {shares}"


def test_adding_a_replica_moves_only_the_conversations_it_takes() -> None:
    two = ["http://a:5005", "http://b:5005"]
    three = [*two, "http://c:5005"]
    moved = [key for key in KEYS if rendezvous_order(two, key)[0] != rendezvous_order(three, key)[0]]
    assert all(rendezvous_order(three, key)[0] == "http://c:5005" for key in moved)
    assert 0 < len(moved) < 0.5 * len(KEYS)


def test_a_conversation_stays_on_its_replica_turn_after_turn(replicas: list[tuple[FakeRasa, StubServer]]) -> None:
    client = RasaClient([server.url for _, server in replicas], timeout=2)
    for key in KEYS[:10]:
        for _ in range(3):
            client.send(key, "halo", {})
    for fake, _ in replicas:
        senders = Counter(body["sender"] for body in fake.received)
        assert all(count == 3 for count in senders.values())
    assert sum(len(fake.received) for fake, _ in replicas) == 30


def test_a_replica_that_is_down_sends_its_conversations_to_the_next(replicas: list[tuple[FakeRasa, StubServer]]) -> None:
    urls = [server.url for _, server in replicas]
    client = RasaClient(urls, timeout=2)
    key = next(k for k in KEYS if rendezvous_order(urls, k)[0] == urls[0])
    assert client.send(key, "halo", {})[0].text == "dari replika 0"
    replicas[0][1].__exit__(None, None, None)
    assert client.send(key, "halo", {})[0].text == "dari replika 1"
    assert client.ping(), "the service answers while one replica is up"


def test_a_replica_that_timed_out_is_not_asked_again_elsewhere(replicas: list[tuple[FakeRasa, StubServer]]) -> None:
    """The slow replica may still run the turn: the same turn at the other would run twice."""
    urls = [server.url for _, server in replicas]
    client = RasaClient(urls, timeout=0.3)
    key = next(k for k in KEYS if rendezvous_order(urls, k)[0] == urls[1])
    replicas[1][0].delay = 1.0
    with pytest.raises(RasaUnavailable) as raised:
        client.send(key, "halo", {})
    assert raised.value.maybe_ran
    assert replicas[0][0].received == []


def test_every_replica_down_is_rasa_down_not_busy() -> None:
    client = RasaClient(["http://127.0.0.1:9", "http://127.0.0.1:7"], timeout=1)
    with pytest.raises(RasaUnavailable) as raised:
        client.send("k1", "halo", {})
    assert not raised.value.maybe_ran
    assert not client.ping()
