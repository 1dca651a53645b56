"""The least a message can cost the web process on this stack: scripts/bench_app.py's floor row.

The Twilio webhook as gunicorn and Flask serve it, its signature checked by the app's
own `signed`, one call to Rasa by the app's own RasaClient, and its texts answered in
TwiML by the app's own `twiml`, with nothing stored and no rule applied. bench_app runs
it under the same gunicorn.conf.py (threads, masked access log) as the app, so the
app's CPU per message less this row's is what our own code costs (issue 15's target
is the app's CPU per message at most 10 % of Rasa's).

    gunicorn --config gunicorn.conf.py 'scripts.bench_floor:create_app()'
"""
from __future__ import annotations

from types import SimpleNamespace

from flask import Flask, Response, request

from bot.channels.twilio import parse_inbound
from bot.config import load_settings
from bot.conversation.rasa_client import RasaClient
from webhooks.twilio import signed, twiml


def create_app() -> Flask:
    settings = load_settings()
    rasa = RasaClient(settings.rasa_replicas, settings.rasa_timeout, settings.rasa_token)
    app = Flask(__name__)
    # `signed` reads the auth token and the public URL from the app's services.
    app.extensions["bansos"] = SimpleNamespace(settings=settings)

    @app.post("/webhooks/twilio/messages")
    @signed
    def messages() -> Response:
        inbound = parse_inbound(request.form)
        replies = rasa.send(inbound.sender, inbound.body, {"channel": "whatsapp", "message_id": 0})
        return twiml([reply.text for reply in replies if reply.text])

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok", mimetype="text/plain")

    return app
