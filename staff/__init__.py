"""The staff dashboard blueprint (login, escalated chats, reports)."""
from flask import Blueprint

bp = Blueprint("staff", __name__, url_prefix="/staff", template_folder="templates")
