"""Fresh, migrated databases for tests: SQLite always, PostgreSQL when TEST_DATABASE_URL is set."""
from __future__ import annotations

import atexit
import functools
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.db import Database

BACKENDS = ["sqlite", "postgresql"]


def postgres_base_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL") or None


@contextmanager
def fresh_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of `backend`; PostgreSQL gets a schema of its own."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    base = postgres_base_url()
    assert base, "postgresql backend needs TEST_DATABASE_URL"
    url = make_url(base).set(drivername="postgresql+psycopg")
    schema = "t_" + secrets.token_hex(6)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@functools.cache
def _migrated_sqlite_template() -> Path:
    """An SQLite file migrated once per process, copied for every test that needs one.

    Running Alembic's migrations took most of a second per test, over a thousand
    times a run; a file copy takes a millisecond and gives the same schema.
    """
    folder = Path(tempfile.mkdtemp(prefix="bansos-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    template = folder / "template.db"
    db = Database(f"sqlite:///{template}")
    db.upgrade()
    db.dispose()  # the last connection closing checkpoints the WAL into the file
    return template


@contextmanager
def migrated_database(backend: str, tmp_path: Path) -> Iterator[Database]:
    with fresh_database_url(backend, tmp_path) as url:
        if backend == "sqlite":
            shutil.copyfile(_migrated_sqlite_template(), make_url(url).database)
            db = Database(url)
        else:
            db = Database(url)
            db.upgrade()
        try:
            yield db
        finally:
            db.dispose()
