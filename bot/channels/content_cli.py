"""`bansos content sync`: create WhatsApp's button and list contents at Twilio, once.

Attached to the `bansos` group with `main.add_command(content)`. Run it at deploy
(it is idempotent: contents already there, found by friendly name, are kept).
"""
from __future__ import annotations

import click
from twilio.base.exceptions import TwilioException

from bot.channels.buttons import ButtonContents
from bot.channels.twilio import make_client
from bot.config import load_settings


@click.group()
def content() -> None:
    """Twilio Content API: WhatsApp buttons and lists."""


@content.command("sync")
def sync_command() -> None:
    """Create the button and list contents Twilio does not have yet; print each SID."""
    settings = load_settings()
    if not settings.twilio_enabled:
        raise click.ClickException("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are needed")
    try:
        synced = ButtonContents(make_client(settings)).sync()
    except (TwilioException, OSError) as exc:
        raise click.ClickException(f"Twilio refused or could not be reached: {exc}") from exc
    for name, sid, created in synced:
        click.echo(f"{name}\t{sid}\t{'created' if created else 'kept'}")
    click.echo(f"{sum(created for _, _, created in synced)} created, {len(synced)} in all")
