"""Citizens' phones for end-to-end tests: each posts signed Twilio webhooks to the app.

Kept out of conftest.py so every test module shares one number counter (a conftest
imported by name as well would get a second one, and two tests the same phone).
"""
from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient

from bot.registry.demo import DEMO_PERSONAS, Persona
from tests.support.twilio import TEST_AUTH_TOKEN, TwilioSigner, sms_form, whatsapp_form

_numbers = itertools.count(1)


@dataclass
class Phone:
    """A citizen's phone talking to the app through signed Twilio webhooks."""

    client: FlaskClient
    number: str
    whatsapp: bool = False

    def send(self, text: str, media: list[tuple[str, str]] | None = None) -> list[str]:
        form: dict[str, Any] = (
            whatsapp_form(self.number, text, media) if self.whatsapp else sms_form(self.number, text)
        )
        response = TwilioSigner(TEST_AUTH_TOKEN).post(self.client, "/webhooks/twilio/messages", form)
        assert response.status_code == 200, response.data
        return [(m.text or "") for m in ET.fromstring(response.data).iter("Message")]

    def say(self, text: str) -> str:
        """All replies to `text` as one string, for assertions on content."""
        return "\n".join(self.send(text))


PERSONAS: dict[str, Persona] = {persona.key: persona for persona in DEMO_PERSONAS}


def persona_phone(client: FlaskClient, key: str, whatsapp: bool = False) -> Phone:
    """The phone registered to a demo household."""
    number = PERSONAS[key].phone
    assert number, f"persona {key} has no phone"
    return Phone(client, number, whatsapp=whatsapp)


def new_number() -> str:
    return f"+62813{next(_numbers):08d}"
