"""What the action server builds once per process: its settings and the core's services.

The SDK imports every module in actions/ when it starts, and tests import them
without any database, so nothing here is built at import time: the services are
built on first use by the composition root (bot/services.py), as in every other
process, and then shared by every action. Tests hand in their own service with
`Lazy.override`.
"""

from __future__ import annotations

import functools
from typing import Callable, Generic, Optional, TypeVar

from bot.config import Settings, load_settings
from bot.db import Database
from bot.services import Services, build_services

T = TypeVar("T")


@functools.cache
def settings() -> Settings:
    """The process settings, read from the environment (and `.env`) once.

    The action server keys the NIK look-up counter with SECRET_KEY, so it refuses to
    start without one (actions/__init__.py asks for the settings on import), as the
    web app does.
    """
    loaded = load_settings()
    loaded.require_secret_key()
    return loaded


@functools.cache
def services() -> Services:
    """The core's services, built once from the settings by the composition root."""
    return build_services(settings())


def database() -> Database:
    """The one connection pool every service of this process shares."""
    return services().db


def forget_built() -> None:
    """Drop the cached settings and services so the next use reads the environment again (tests)."""
    settings.cache_clear()
    services.cache_clear()


class Lazy(Generic[T]):
    """A service built on first call and shared afterwards, unless a test overrides it.

    `build` runs in the action server's event loop thread, the only place actions
    ask for their service, so it is built once without a lock.
    """

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._built: Optional[T] = None
        self._override: Optional[T] = None

    def __call__(self) -> T:
        if self._override is not None:
            return self._override
        if self._built is None:
            self._built = self._build()
        return self._built

    def override(self, service: Optional[T]) -> None:
        """Use `service` for every call (tests); None returns to the settings-built one."""
        self._override = service

    def forget(self) -> None:
        """Build again on the next call (tests that change the environment)."""
        self._built = None
