"""Where our copies of citizens' media live: a `MediaStore`, addressed by random keys.

The default is a folder (MEDIA_DIR, `instance/media`), readable by the app's user
only. The interface is what an S3-compatible object store offers (put_object,
get_object's streaming body, delete_object), so such a store can stand in without
touching its callers.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

from bot.config import Settings

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


def make_media_store(settings: Settings) -> MediaStore:
    """The store MEDIA_DIR names."""
    return LocalMediaStore(settings.media_dir)
