"""Migration 0006 on a database already in use: staff, their audit trail and their chats."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

from bot.db import MIGRATIONS_DIR, Database


def alembic_config(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = db.engine
    return config


@pytest.fixture
def db_at_0005(tmp_path: Path) -> Iterator[Database]:
    """A SQLite database before server-side sessions, with an officer who has worked."""
    db = Database(f"sqlite:///{tmp_path / 'before.db'}")
    command.upgrade(alembic_config(db), "0005")
    with db.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO staff_users (id, username, full_name, password_hash, role, active, failed_logins,"
            " session_version, created_at, updated_at)"
            " VALUES (1, 'andi', 'Andi', 'x', 'agent', 1, 0, 3, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        ))
        conn.execute(text(
            "INSERT INTO audit_log (at, actor_id, actor, action, target, detail, ip)"
            " VALUES ('2026-01-01 00:00:00', 1, 'andi', 'login', 'staff:andi', '', '127.0.0.1')"
        ))
    try:
        yield db
    finally:
        db.dispose()


def test_sessions_migration_keeps_staff_and_their_audit_trail_both_ways(db_at_0005: Database) -> None:
    config = alembic_config(db_at_0005)
    command.upgrade(config, "0006")
    columns = {column["name"] for column in inspect(db_at_0005.engine).get_columns("staff_users")}
    assert "session_version" not in columns
    assert "staff_sessions" in inspect(db_at_0005.engine).get_table_names()
    with db_at_0005.engine.connect() as conn:
        assert conn.execute(text("SELECT username FROM staff_users")).scalars().all() == ["andi"]
        assert conn.execute(text("SELECT actor_id FROM audit_log")).scalars().all() == [1]

    command.downgrade(config, "0005")
    assert "staff_sessions" not in inspect(db_at_0005.engine).get_table_names()
    with db_at_0005.engine.connect() as conn:
        assert conn.execute(text("SELECT session_version FROM staff_users")).scalars().all() == [1]
