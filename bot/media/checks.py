"""What we accept as evidence: photos (JPEG, PNG, WebP) and PDFs, up to MEDIA_MAX_BYTES.

A file is kept only when the type the provider declared in the webhook, the
Content-Type its download came with and its own first bytes all say it is one of
these, and the bytes do not turn a "photo" into a PDF or back. It is stored as the
type its bytes show, so the dashboard never serves a file as something it is not. Four signatures are all this needs, so they are written
here rather than pulled in with a file-type library.
"""
from __future__ import annotations

from collections.abc import Callable

from bot.media.models import MediaRefusal

_SIGNATURES: dict[str, Callable[[bytes], bool]] = {
    "image/jpeg": lambda head: head.startswith(b"\xff\xd8\xff"),
    "image/png": lambda head: head.startswith(b"\x89PNG\r\n\x1a\n"),
    "image/webp": lambda head: head[:4] == b"RIFF" and head[8:12] == b"WEBP",
    "application/pdf": lambda head: head.startswith(b"%PDF-"),
}
ACCEPTED_TYPES = tuple(_SIGNATURES)
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")


class MediaRefused(Exception):
    """Not evidence we keep; `reason` is a MediaRefusal."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def base_type(content_type: str) -> str:
    """`image/jpeg; charset=x` → `image/jpeg`."""
    return content_type.split(";", 1)[0].strip().lower()


def check_declared(content_type: str) -> None:
    """Refuse before downloading what the provider already says we do not take."""
    if base_type(content_type) not in ACCEPTED_TYPES:
        raise MediaRefused(MediaRefusal.WRONG_TYPE)


def check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise MediaRefused(MediaRefusal.TOO_BIG)


def checked_type(served_type: str, content: bytes, max_bytes: int) -> str:
    """The type to store `content` as; raises MediaRefused when it is not evidence we keep."""
    check_size(len(content), max_bytes)
    served = base_type(served_type)
    if served not in ACCEPTED_TYPES:
        raise MediaRefused(MediaRefusal.WRONG_TYPE)
    sniffed = next((kind for kind, matches in _SIGNATURES.items() if matches(content[:16])), None)
    if sniffed is None or (sniffed in IMAGE_TYPES) != (served in IMAGE_TYPES):
        raise MediaRefused(MediaRefusal.WRONG_TYPE)
    return sniffed
