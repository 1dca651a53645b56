"""WhatsApp's 24-hour window, and which way a message we send on our own goes.

WhatsApp takes free text only within 24 hours of the citizen's last message to us;
after that Twilio fails it with 63016, and only an approved Content template goes
through, or the message goes by SMS to the same number when that number takes SMS.
This module is the rule alone (no database, no provider), so the sender
(bot/channels/later.py) and the dashboard's "this reply will go by ..." line ask the
same question and get the same answer.

Each kind of later message has its own template (a Content SID from the settings):
- a template that *carries* the message says the same facts (report status, hand-back):
  outside the window it comes first, SMS only without one;
- a template that *announces* the message ("an officer has replied, answer this to
  read it") cannot carry an officer's words: outside the window SMS comes first, and
  the template only where no SMS can go, the text held until the citizen writes back.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.conversation.models import Channel
from bot.rules.phone import is_mobile

WHATSAPP_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class LaterKind:
    """A kind of message the app sends on its own, with the template it may use.

    `approval_text` is the template body to submit to WhatsApp for approval (the
    README lists them); its `{{name}}` variables are what the sender passes.
    """

    name: str
    carries_text: bool
    approval_text: str
    variables: tuple[str, ...] = ()

    def render(self, variables: Mapping[str, str]) -> str:
        """The template as the citizen reads it, for our own copy of what went out."""
        text = self.approval_text
        for name in self.variables:
            text = text.replace("{{" + name + "}}", variables.get(name, ""))
        return text


REPORT_STATUS = LaterKind(
    "report_status",
    carries_text=True,
    approval_text=(
        "Kabar laporan {{reference}}: {{kind}} Bapak/Ibu {{status}}. "
        "Untuk info lengkap, balas pesan ini dengan TIKET dan nomor laporan tersebut."
    ),
    variables=("reference", "kind", "status"),
)
STAFF_REPLY = LaterKind(
    "staff_reply",
    carries_text=False,
    approval_text=(
        "Petugas Asisten Bansos sudah membalas pesan Bapak/Ibu. "
        "Balas pesan ini (misalnya ketik OK) untuk membaca balasannya."
    ),
)
HAND_BACK = LaterKind(
    "hand_back",
    carries_text=True,
    approval_text=(
        "Percakapan dengan petugas sudah selesai. Asisten Bansos kembali melayani "
        "Bapak/Ibu. Ketik MENU untuk melihat layanan, atau PETUGAS untuk petugas lagi."
    ),
)
NOTICE = LaterKind(
    "notice",
    carries_text=False,
    approval_text=(
        "Ada pesan baru dari Asisten Bansos untuk Bapak/Ibu. "
        "Balas pesan ini (misalnya ketik OK) untuk membacanya."
    ),
)
KINDS: dict[str, LaterKind] = {kind.name: kind for kind in (REPORT_STATUS, STAFF_REPLY, HAND_BACK, NOTICE)}


class Way:
    FREE_TEXT = "free_text"  # on the citizen's own channel: WhatsApp inside the window, or SMS
    TEMPLATE = "template"  # WhatsApp, an approved Content template
    SMS = "sms"  # SMS to the number a WhatsApp user wrote from, outside the window
    NONE = "none"


@dataclass(frozen=True)
class Addressee:
    """What the rule needs to know of a contact."""

    address: str
    is_phone: bool
    opted_out: bool
    last_channel: str
    # The citizen's last WhatsApp message to us (UTC), None when there is none.
    last_whatsapp_at: datetime | None

    @property
    def takes_sms(self) -> bool:
        """A mobile number: business-scoped WhatsApp ids and landlines take no SMS."""
        return self.is_phone and is_mobile(self.address)


@dataclass(frozen=True)
class Route:
    way: str
    channel: str | None = None
    template_sid: str | None = None
    # An announcing template went: the message itself waits for the citizen's answer.
    holds_text: bool = False
    # Why nothing can go (Indonesian: the dashboard shows it).
    reason: str = ""

    @property
    def possible(self) -> bool:
        return self.way != Way.NONE


OPTED_OUT = Route(Way.NONE, reason="warga sudah mengirim STOP")
NO_WAY = Route(
    Way.NONE,
    reason=(
        "WhatsApp warga sudah lebih dari 24 jam tidak aktif, tidak ada template WhatsApp "
        "untuk pesan ini, dan alamatnya tidak bisa menerima SMS"
    ),
)


def in_window(addressee: Addressee, now: datetime) -> bool:
    last = addressee.last_whatsapp_at
    return last is not None and now - last < WHATSAPP_WINDOW


def choose_route(addressee: Addressee, kind: LaterKind, template_sid: str | None, now: datetime) -> Route:
    """The way a message of `kind` goes to `addressee` now."""
    if addressee.opted_out:
        return OPTED_OUT
    if addressee.last_channel != Channel.WHATSAPP:
        # An SMS user wrote from the number itself: it takes SMS.
        return Route(Way.FREE_TEXT, Channel.SMS)
    if in_window(addressee, now):
        return Route(Way.FREE_TEXT, Channel.WHATSAPP)
    return outside_window(addressee, kind, template_sid)


def outside_window(addressee: Addressee, kind: LaterKind, template_sid: str | None) -> Route:
    """A WhatsApp user's way once free text is refused: template or SMS, in the kind's order."""
    if addressee.opted_out:
        return OPTED_OUT
    sms = Route(Way.SMS, Channel.SMS) if addressee.takes_sms else None
    template = (
        Route(Way.TEMPLATE, Channel.WHATSAPP, template_sid, holds_text=not kind.carries_text)
        if template_sid
        else None
    )
    for route in (template, sms) if kind.carries_text else (sms, template):
        if route is not None:
            return route
    return NO_WAY


def may_end_as_sms(addressee: Addressee, route: Route) -> bool:
    """Whether a message sent by `route` may reach the citizen as SMS: by the route
    itself, or by the fallback after WhatsApp refuses it (63016, a failed template),
    which goes to every WhatsApp user whose number takes SMS."""
    if not route.possible:
        return False
    return route.channel == Channel.SMS or (route.channel == Channel.WHATSAPP and addressee.takes_sms)


def after_failed_template(addressee: Addressee) -> Route:
    """A template WhatsApp would not deliver: SMS where the number takes it."""
    if addressee.opted_out:
        return OPTED_OUT
    return Route(Way.SMS, Channel.SMS) if addressee.takes_sms else NO_WAY
