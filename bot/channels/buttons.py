"""Buttons and lists to tap on WhatsApp, through Twilio's Content API.

TwiML carries text only, so a reply that offers choices (bot/conversation/choices.py)
goes out through the Messages API with a `ContentSid` and `ContentVariables`. Our
contents are a few generic shapes whose every text is a variable: the body ({{1}}),
then each choice's title and id (and, in a list, its description). One content per
shape and number of choices, so no variable is ever left empty.

Twilio's documented limits (Content API, twilio/quick-reply and twilio/list-picker):
- body at most 1,024 characters;
- quick reply: 1 to 10 buttons, but only 3 in a WhatsApp session message sent without
  approval (ours are answers inside the 24-hour session); a title shows 20 characters,
  an id at most 200;
- list picker (session only, never approved): 1 to 10 items, each with an item of at
  most 24 characters, an id of at most 200 and a description of at most 72; a button
  text that opens the list.
A reply that does not fit (more than ten choices, a body too long) goes as its
numbered text, which says the same.

The contents are created once per Twilio account by `bansos content sync` (idempotent:
found by friendly name first); each process finds their SIDs by friendly name through
the Content API's list, and lists again when Twilio refuses one of them as unknown
(deleted or made anew: 21655), when a shape it needs was missing (at most every five
minutes: `bansos content sync` may have run since), and a minute after Twilio could
not be asked.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from twilio.base.exceptions import TwilioException
from twilio.rest import Client
from twilio.rest.content.v1.content import ContentList

from bot.channels.outbox import Template
from bot.conversation.choices import Choice

log = logging.getLogger(__name__)

QUICK_REPLY = "twilio/quick-reply"
LIST_PICKER = "twilio/list-picker"
TEXT = "twilio/text"

BODY_MAX = 1024
ID_MAX = 200
QUICK_REPLY_MAX = 3
QUICK_REPLY_TITLE_MAX = 20
LIST_MAX = 10
LIST_ITEM_MAX = 24
LIST_DESCRIPTION_MAX = 72
LIST_BUTTON_MAX = 20
# The button that opens a list: what an elderly citizen taps first.
LIST_BUTTON = "Pilih di sini"
LANGUAGE = "id"
NAME_PREFIX = "bansos_"
# Seconds before asking Twilio again for the SIDs after it could not be asked.
_LOOKUP_RETRY_SECONDS = 60.0
# Seconds before listing again because a shape we need was missing (created since?).
_MISSING_RETRY_SECONDS = 300.0
# Twilio's "The ContentSid is Invalid": the content was deleted (or made anew).
ERROR_UNKNOWN_CONTENT = "21655"


@dataclass(frozen=True)
class Shape:
    """One of our contents: quick-reply buttons or a list, for `count` choices."""

    kind: str
    count: int

    @property
    def friendly_name(self) -> str:
        return f"{NAME_PREFIX}{self.kind.split('/')[1].replace('-', '_')}_{self.count}"

    @property
    def _fields(self) -> tuple[str, ...]:
        return ("title", "id") if self.kind == QUICK_REPLY else ("item", "id", "description")

    def _slots(self) -> list[dict[str, str]]:
        """Each choice's fields as their variables' placeholders, numbered after the body."""
        width = len(self._fields)
        return [
            {name: "{{%d}}" % (2 + width * index + offset) for offset, name in enumerate(self._fields)}
            for index in range(self.count)
        ]

    def definition(self) -> dict[str, Any]:
        """The Content API's create request for this shape, with a sample for each variable."""
        body = {"body": "{{1}}"}
        if self.kind == QUICK_REPLY:
            kind: dict[str, Any] = {**body, "actions": self._slots()}
        else:
            kind = {**body, "button": LIST_BUTTON, "items": self._slots()}
        samples = [Choice(f"Pilihan {n}", str(n), f"Keterangan pilihan {n}") for n in range(1, self.count + 1)]
        return {
            "friendly_name": self.friendly_name,
            "language": LANGUAGE,
            "variables": self.variables("Silakan pilih salah satu.", samples),
            # Channels without buttons get the body, which holds the numbered choices.
            "types": {self.kind: kind, TEXT: dict(body)},
        }

    def variables(self, body: str, choices: Sequence[Choice]) -> dict[str, str]:
        """The ContentVariables that fill this shape with `body` and `choices`."""
        values = {"1": body}
        for slots, choice in zip(self._slots(), choices):
            shown = _fit(choice.title, LIST_ITEM_MAX)
            texts = {
                "title": choice.title,
                "item": shown,
                "id": choice.payload,
                "description": _fit(choice.description or choice.title, LIST_DESCRIPTION_MAX),
            }
            for name, placeholder in slots.items():
                values[placeholder.strip("{}")] = texts[name]
        return values


SHAPES: tuple[Shape, ...] = tuple(
    [Shape(QUICK_REPLY, n) for n in range(1, QUICK_REPLY_MAX + 1)]
    + [Shape(LIST_PICKER, n) for n in range(1, LIST_MAX + 1)]
)


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def shape_for(body: str, choices: Sequence[Choice]) -> Shape | None:
    """The content that shows `choices` under `body`; None when they cannot be tapped.

    Buttons when there are at most three and every title shows whole; a list
    otherwise (a list item shows 24 characters, its description the rest).
    """
    payloads = [choice.payload for choice in choices]
    if (
        not choices
        or len(choices) > LIST_MAX
        or not body.strip()
        or len(body) > BODY_MAX
        or len(set(payloads)) != len(payloads)
        or any(not payload or len(payload) > ID_MAX for payload in payloads)
    ):
        return None
    if len(choices) <= QUICK_REPLY_MAX and all(len(c.title) <= QUICK_REPLY_TITLE_MAX for c in choices):
        return Shape(QUICK_REPLY, len(choices))
    return Shape(LIST_PICKER, len(choices))


class ButtonContents:
    """Our contents at Twilio: their SIDs, found by friendly name, and their creation."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._sids: dict[str, str] | None = None
        self._listed_at = 0.0
        self._failed_at: float | None = None
        self._lock = threading.Lock()

    def template_for(self, body: str, choices: Sequence[Choice]) -> Template | None:
        """The content message that shows `body` with `choices` to tap, or None to send
        the text alone (nothing to tap, it does not fit, or the contents are not there)."""
        shape = shape_for(body, choices)
        if shape is None:
            return None
        sid = self._known(shape.friendly_name).get(shape.friendly_name)
        if sid is None:
            return None
        return Template(sid, shape.variables(body, choices))

    def refused(self, content_sid: str, error_code: str | None) -> None:
        """Twilio refused a message sent with one of our contents: when it no longer
        knows the SID, the contents are listed again before the next message."""
        if error_code != ERROR_UNKNOWN_CONTENT:
            return
        with self._lock:
            if self._sids is not None and content_sid in self._sids.values():
                log.warning("Twilio no longer knows button content %s; listing the contents again", content_sid)
                self._sids = None

    def _known(self, wanted: str) -> dict[str, str]:
        with self._lock:
            now = time.monotonic()
            if self._sids is not None and (wanted in self._sids or now - self._listed_at < _MISSING_RETRY_SECONDS):
                return self._sids
            if self._failed_at is not None and now - self._failed_at < _LOOKUP_RETRY_SECONDS:
                return self._sids or {}
            try:
                self._sids = self._list()
            except (TwilioException, OSError) as exc:
                log.warning("Twilio contents could not be listed; buttons go as text: %s", exc.__class__.__name__)
                self._failed_at = now
                return self._sids or {}
            self._listed_at = now
            missing = [shape.friendly_name for shape in SHAPES if shape.friendly_name not in self._sids]
            if missing:
                log.warning("%d button contents missing at Twilio (run `bansos content sync`)", len(missing))
            return self._sids

    def _list(self) -> dict[str, str]:
        return {
            content.friendly_name: content.sid
            for content in self.client.content.v1.contents.list()
            if content.friendly_name and content.sid and content.friendly_name.startswith(NAME_PREFIX)
        }

    def sync(self) -> list[tuple[str, str, bool]]:
        """Create the contents Twilio does not have yet: (friendly name, SID, created now).

        Raises TwilioException when Twilio refuses or cannot be reached.
        """
        existing = self._list()
        synced = []
        for shape in SHAPES:
            sid = existing.get(shape.friendly_name)
            created = sid is None
            if created:
                request = ContentList.ContentCreateRequest(shape.definition())
                sid = self.client.content.v1.contents.create(request).sid
            synced.append((shape.friendly_name, sid, created))
        with self._lock:
            self._sids = {name: sid for name, sid, _ in synced}
            self._listed_at = time.monotonic()
        return synced
