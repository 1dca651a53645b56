"""Database engine, sessions and schema upgrades.

bot/ is the only layer that touches the database; everything else asks a bot/ service,
which opens a unit of work with `Database.session()`.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import DateTime, Executable, TypeDecorator, create_engine, event, text
from sqlalchemy.engine import Connection, Dialect, Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

if TYPE_CHECKING:
    from bot.config import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# A pooled PostgreSQL connection idle this long is pinged before it is used again.
PING_AFTER_IDLE_SECONDS = 5.0
_CHECKED_IN_AT = "bansos_checked_in_at"


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always hands back an aware datetime, on SQLite as on PostgreSQL.

    SQLite has no time zones; without this, values read back naive and comparisons
    with `datetime.now(timezone.utc)` fail.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of every model; every datetime column is UTC."""

    type_annotation_map = {datetime: UTCDateTime()}


def _enable_sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the web app, the action server and the scheduler read while one writes;
    # busy_timeout turns brief lock contention into a wait instead of an error.
    # pysqlite's own transaction handling is switched off so that _begin_immediate
    # decides how transactions start (and savepoints work).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_immediate(conn) -> None:  # type: ignore[no-untyped-def]
    # A deferred SQLite transaction that reads and then writes fails at once with
    # SQLITE_BUSY when another process wrote in between; taking the write lock up
    # front makes concurrent writers wait for busy_timeout instead.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, pool_size: int = 5, max_overflow: int = 5) -> Engine:
    """Create an engine tuned for the backend (SQLite embedded, PostgreSQL production).

    On PostgreSQL each process holds up to `pool_size + max_overflow` connections:
    DB_POOL_SIZE and DB_MAX_OVERFLOW size them so that every host's processes together
    stay under the server's max_connections (the README's sizing table).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 5, "check_same_thread": False})
        event.listen(engine, "connect", _enable_sqlite_pragmas)
        event.listen(engine, "begin", _begin_immediate)
        return engine
    if parsed.drivername in ("postgresql", "postgres"):
        url = str(parsed.set(drivername="postgresql+psycopg"))
    engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow)
    event.listen(engine, "checkin", _stamp_checkin)
    event.listen(engine, "checkout", functools.partial(_ping_if_idle, engine.dialect))
    return engine


def _stamp_checkin(_dbapi_conn, record) -> None:  # type: ignore[no-untyped-def]
    record.info[_CHECKED_IN_AT] = time.monotonic()


def _ping_if_idle(dialect: Dialect, dbapi_conn, record, _proxy) -> None:  # type: ignore[no-untyped-def]
    """SQLAlchemy's pessimistic disconnect handling, for connections that sat idle.

    `pool_pre_ping` pings on every checkout: a round trip per unit of work, two for
    every message, to learn that a connection used a moment ago still works. A
    connection idle for PING_AFTER_IDLE_SECONDS is pinged (PostgreSQL restarted, a
    firewall dropped it); a dead one raises DisconnectionError, on which the pool opens
    a fresh connection and tries again. Should the database restart within those
    seconds, the first statement fails instead and the pool drops its connections; the
    webhook then stores the message again on a fresh one (bot/conversation/inbound.py).
    """
    idle_since = record.info.get(_CHECKED_IN_AT)
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
        return
    try:
        alive = dialect.do_ping(dbapi_conn)
    except Exception as exc:  # noqa: BLE001 - whatever the driver raises, the connection is gone
        raise DisconnectionError("pooled connection failed its ping") from exc
    if not alive:
        raise DisconnectionError("pooled connection failed its ping")


class DriverStatement:
    """A statement SQLAlchemy compiled once, run on the driver's own connection.

    For the few statements every message runs (bot/conversation/arrival.py): measured
    in one process on PostgreSQL, SQLAlchemy's execution of a statement already compiled
    and cached (its execution context, result and parameter handling) cost more CPU
    than psycopg's sending it and reading the rows. SQLAlchemy still builds the SQL, so
    the rules stay written once, in its expressions; this applies its bind processors
    (UTC datetimes, JSON) to the values given, and raises SQLAlchemy's exceptions, with
    the connection invalidated when the driver lost it, as `Connection.execute` would.
    """

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        # Every bound parameter without a value is given at run time; the expanded state
        # then holds the SQL with IN lists written out, and the constants' values.
        given = {name: None for name, bind in compiled.binds.items()
                 if bind.value is None and bind.callable is None and not bind.expanding}
        expanded = compiled.construct_expanded_state(given)
        self.sql: str = expanded.statement
        # SQLite's driver takes its parameters by position.
        self._positions = expanded.positiontup
        self._processors: dict[str, Callable[[Any], Any]] = {}
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None and bind.expanding:
                # Its values were written out under other names, unprocessed.
                raise ValueError(f"IN list {name!r} holds values its type must process: not supported here")
            if process is not None and name in expanded.parameters:
                self._processors[name] = process
        self._constants = {name: self._processed(name, value)
                           for name, value in expanded.parameters.items() if name not in given}

    def _processed(self, name: str, value: Any) -> Any:
        process = self._processors.get(name)
        return value if process is None else process(value)

    def run(self, connection: Connection, values: Mapping[str, Any]) -> Any:
        """The driver's cursor, executed on `connection`'s transaction with `values`."""
        named = {**self._constants, **{name: self._processed(name, value) for name, value in values.items()}}
        params = named if self._positions is None else [named[name] for name in self._positions]
        dialect = connection.dialect
        driver = connection.connection.driver_connection
        try:
            return driver.execute(self.sql, params)
        except dialect.loaded_dbapi.Error as exc:
            lost = dialect.is_disconnect(exc, driver, None)
            if lost:
                connection.invalidate(exc)
            # The parameters hold what citizens wrote: never in a traceback.
            raise DBAPIError.instance(self.sql, params, exc, dialect.loaded_dbapi.Error, hide_parameters=True,
                                      connection_invalidated=lost, dialect=dialect) from exc


class Database:
    """An engine and its session factory, shared by one process."""

    def __init__(self, url: str, pool_size: int = 5, max_overflow: int = 5) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size, max_overflow)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any error."""
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A unit of work on a bare connection, past the ORM: commits on success, rolls
        back on any error. For the statements every message runs
        (bot/conversation/arrival.py), where a Session's own bookkeeping cost more CPU
        than the statements themselves."""
        with self.engine.begin() as connection:
            yield connection

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A bare connection on which each statement commits by itself: for a unit of work
        that is one statement, without BEGIN and COMMIT as round trips of their own.

        On SQLite a transaction as any other: nothing travels there, and SQLAlchemy's
        way back from autocommit would undo how _enable_sqlite_pragmas set it up.
        """
        if not self.is_postgres:
            with self.transaction() as connection:
                yield connection
            return
        # psycopg's own switch, set on the pooled connection for this unit of work alone.
        # Both statements of every message run here; SQLAlchemy's isolation-level
        # option sets and resets the same switch through its events on every checkout,
        # which cost about a fifth of their CPU (measured in one process, issue 15).
        # The pool stays one, so DB_POOL_SIZE still counts every connection.
        with self.engine.connect() as connection:
            driver = connection.connection.driver_connection
            driver.autocommit = True
            try:
                yield connection
            finally:
                if not driver.closed:
                    driver.autocommit = False

    @classmethod
    def from_settings(cls, settings: "Settings") -> "Database":
        """The database DATABASE_URL names, pooled as DB_POOL_SIZE and DB_MAX_OVERFLOW say."""
        return cls(settings.database_url, settings.db_pool_size, settings.db_max_overflow)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def now(self, session: Session | Connection | None = None) -> datetime:
        """The database server's clock on PostgreSQL, this host's on SQLite.

        Leases and staleness shared by several hosts are judged by one clock, the
        database's, so a host whose clock drifts neither steals a live claim nor keeps
        a dead one. SQLite is one host: its clock is that host's.
        """
        if not self.is_postgres:
            return datetime.now(timezone.utc)
        if session is not None:
            return session.scalar(text("SELECT clock_timestamp()")).astimezone(timezone.utc)
        with self.engine.connect() as conn:
            return conn.scalar(text("SELECT clock_timestamp()")).astimezone(timezone.utc)

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - readiness reports any failure as "down"
            return False

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (keeps existing data)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["engine"] = self.engine
        command.upgrade(cfg, "heads")

    def dispose(self) -> None:
        self.engine.dispose()
