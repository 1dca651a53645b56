"""The one way the app talks to the Rasa server: its REST channel, over HTTP.

Rasa lives in its own virtual environment, so nothing here imports it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests

log = logging.getLogger(__name__)
# Seconds the in-form check may take while a webhook waits for it.
_FORM_CHECK_TIMEOUT = 2.0


class RasaUnavailable(RuntimeError):
    """Rasa could not be reached, was too slow, or gave no usable answer."""


@dataclass(frozen=True)
class BotReply:
    text: str
    image: str | None = None


class RasaClient:
    """Sends one user turn to Rasa and returns the bot's replies."""

    def __init__(self, base_url: str, timeout: float, token: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # Rasa's HTTP API (trackers, status) answers only with `rasa run --auth-token`'s
        # token, which Rasa reads from the `token` query parameter; its REST channel
        # needs none, so the token travels only on the calls that need it.
        self._auth = {"token": token} if token else {}
        # One pooled HTTP session per process: a new TCP connection per message
        # costs more than the NLU itself on a small machine.
        self._http = requests.Session()

    def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[BotReply]:
        """Ask Rasa for the answer to `text`.

        Rasa's REST channel answers 200 with `[]` even when processing failed, and every
        turn of our assistant says something, so an empty list counts as a failure.
        """
        url = f"{self.base_url}/webhooks/rest/webhook"
        payload = {"sender": sender, "message": text, "metadata": metadata}
        try:
            response = self._http.post(url, json=payload, timeout=self.timeout)
            response.raise_for_status()
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise RasaUnavailable(f"rasa request failed: {exc.__class__.__name__}") from exc
        replies = [
            BotReply(text=item.get("text") or "", image=item.get("image"))
            for item in body
            if isinstance(item, dict) and (item.get("text") or item.get("image"))
        ]
        if not replies:
            raise RasaUnavailable("rasa answered with no messages")
        return replies

    def replies_to(self, sender: str, message_id: int) -> list[str] | None:
        """What Rasa answered to our stored message `message_id`, None if it did not answer it.

        Rasa's tracker keeps each user event with the metadata we sent (the message id)
        and the bot events that followed it, so a turn whose outcome we lost can be
        told apart from one Rasa never saw. A turn that left no bot text (an action
        server that was down) was not answered, as in `send`, and may be run again.
        """
        url = f"{self.base_url}/conversations/{sender}/tracker"
        try:
            response = self._http.get(
                url, params={**self._auth, "include_events": "ALL"}, timeout=self.timeout
            )
            response.raise_for_status()
            events = response.json().get("events") or []
        except (requests.RequestException, ValueError, AttributeError) as exc:
            raise RasaUnavailable(f"rasa tracker read failed: {exc.__class__.__name__}") from exc
        texts: list[str] | None = None
        for event in events:
            kind = event.get("event")
            if kind == "user":
                if texts is not None:
                    break
                if (event.get("metadata") or {}).get("message_id") == message_id:
                    texts = []
            elif kind == "bot" and texts is not None and event.get("text"):
                texts.append(event["text"])
        return texts or None

    def in_form(self, sender: str) -> bool:
        """Whether the conversation is half-way through a form (Rasa's active loop).

        A citizen waiting for an officer may start a report with a keyword; the answers
        to the form's questions are then for the bot, not the officer. Unreadable
        counts as no: the message then waits for the officer, and nothing is lost.
        """
        try:
            response = self._http.get(
                f"{self.base_url}/conversations/{sender}/tracker",
                params={**self._auth, "include_events": "NONE"},
                # The citizen's webhook waits on this; a slow Rasa means "no form".
                timeout=min(self.timeout, _FORM_CHECK_TIMEOUT),
            )
            response.raise_for_status()
            return bool((response.json().get("active_loop") or {}).get("name"))
        except (requests.RequestException, ValueError, AttributeError):
            return False

    def reset(self, sender: str) -> None:
        """Restart a conversation's tracker so the bot forgets stale context."""
        url = f"{self.base_url}/conversations/{sender}/tracker/events"
        try:
            self._http.post(
                url, json={"event": "restart"}, params=self._auth, timeout=self.timeout
            ).raise_for_status()
        except requests.RequestException as exc:
            raise RasaUnavailable(f"rasa reset failed: {exc.__class__.__name__}") from exc

    def ping(self) -> bool:
        """True when the Rasa server answers and has a model loaded."""
        try:
            response = self._http.get(f"{self.base_url}/status", params=self._auth, timeout=2)
            if response.status_code == 200:
                return bool(response.json().get("model_file"))
            if response.status_code in (401, 403):
                # A wrong or missing RASA_TOKEN: chats could not be handed back nor
                # follow-ups settled, so Rasa is not ready for this app.
                log.error("Rasa refused RASA_TOKEN (HTTP %d)", response.status_code)
                return False
            # Without --enable-api /status is absent; the root URL still proves liveness.
            return self._http.get(f"{self.base_url}/", timeout=2).status_code == 200
        except (requests.RequestException, ValueError):
            return False
