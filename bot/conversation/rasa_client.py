"""The one way the app talks to the Rasa servers: their REST channel, over HTTP.

Rasa lives in its own virtual environment, so nothing here imports it.

Several single-worker Rasa replicas (RASA_URLS) share the load. Rasa Open Source
serialises one conversation's turns with its lock store, and its Redis lock store is
not safe across replicas, so every conversation key is pinned to one replica by
rendezvous (highest random weight) hashing: each key ranks the replicas by a hash of
(replica, key) and uses the first that answers. Adding or removing a replica moves
only the conversations that ranked it first, and a replica that is down sends its
conversations to their second choice, the same one from every web host, with no
shared table to agree on. The conversation itself lives in the shared tracker store
(scripts/run_rasa.py), so the second choice continues it where it was. Two turns of
one conversation never run at once anywhere: bot/conversation/turns.py claims each
turn in the database first.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pycurl

from bot import metrics
from bot.conversation.choices import Choice, from_buttons

log = logging.getLogger(__name__)
# Seconds the in-form check may take while a webhook waits for it.
_FORM_CHECK_TIMEOUT = 2.0
# Seconds to open a connection: a replica that is down refuses at once on its own
# host; one whose host is gone must not hold the turn long before the next is tried.
_CONNECT_TIMEOUT = 1.0
_PING_TIMEOUT = 2.0
_JSON_HEADERS = ["Content-Type: application/json"]


def rendezvous_order(replicas: Sequence[str], key: str) -> list[str]:
    """The replicas in the order `key` tries them: the same order on every host."""

    def weight(replica: str) -> bytes:
        return hashlib.blake2b(f"{replica}\n{key}".encode(), digest_size=8).digest()

    return sorted(replicas, key=weight, reverse=True)


class RasaRefused(Exception):
    """A replica answered with an HTTP error status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class RasaNotAnswered(Exception):
    """A call that got no HTTP answer at all.

    `sent`: whether any of the request left for the replica. One that never did (a
    refused connection, an unknown host, a connect time-out) certainly did not run the
    turn, so the next replica may be asked; one that did may still be running it.
    """

    def __init__(self, kind: str, sent: bool, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.sent = sent


# What a failed call was, for the metrics (bot/metrics.py) and for whether the turn may
# have run.
_Failure = (RasaNotAnswered, RasaRefused, ValueError)


def failure_kind(exc: Exception) -> str:
    """`unreachable`, `timeout`, `http_error`, `bad_answer`, or `other` (counted as such)."""
    if isinstance(exc, RasaNotAnswered):
        return exc.kind
    if isinstance(exc, RasaRefused):
        return "http_error"
    return "bad_answer" if isinstance(exc, ValueError) else "other"


def _maybe_ran(exc: Exception) -> bool:
    """Whether the request reached Rasa with no answer coming back (a time-out, a
    connection dropped mid-turn), so the turn may have run."""
    return isinstance(exc, RasaNotAnswered) and exc.sent


# libcurl's errors that mean no connection to the replica could be opened.
_NEVER_CONNECTED = frozenset({pycurl.E_COULDNT_RESOLVE_HOST, pycurl.E_COULDNT_CONNECT})


def _not_answered(handle: pycurl.Curl, error: pycurl.error) -> RasaNotAnswered:
    """libcurl's error as our terms: a time-out after the request left is the replica
    being slow; anything before it left, or a connection dropped, is it being away.

    A kept-alive connection found dead when the request went out is tried again on a
    new one by libcurl itself, and the bytes written to the dead one still count in
    REQUEST_SIZE: a replica that then refuses the new connection was stopped, and
    never saw the turn.
    """
    code, detail = error.args
    sent = code not in _NEVER_CONNECTED and handle.getinfo(pycurl.REQUEST_SIZE) > 0
    kind = "timeout" if code == pycurl.E_OPERATION_TIMEDOUT and sent else "unreachable"
    return RasaNotAnswered(kind, sent, f"{detail} (curl {code})")


def _with_query(path: str, params: dict[str, str] | None) -> str:
    return path + ("?" + urlencode(params) if params else "")


class _Handles(threading.local):
    """One libcurl handle per thread: a handle must not be used by two threads at once,
    and each keeps its connections to the replicas open from one call to the next."""

    def __init__(self) -> None:
        self.handle = pycurl.Curl()


class RasaUnavailable(RuntimeError):
    """Rasa could not be reached, was too slow, or gave no usable answer.

    `maybe_ran`: the request reached Rasa and no answer came back (a time-out, a
    connection dropped mid-turn), so the turn may have run. That is Rasa being busy,
    not down: nobody gets an apology for it, and the follow-up asks Rasa's tracker
    before running the turn again.
    """

    def __init__(self, message: str, maybe_ran: bool = False) -> None:
        super().__init__(message)
        self.maybe_ran = maybe_ran


@dataclass(frozen=True)
class BotReply:
    text: str
    image: str | None = None
    # The answers the reply offers to tap (its Rasa buttons), bot/conversation/choices.py.
    choices: tuple[Choice, ...] = ()


class RasaClient:
    """Sends one user turn to the conversation's Rasa replica and returns the bot's replies."""

    def __init__(self, replicas: str | Sequence[str], timeout: float, token: str = "") -> None:
        urls = [replicas] if isinstance(replicas, str) else list(replicas)
        self.replicas = tuple(url.rstrip("/") for url in urls)
        if not self.replicas:
            raise ValueError("at least one Rasa URL is needed")
        self.timeout = timeout
        # Rasa's HTTP API (trackers, status) answers only with `rasa run --auth-token`'s
        # token, which Rasa reads from the `token` query parameter; its REST channel
        # needs none, so the token travels only on the calls that need it.
        self._auth = {"token": token} if token else {}
        # Kept-alive connections, through libcurl: a new TCP connection per message costs
        # more than the NLU itself on a small machine, and urllib3's pure-Python request
        # and response handling cost four times libcurl's CPU per call (issue 15).
        self._handles = _Handles()

    def _call(
        self,
        sender: str,
        path: str,
        timeout: float | None = None,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        """One HTTP call for `sender`'s conversation, at its replica or, if down, the next:
        a POST of `body` as JSON, else a GET; the decoded JSON answer.

        Only a connection that could not be opened moves on: a replica that accepted
        the request and then timed out may still be running the turn, and the same
        turn sent to another replica would run twice.
        """
        read_timeout = self.timeout if timeout is None else timeout
        target = _with_query(path, params)
        data = None if body is None else json.dumps(body).encode()
        order = rendezvous_order(self.replicas, sender)
        for rank, base in enumerate(order):
            try:
                status, answer = self._request(base + target, data, min(_CONNECT_TIMEOUT, read_timeout), read_timeout)
            except RasaNotAnswered as exc:
                if exc.sent or rank == len(order) - 1:
                    raise
                log.warning("Rasa replica %s unreachable (%s); trying the next", base, exc)
                continue
            if status >= 400:
                raise RasaRefused(status)
            return json.loads(answer)
        raise AssertionError("unreachable: the loop returns or raises")

    def _request(self, url: str, data: bytes | None, connect_timeout: float, timeout: float) -> tuple[int, bytes]:
        """One HTTP request on this thread's handle (a POST of `data`, else a GET):
        the status and the body, or RasaNotAnswered.

        `timeout` bounds the whole call. Only the settings are reset between calls,
        not the handle's open connections. No proxy: the replicas are the operator's
        own hosts, and an exported http_proxy must not come between.
        """
        handle = self._handles.handle
        handle.reset()
        answer = io.BytesIO()
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.NOSIGNAL, 1)
        handle.setopt(pycurl.PROXY, "")
        handle.setopt(pycurl.MAXCONNECTS, len(self.replicas))
        # libcurl reads 0 as "no limit": a time-out below a millisecond is one.
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, round(connect_timeout * 1000)))
        handle.setopt(pycurl.TIMEOUT_MS, max(1, round(timeout * 1000)))
        handle.setopt(pycurl.WRITEDATA, answer)
        if data is not None:
            handle.setopt(pycurl.HTTPHEADER, _JSON_HEADERS)
            handle.setopt(pycurl.POSTFIELDS, data)
        try:
            handle.perform()
        except pycurl.error as exc:
            raise _not_answered(handle, exc) from exc
        return handle.getinfo(pycurl.RESPONSE_CODE), answer.getvalue()

    def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[BotReply]:
        """Ask Rasa for the answer to `text`.

        Rasa's REST channel answers 200 with `[]` even when processing failed, and every
        turn of our assistant says something, so an empty list counts as a failure.
        """
        payload = {"sender": sender, "message": text, "metadata": metadata}
        try:
            body = self._call(sender, "/webhooks/rest/webhook", body=payload)
        except _Failure as exc:
            kind = failure_kind(exc)
            metrics.count_rasa_error(kind)
            raise RasaUnavailable(f"rasa request failed: {kind}", _maybe_ran(exc)) from exc
        replies = [
            BotReply(text=item.get("text") or "", image=item.get("image"), choices=from_buttons(item.get("buttons")))
            for item in body
            if isinstance(item, dict) and (item.get("text") or item.get("image"))
        ] if isinstance(body, list) else []
        if not replies:
            metrics.count_rasa_error("no_answer")
            raise RasaUnavailable("rasa answered with no messages")
        return replies

    def replies_to(self, sender: str, message_id: int) -> list[str] | None:
        """What Rasa answered to our stored message `message_id`, None if it did not answer it.

        Rasa's tracker keeps each user event with the metadata we sent (the message id)
        and the bot events that followed it, so a turn whose outcome we lost can be
        told apart from one Rasa never saw. A turn that left no bot text (an action
        server that was down) was not answered, as in `send`, and may be run again.
        """
        try:
            tracker = self._call(
                sender, f"/conversations/{sender}/tracker", params={**self._auth, "include_events": "ALL"}
            )
            events = tracker.get("events") or []
        except (*_Failure, AttributeError) as exc:
            raise RasaUnavailable(f"rasa tracker read failed: {failure_kind(exc)}") from exc
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
            tracker = self._call(
                sender,
                f"/conversations/{sender}/tracker",
                # The citizen's webhook waits on this; a slow Rasa means "no form".
                timeout=min(self.timeout, _FORM_CHECK_TIMEOUT),
                params={**self._auth, "include_events": "NONE"},
            )
            return bool((tracker.get("active_loop") or {}).get("name"))
        except (*_Failure, AttributeError):
            return False

    def reset(self, sender: str) -> None:
        """Restart a conversation's tracker so the bot forgets stale context."""
        try:
            self._call(
                sender, f"/conversations/{sender}/tracker/events", body={"event": "restart"}, params=self._auth
            )
        except _Failure as exc:
            raise RasaUnavailable(f"rasa reset failed: {failure_kind(exc)}") from exc

    def ping(self) -> bool:
        """True when some Rasa replica answers with a model loaded: conversations of a
        replica that is down go to the next one, so the service still answers."""
        return any(self.replica_ready(base) for base in self.replicas)

    def replica_ready(self, base: str) -> bool:
        """True when the Rasa server at `base` answers and has a model loaded."""
        status_url = base + _with_query("/status", self._auth)
        try:
            status, answer = self._request(status_url, None, _CONNECT_TIMEOUT, _PING_TIMEOUT)
            if status == 200:
                return bool(json.loads(answer).get("model_file"))
            if status in (401, 403):
                # A wrong or missing RASA_TOKEN: chats could not be handed back nor
                # follow-ups settled, so Rasa is not ready for this app.
                log.error("Rasa refused RASA_TOKEN (HTTP %d)", status)
                return False
            # Without --enable-api /status is absent; the root URL still proves liveness.
            return self._request(f"{base}/", None, _CONNECT_TIMEOUT, _PING_TIMEOUT)[0] == 200
        except (RasaNotAnswered, ValueError, AttributeError):
            return False
