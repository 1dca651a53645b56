"""Alembic environment: runs against the engine the app hands over, or DATABASE_URL."""
from __future__ import annotations

from alembic import context

import bot.conversation.models  # noqa: F401 - these imports register every table on Base.metadata
import bot.registry.models  # noqa: F401
import bot.notices.models  # noqa: F401
import bot.reports.models  # noqa: F401
import bot.handoff.staff_models  # noqa: F401
import bot.handoff.models  # noqa: F401
import bot.media.models  # noqa: F401
import bot.reports.signal_models  # noqa: F401
from bot.config import load_settings
from bot.db import Base, make_engine

target_metadata = Base.metadata


def run_migrations() -> None:
    engine = context.config.attributes.get("engine") or make_engine(load_settings().database_url)
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        context.run_migrations()


run_migrations()
