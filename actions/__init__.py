"""Custom actions for the Rasa action server (``python -m rasa_sdk --actions actions``).

Each module is a thin adapter over the services in ``bot/``. Every module is
imported below, one per line, so its action classes are defined (and so
registered by the SDK) as soon as the package is loaded; a new module gets its
own import line here. Importing must not open a database or network connection.
"""

from actions import base
from actions import handoff
from actions import menu
from actions import reports
from actions import runtime
from actions import status
from actions import subscriptions

# The action server keys the NIK look-up counter with SECRET_KEY, so it must not start
# without one; rasa_sdk imports this package as it starts, before serving anything.
runtime.settings()

__all__ = ["base", "handoff", "menu", "reports", "runtime", "status", "subscriptions"]
