"""The one way the app talks to the Rasa server: its REST channel, over HTTP.

Rasa lives in its own virtual environment, so nothing here imports it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests

log = logging.getLogger(__name__)


class RasaUnavailable(RuntimeError):
    """Rasa could not be reached, was too slow, or gave no usable answer."""


@dataclass(frozen=True)
class BotReply:
    text: str
    image: str | None = None


class RasaClient:
    """Sends one user turn to Rasa and returns the bot's replies."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
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

    def reset(self, sender: str) -> None:
        """Restart a conversation's tracker so the bot forgets stale context."""
        url = f"{self.base_url}/conversations/{sender}/tracker/events"
        try:
            self._http.post(url, json={"event": "restart"}, timeout=self.timeout).raise_for_status()
        except requests.RequestException as exc:
            raise RasaUnavailable(f"rasa reset failed: {exc.__class__.__name__}") from exc

    def ping(self) -> bool:
        """True when the Rasa server answers and has a model loaded."""
        try:
            response = self._http.get(f"{self.base_url}/status", timeout=2)
            if response.status_code == 200:
                return bool(response.json().get("model_file"))
            # Without --enable-api /status is absent; the root URL still proves liveness.
            return self._http.get(f"{self.base_url}/", timeout=2).status_code == 200
        except (requests.RequestException, ValueError):
            return False
