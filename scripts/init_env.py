"""Write .env from .env.example with fresh local secrets, unless .env already exists.

Without Twilio credentials the app uses the sandbox transport; the generated
TWILIO_AUTH_TOKEN only lets `make chat` sign its requests to the local app.
"""
from __future__ import annotations

import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    target = ROOT / ".env"
    if target.exists():
        return
    generated = {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
        "KANNEL_WEBHOOK_SECRET": secrets.token_urlsafe(24),
    }
    lines = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={generated[key]}" if key in generated and line.endswith("=") else line)
    target.write_text("\n".join(lines) + "\n")
    print("wrote .env with local secrets")


if __name__ == "__main__":
    main()
