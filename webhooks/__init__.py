"""Blueprints facing the messaging providers (one module per provider) and the probes.

Every module here that defines a blueprint `bp` is registered by the app, so a new
provider's webhook module needs no line anywhere else.
"""
from __future__ import annotations

import importlib
import pkgutil

from flask import Blueprint


def blueprints() -> list[Blueprint]:
    """The blueprint of each module in this package, in module-name order."""
    found = []
    for module in sorted(info.name for info in pkgutil.iter_modules(__path__)):
        blueprint = getattr(importlib.import_module(f"{__name__}.{module}"), "bp", None)
        if isinstance(blueprint, Blueprint):
            found.append(blueprint)
    return found
