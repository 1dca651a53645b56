"""The scripted Rasa stand-in as the tests' fixtures serve it."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from tools.fake_rasa import FakeRasa

Fake = TypeVar("Fake", bound=FakeRasa)


@contextmanager
def listening(fake: Fake) -> Iterator[Fake]:
    """`fake` served on a free local port, its base URL at `fake.url`."""
    with fake.serve() as server:
        fake.url = server.url  # type: ignore[attr-defined]
        yield fake
