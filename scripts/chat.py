"""A terminal that behaves like a phone: type a message, see the assistant's replies.

It posts correctly signed Twilio webhook requests (SMS or WhatsApp) to the running app,
exactly as Twilio would, so the whole path (signature, storage, Rasa, actions) is real.
With --kannel it is an SMS arriving through Kannel instead: it calls the app's Kannel
endpoint as smsbox's sms-service does (post-url, the text in the body, UCS-2 as
UTF-16BE when it holds anything beyond GSM-7, KANNEL_WEBHOOK_SECRET as HTTP Basic).
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET

import requests
from sqlalchemy.exc import SQLAlchemyError
from twilio.request_validator import RequestValidator

from bot.config import load_env_file, load_settings
from bot.db import Database
from bot.channels.kannel import INBOUND_PATH, WEBHOOK_USER, Coding, coding_for
from bot.channels.sandbox import latest_id, sent_to

SERVICE_NUMBER = "+6281100000000"
KANNEL_SHORT_CODE = "99171"


def parse_twiml(xml_text: str) -> list[str]:
    root = ET.fromstring(xml_text)
    return [(message.text or "").strip() for message in root.iter("Message")]


def build_form(sender: str, body: str, whatsapp: bool) -> dict[str, str]:
    prefix = "whatsapp:" if whatsapp else ""
    return {
        "MessageSid": "SM" + secrets.token_hex(16),
        "AccountSid": os.environ.get("TWILIO_ACCOUNT_SID") or "AC" + "0" * 32,
        "From": prefix + sender,
        "To": prefix + SERVICE_NUMBER,
        "Body": body,
        "NumMedia": "0",
    }


def post_as_kannel(url: str, sender: str, text: str, secret: str) -> requests.Response:
    """One SMS as smsbox hands it to its sms-service post-url."""
    coding = coding_for(text)
    charset = "UTF-16BE" if coding == Coding.UCS2 else "UTF-8"
    params = {
        "id": str(uuid.uuid4()),
        "from": sender,
        "to": KANNEL_SHORT_CODE,
        "coding": coding,
        "charset": charset,
    }
    return requests.post(
        f"{url.rstrip('/')}{INBOUND_PATH}",
        params=params,
        data=text.encode(charset),
        headers={"Content-Type": f'text/plain; charset="{charset}"'},
        auth=(WEBHOOK_USER, secret),
        timeout=20,
    )


def chat_kannel(url: str, sender: str) -> int:
    secret = os.environ.get("KANNEL_WEBHOOK_SECRET", "")
    if not secret:
        print("KANNEL_WEBHOOK_SECRET is not set (add it to .env and restart `make run`).", file=sys.stderr)
        return 1
    print(f"Chat via SMS through Kannel as {sender} -> {url}. Ctrl-D or /quit to leave.")
    while True:
        try:
            text = input("anda> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if text.strip() == "/quit":
            return 0
        try:
            response = post_as_kannel(url, sender, text, secret)
        except requests.RequestException as exc:
            print(f"(app not reachable at {url}: {exc.__class__.__name__}; is `make run` running?)")
            continue
        if response.status_code != 200:
            print(f"(HTTP {response.status_code}: {response.text.strip()[:200]})")
            continue
        if response.text:
            print("bot> " + response.text.replace("\n", "\n     "))
        else:
            print("(no SMS back: a staff member has this chat)")


def follow_sandbox(sender: str, interval: float = 2.0) -> None:
    """Print what is sent to this phone later (a late answer, a staff reply, a notice), as a phone would.

    Only in sandbox mode: with Twilio credentials such messages go to the real phone.
    """
    db = Database(load_settings().database_url)
    try:
        after = latest_id(db)
        while True:
            time.sleep(interval)
            for item in sent_to(db, sender, after):
                label = "petugas" if item.from_staff else "bot" if item.is_answer else "info"
                print(f"\r{label}> " + item.body.replace("\n", "\n     ") + "\nanda> ", end="", flush=True)
                after = item.id
    except SQLAlchemyError as exc:
        print(
            f"\r(messages sent later cannot be shown: {exc.__class__.__name__} reading "
            f"{db.engine.url.render_as_string(hide_password=True)}; export the same DATABASE_URL "
            "as the running app)\nanda> ",
            end="", flush=True,
        )


def main() -> int:
    load_env_file()
    parser = argparse.ArgumentParser(description=__doc__)
    channel = parser.add_mutually_exclusive_group()
    channel.add_argument("--sms", action="store_true", help="chat as an SMS user (default)")
    channel.add_argument("--whatsapp", action="store_true", help="chat as a WhatsApp user")
    channel.add_argument(
        "--kannel", action="store_true", help="chat as an SMS user whose SMS come through Kannel"
    )
    parser.add_argument("--from", dest="sender", default="+6281234500001", help="your phone number")
    parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('PORT', '8000')}")
    args = parser.parse_args()
    if args.kannel:
        return chat_kannel(args.url, args.sender)

    token = os.environ.get("TWILIO_AUTH_TOKEN", "")
    if not token:
        print("TWILIO_AUTH_TOKEN is not set (make run writes it to .env).", file=sys.stderr)
        return 1
    base = os.environ.get("PUBLIC_BASE_URL") or args.url
    webhook = f"{base.rstrip('/')}/webhooks/twilio/messages"
    validator = RequestValidator(token)
    name = "WhatsApp" if args.whatsapp else "SMS"
    if not os.environ.get("TWILIO_ACCOUNT_SID"):
        threading.Thread(target=follow_sandbox, args=(args.sender,), daemon=True).start()
    print(f"Chat via {name} as {args.sender} -> {args.url}. Ctrl-D or /quit to leave.")
    while True:
        try:
            text = input("anda> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if text.strip() == "/quit":
            return 0
        form = build_form(args.sender, text, args.whatsapp)
        headers = {"X-Twilio-Signature": validator.compute_signature(webhook, form)}
        try:
            response = requests.post(
                f"{args.url.rstrip('/')}/webhooks/twilio/messages", data=form, headers=headers, timeout=20
            )
        except requests.RequestException as exc:
            print(f"(app not reachable at {args.url}: {exc.__class__.__name__}; is `make run` running?)")
            continue
        if response.status_code != 200:
            print(f"(HTTP {response.status_code}: {response.text.strip()[:200]})")
            continue
        for reply in parse_twiml(response.text):
            print("bot> " + reply.replace("\n", "\n     "))


if __name__ == "__main__":
    sys.exit(main())
