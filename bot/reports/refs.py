"""Report references: `USL-`, `SGH-` or `ADU-`, the filing date, four random characters.

People read references aloud to the 171 call centre and copy them from a feature
phone's screen, so the four characters come from an alphabet without the look-alikes
0/O and 1/I; the same alphabet is what bot.conversation.keywords accepts after `TIKET`.

The date is the calendar day in WIB (Asia/Jakarta), whatever the reporter's zone:
a reference must not depend on where the reporter happens to be, and the ministry
and most reporters work on Jakarta time. Randomness comes from `secrets`, so a
reference cannot be guessed from another one; uniqueness is the database's job,
and the caller draws again on a collision.
"""
from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.rules.regions import DEFAULT_ZONE
from bot.reports.models import ReportKind

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
RANDOM_LENGTH = 4
PREFIXES: dict[str, str] = {
    ReportKind.USUL: "USL",
    ReportKind.SANGGAH: "SGH",
    ReportKind.PENGADUAN: "ADU",
}
KINDS_BY_PREFIX = {prefix: kind for kind, prefix in PREFIXES.items()}
REFERENCE_ZONE = ZoneInfo(DEFAULT_ZONE)

_REFERENCE_RE = re.compile(
    rf"(USL|SGH|ADU)[\s\-_]*(\d{{8}})[\s\-_]*([{ALPHABET}]{{{RANDOM_LENGTH}}})"
)

# Draws a number in [0, n): secrets.randbelow, or a fixed sequence in tests.
RandomBelow = Callable[[int], int]


def new_reference(kind: str, now: datetime, random_below: RandomBelow = secrets.randbelow) -> str:
    """A fresh reference for a report of `kind` filed at the aware instant `now`."""
    if now.tzinfo is None:
        raise ValueError("reference dates need an aware datetime")
    prefix = PREFIXES[kind]
    day = now.astimezone(REFERENCE_ZONE).strftime("%Y%m%d")
    tail = "".join(ALPHABET[random_below(len(ALPHABET))] for _ in range(RANDOM_LENGTH))
    return f"{prefix}-{day}-{tail}"


def normalise_reference(text: str | None) -> str | None:
    """The canonical `ADU-20261123-ABCD` form of what a citizen typed, or None.

    Lowercase, spaces and missing or extra dashes are forgiven; anything that could
    not have been issued (a look-alike character, a wrong length) is not.
    """
    match = _REFERENCE_RE.fullmatch((text or "").strip().upper())
    if match is None:
        return None
    return "-".join(match.groups())


def kind_of_reference(reference: str) -> str | None:
    """The report kind a canonical reference was issued for."""
    return KINDS_BY_PREFIX.get(reference[:3])
