"""Write .env from .env.example with fresh local secrets, and add any secret it lacks.

Without Twilio credentials the app uses the sandbox transport; the generated
TWILIO_AUTH_TOKEN only lets `make chat` sign its requests to the local app. A `.env`
written before a secret was introduced (RASA_TOKEN) gets that secret added, and
nothing else in it is changed.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parent.parent

GENERATED: dict[str, Callable[[], str]] = {
    "SECRET_KEY": lambda: secrets.token_urlsafe(32),
    "TWILIO_AUTH_TOKEN": lambda: secrets.token_hex(16),
    "KANNEL_WEBHOOK_SECRET": lambda: secrets.token_urlsafe(24),
    "RASA_TOKEN": lambda: secrets.token_urlsafe(32),
    "METRICS_TOKEN": lambda: secrets.token_urlsafe(32),
}


def fresh_env(example: str) -> str:
    """The example's lines, with a new value for every generated secret left empty."""
    lines = []
    for line in example.splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={GENERATED[key]()}" if key in GENERATED and line.endswith("=") else line)
    return "\n".join(lines) + "\n"


def missing_secrets(existing: dict[str, str | None]) -> list[str]:
    """Lines for the generated secrets an existing .env leaves unset or empty."""
    return [f"{key}={make()}" for key, make in GENERATED.items() if not existing.get(key)]


def main(root: Path = ROOT) -> None:
    target = root / ".env"
    if not target.exists():
        target.write_text(fresh_env((root / ".env.example").read_text()))
        print("wrote .env with local secrets")
        return
    added = missing_secrets(dotenv_values(target))
    if added:
        text = target.read_text()
        separator = "" if not text or text.endswith("\n") else "\n"
        target.write_text(text + separator + "\n".join(added) + "\n")
        print("added to .env: " + ", ".join(line.split("=", 1)[0] for line in added))


if __name__ == "__main__":
    main()
