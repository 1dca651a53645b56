"""Where our copies of citizens' media live: a `MediaStore`, addressed by random keys.

MEDIA_STORE picks one:

- `local` (the default): a folder (MEDIA_DIR, `instance/media`), readable by the
  app's user only. One host, or several hosts sharing that folder as one volume.
- `database`: a table of the application's database (`media_contents`), so every
  host serves every copy and `bansos purge` deletes them from any host.

The interface is what an S3-compatible object store offers (put_object,
get_object's streaming body, delete_object), so such a store can stand in without
touching its callers.
"""
from __future__ import annotations

import io
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from bot.config import Settings
from bot.conversation.models import utcnow
from bot.db import Database
from bot.media.models import MediaContent

_KEY_RE = re.compile(r"[0-9a-f]{32}")


class MediaMissing(LookupError):
    """The store holds nothing under this key."""


class MediaStore(Protocol):
    def put(self, key: str, content: bytes, content_type: str) -> None:
        """Store `content` under `key`, replacing what was there: a retried fetch writes the same key."""

    def open(self, key: str) -> BinaryIO:
        """The stored bytes as a file the caller closes; raises MediaMissing."""

    def delete(self, key: str) -> None:
        """Remove the copy; nothing happens when there is none."""


def _checked(key: str) -> str:
    """Keys are ours (bot/media/models.py), never a path: anything else is refused."""
    if not _KEY_RE.fullmatch(key):
        raise ValueError("not a media key")
    return key


class LocalMediaStore:
    """A folder, one file per key in a subfolder named by its first two characters."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        key = _checked(key)
        return self.root / key[:2] / key

    def put(self, key: str, content: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Written whole, then renamed into place: a reader never sees half a file.
        descriptor, draft = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(descriptor, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.replace(draft, path)
        except BaseException:
            Path(draft).unlink(missing_ok=True)
            raise

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise MediaMissing(key) from exc

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class DatabaseMediaStore:
    """A table of the application's database, one row per key: shared by every host.

    Never called inside another unit of work: on SQLite each one takes the write lock.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, key: str, content: bytes, content_type: str) -> None:
        values = {"key": _checked(key), "content": content, "content_type": content_type, "stored_at": utcnow()}
        insert = postgresql.insert if self.db.is_postgres else sqlite.insert
        # Two workers fetching the same item write the same bytes: the later one wins.
        statement = insert(MediaContent).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["key"],
            set_={name: statement.excluded[name] for name in ("content", "content_type", "stored_at")},
        )
        with self.db.session() as session:
            session.execute(statement)

    def open(self, key: str) -> BinaryIO:
        with self.db.session() as session:
            content = session.scalar(select(MediaContent.content).where(MediaContent.key == _checked(key)))
        if content is None:
            raise MediaMissing(key)
        return io.BytesIO(content)

    def delete(self, key: str) -> None:
        with self.db.session() as session:
            session.execute(delete(MediaContent).where(MediaContent.key == _checked(key)))


class MediaStoreSetting:
    """The values MEDIA_STORE takes."""

    LOCAL = "local"
    DATABASE = "database"


def make_media_store(settings: Settings, db: Database) -> MediaStore:
    """The store MEDIA_STORE names; an unknown name stops the start-up."""
    if settings.media_store == MediaStoreSetting.LOCAL:
        return LocalMediaStore(settings.media_dir)
    if settings.media_store == MediaStoreSetting.DATABASE:
        return DatabaseMediaStore(db)
    raise ValueError(
        f"MEDIA_STORE={settings.media_store!r}: use {MediaStoreSetting.LOCAL!r} (MEDIA_DIR) "
        f"or {MediaStoreSetting.DATABASE!r}"
    )
