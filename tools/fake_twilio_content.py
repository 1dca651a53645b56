"""The Content API part of the local fake Twilio (tools/fake_twilio.py).

It creates and lists contents (`/v1/Content`) and refuses, as Twilio does, what breaks
the shapes and limits Twilio documents for the types we use:

- every content: a friendly_name, a language, at least one type;
- twilio/text: a body of at most 1,600 characters;
- twilio/quick-reply: a body of at most 1,024 characters and 1 to 10 actions, each
  with a title and an id (id at most 200 characters);
- twilio/list-picker: a body of at most 1,024 characters, a button text, and 1 to 10
  items, each with an item (at most 24 characters), an id (at most 200) and a
  description (at most 72).

A message sent with ContentSid is checked once its ContentVariables are filled in:
a WhatsApp session message shows at most 3 quick-reply buttons (more need an
approved template), a button title at most 20 characters, and the item limits again.
"""
from __future__ import annotations

import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

CONTENT_PATH = re.compile(r"^/v1/Content$")
_VARIABLE = re.compile(r"\{\{(\d+)\}\}")

BODY_MAX = 1024
TEXT_BODY_MAX = 1600
ID_MAX = 200
ACTIONS_MAX = 10
SESSION_ACTIONS_MAX = 3
TITLE_MAX = 20
ITEMS_MAX = 10
ITEM_MAX = 24
DESCRIPTION_MAX = 72
# Twilio's codes: 21656 is the invalid-ContentVariables / content error family.
ERROR_INVALID_CONTENT = 21656
# "The ContentSid is Invalid": no such content (deleted, or another account's).
ERROR_UNKNOWN_CONTENT = 21655


class ContentRefused(ValueError):
    """What Twilio would answer 400 to, with its reason."""


def _text(value: Any, name: str, limit: int | None = None) -> str:
    """A required text within `limit`; a text still holding a variable is measured once
    the variable is filled in."""
    if not isinstance(value, str) or not value.strip():
        raise ContentRefused(f"{name} is required")
    if limit is not None and not _VARIABLE.search(value) and len(value) > limit:
        raise ContentRefused(f"{name} is longer than {limit} characters")
    return value


def check_types(types: Any, *, rendered: bool = False) -> None:
    """Refuse the types Twilio would: shapes and lengths. `rendered`: the variables are
    filled in and the message goes in a WhatsApp session, where 3 buttons is the most."""
    if not isinstance(types, dict):
        raise ContentRefused("types is required")
    present = {name: value for name, value in types.items() if value is not None}
    if not present:
        raise ContentRefused("at least one content type is required")
    for name, value in present.items():
        if not isinstance(value, dict):
            raise ContentRefused(f"{name} must be an object")
        if name == "twilio/text":
            _text(value.get("body"), "twilio/text body", TEXT_BODY_MAX)
        elif name == "twilio/quick-reply":
            _text(value.get("body"), "twilio/quick-reply body", BODY_MAX)
            actions = value.get("actions")
            if not isinstance(actions, list) or not 1 <= len(actions) <= ACTIONS_MAX:
                raise ContentRefused(f"twilio/quick-reply needs 1 to {ACTIONS_MAX} actions")
            for action in actions:
                if not isinstance(action, dict) or action.get("type") not in (None, "QUICK_REPLY"):
                    raise ContentRefused("a quick-reply action must be of type QUICK_REPLY")
                _text(action.get("title"), "action title", TITLE_MAX)
                _text(action.get("id"), "action id", ID_MAX)
            if rendered and len(actions) > SESSION_ACTIONS_MAX:
                raise ContentRefused(f"a WhatsApp session message shows at most {SESSION_ACTIONS_MAX} buttons")
        elif name == "twilio/list-picker":
            _text(value.get("body"), "twilio/list-picker body", BODY_MAX)
            _text(value.get("button"), "twilio/list-picker button")
            items = value.get("items")
            if not isinstance(items, list) or not 1 <= len(items) <= ITEMS_MAX:
                raise ContentRefused(f"twilio/list-picker needs 1 to {ITEMS_MAX} items")
            for item in items:
                if not isinstance(item, dict):
                    raise ContentRefused("a list item must be an object")
                _text(item.get("item"), "list item", ITEM_MAX)
                _text(item.get("id"), "list item id", ID_MAX)
                _text(item.get("description"), "list item description", DESCRIPTION_MAX)
        else:
            raise ContentRefused(f"content type {name} is not supported by this fake")


def _fill(value: Any, variables: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: variables.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [_fill(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, variables) for key, item in value.items()}
    return value


@dataclass
class FakeContentApi:
    """Contents created here, by SID, in the order they were created."""

    contents: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def respond(self, method: str, account_sid: str, body: Any) -> tuple[int, Any]:
        if method == "GET":
            with self._lock:
                found = list(self.contents.values())
            meta = {"page": 0, "page_size": len(found), "next_page_url": None, "key": "contents"}
            return 200, {"contents": found, "meta": meta}
        try:
            content = self._created(account_sid, body)
        except ContentRefused as exc:
            return 400, {"code": ERROR_INVALID_CONTENT, "message": str(exc), "status": 400}
        with self._lock:
            self.contents[content["sid"]] = content
        return 201, content

    @staticmethod
    def _created(account_sid: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ContentRefused("a JSON body is required")
        _text(body.get("friendly_name"), "friendly_name")
        _text(body.get("language"), "language")
        variables = body.get("variables") or {}
        if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
            raise ContentRefused("variables must map names to strings")
        check_types(body.get("types"))
        return {
            "sid": "HX" + secrets.token_hex(16),
            "account_sid": account_sid,
            "friendly_name": body["friendly_name"],
            "language": body["language"],
            "variables": variables,
            "types": {name: value for name, value in body["types"].items() if value is not None},
        }

    def render(self, content_sid: str, raw_variables: str | None) -> str:
        """The body a message with this content shows; raises ContentRefused when the
        content is unknown or its filled-in values break the limits."""
        with self._lock:
            content = self.contents.get(content_sid)
        if content is None:
            raise ContentRefused(f"ContentSid {content_sid} was not found")
        try:
            variables = json.loads(raw_variables) if raw_variables else {}
        except ValueError as exc:
            raise ContentRefused("ContentVariables is not JSON") from exc
        if not isinstance(variables, dict) or not all(isinstance(v, str) and v for v in variables.values()):
            raise ContentRefused("ContentVariables must map names to non-empty strings")
        types = _fill(content["types"], {**content["variables"], **variables})
        check_types(types, rendered=True)
        # What the citizen sees: the richest type, the text one where there is no other.
        shown = next((value for name, value in types.items() if name != "twilio/text"), types.get("twilio/text"))
        return shown["body"]
