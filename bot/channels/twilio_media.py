"""Twilio's side of inbound media: download an item with the account's credentials,
and delete it at Twilio once we hold our own copy (bot/media/intake.py).

Twilio serves a media URL only with HTTP Basic auth (account SID and auth token) and
answers with a redirect to a short-lived link on its CDN. requests follows it and
drops the credentials when the host changes, so they go to Twilio's API alone; and
they are never sent to a URL outside Twilio's API (TWILIO_API_BASE in tests), nor
for another account's media.
"""
from __future__ import annotations

import logging
import re
import time

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException

from bot.channels.twilio import make_client
from bot.config import Settings
from bot.media.checks import check_size
from bot.media.intake import Download, MediaGone, MediaUnavailable

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
_MEDIA_PATH = re.compile(
    r"/2010-04-01/Accounts/(?P<account>AC[0-9a-fA-F]{32})/Messages/(?P<message>[A-Za-z]{2}[0-9a-fA-F]{32})"
    r"/Media/(?P<media>ME[0-9a-fA-F]{32})"
)
_CHUNK_BYTES = 64 * 1024


class TwilioMedia:
    """A `MediaSource` (bot/media/intake.py) for Twilio's MediaUrl links."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.api_base = settings.twilio_api_base or TWILIO_API
        self.client = make_client(settings)

    def _sids(self, url: str) -> tuple[str, str, str]:
        """(account, message, media) SIDs of one of our account's media URLs; MediaGone otherwise."""
        if not url.startswith(self.api_base + "/"):
            raise MediaGone("not a Twilio media URL")
        found = _MEDIA_PATH.fullmatch(url[len(self.api_base):])
        if found is None or found["account"] != self.settings.twilio_account_sid:
            raise MediaGone("not a media URL of this account")
        return found["account"], found["message"], found["media"]

    def download(self, url: str, max_bytes: int) -> Download:
        self._sids(url)
        timeout = self.settings.twilio_http_timeout
        deadline = time.monotonic() + self.settings.media_fetch_timeout
        credentials = (self.settings.twilio_account_sid, self.settings.twilio_auth_token)
        try:
            with requests.get(url, auth=credentials, timeout=(timeout, timeout), stream=True) as response:
                if response.status_code in (404, 410):
                    raise MediaGone(f"http {response.status_code}")
                if response.status_code != 200:
                    raise MediaUnavailable(f"http {response.status_code}")
                length = response.headers.get("Content-Length", "")
                if length.isdigit():
                    check_size(int(length), max_bytes)
                chunks: list[bytes] = []
                received = 0
                for chunk in response.iter_content(_CHUNK_BYTES):
                    received += len(chunk)
                    check_size(received, max_bytes)
                    if time.monotonic() > deadline:
                        raise MediaUnavailable("download too slow")
                    chunks.append(chunk)
                return Download(b"".join(chunks), response.headers.get("Content-Type", ""))
        except requests.RequestException as exc:
            raise MediaUnavailable(exc.__class__.__name__) from exc

    def discard(self, url: str) -> None:
        account, message, media = self._sids(url)
        try:
            self.client.api.v2010.accounts(account).messages(message).media(media).delete()
        except TwilioRestException as exc:
            if exc.status == 404:
                return
            raise MediaUnavailable(f"http {exc.status}") from exc
        except (TwilioException, OSError) as exc:
            raise MediaUnavailable(exc.__class__.__name__) from exc
