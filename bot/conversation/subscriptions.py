"""Opting out of and back into notices (STOP/BERHENTI and MULAI).

Keywords are handled here directly, without Rasa, so that stopping messages always
works even when the assistant is down; the NLU intents reach the same function through
the action server.
"""
from __future__ import annotations

from sqlalchemy import select

from bot.db import Database
from bot.conversation.models import Contact, utcnow

OPTED_OUT_REPLY = (
    "Baik, Bapak/Ibu tidak akan menerima pemberitahuan bansos lagi. "
    "Untuk menerima lagi, balas MULAI."
)
OPTED_IN_REPLY = (
    "Baik, Bapak/Ibu akan kembali menerima pemberitahuan bansos. "
    "Untuk berhenti, balas STOP."
)


def set_opted_out(db: Database, conversation_key: str, opted_out: bool) -> str:
    """Switch notices off or on for the contact behind a conversation; the reply text."""
    with db.session() as session:
        contact = session.scalar(
            select(Contact).where(Contact.conversation_key == conversation_key)
        )
        if contact is not None and contact.opted_out != opted_out:
            contact.opted_out = opted_out
            contact.opted_out_at = utcnow() if opted_out else None
    return OPTED_OUT_REPLY if opted_out else OPTED_IN_REPLY
