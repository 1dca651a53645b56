"""The choices a reply offers: the numbered answers, YA / UBAH / BATAL, the menu's keywords.

A reply that asks the citizen to pick carries its choices as data beside its text. The
text stays what SMS shows (numbered lines, "balas YA"); on WhatsApp the choices also
become buttons or a list to tap (bot/channels/buttons.py). Each choice's payload is
exactly what the citizen would type ("2", "YA", "JADWAL"), so a tapped button is
handled as the typed answer, by the same rules.

They travel from the actions to the app as Rasa buttons (`{"title", "payload"}`, plus
an optional `description` for a list), through Rasa's REST channel unchanged.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Choice:
    """One answer to tap: what the button shows, and what tapping it sends."""

    title: str
    payload: str
    # A longer line under the title, where a list has room for one.
    description: str = ""


class Reply(str):
    """A reply's text that may offer choices.

    A str, so everything that stores, formats, logs or compares reply texts keeps
    working; only the WhatsApp sender looks at `choices`.
    """

    choices: tuple[Choice, ...]

    def __new__(cls, text: str, choices: Iterable[Choice] = ()) -> "Reply":
        reply = super().__new__(cls, text)
        reply.choices = tuple(choices)
        return reply


def choices_of(text: str) -> tuple[Choice, ...]:
    """The choices `text` offers; none for a plain str."""
    return getattr(text, "choices", ())


def with_choices_of(text: str, original: str) -> str:
    """`text` (a formatted copy of `original`) offering the same choices as `original`."""
    choices = choices_of(original)
    return Reply(text, choices) if choices else text


def numbered(labels: Sequence[str]) -> list[Choice]:
    """Choices for a numbered list ("1. Lansia tunggal"): tapping one sends its number."""
    return [Choice(label, str(number)) for number, label in enumerate(labels, 1)]


def as_buttons(choices: Iterable[Choice]) -> list[dict[str, str]]:
    """Rasa's button dicts, for `dispatcher.utter_message(buttons=...)`."""
    buttons = []
    for choice in choices:
        button = {"title": choice.title, "payload": choice.payload}
        if choice.description:
            button["description"] = choice.description
        buttons.append(button)
    return buttons


def from_buttons(buttons: Any) -> tuple[Choice, ...]:
    """Choices from the buttons of a Rasa reply; anything malformed is left out."""
    if not isinstance(buttons, list):
        return ()
    return tuple(
        Choice(str(button["title"]), str(button["payload"]), str(button.get("description") or ""))
        for button in buttons
        if isinstance(button, dict) and button.get("title") and button.get("payload")
    )
