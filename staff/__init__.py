"""The staff dashboard blueprint: escalated chats, reports, figures and administration.

Server-rendered pages that work on a cheap laptop and a phone browser, with no
asset from a CDN. Every page calls bot/ services (staff/ never touches the
database) and every POST carries a CSRF token. The blueprint sets up its own
extensions (login sessions, CSRF) when it is registered, so app.py only registers it.
"""
from flask import Blueprint

bp = Blueprint(
    "staff",
    __name__,
    url_prefix="/staff",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

from staff import admin, auth, chats, exports, media, reports, setup, signals  # noqa: E402,F401 - attach routes and set-up to bp
