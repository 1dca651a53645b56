"""Start the Rasa server as `make run` does: the cached model, the API behind a token.

A Procfile line cannot read `.env` by our rule (the real environment wins, empty values
count as unset), so this launcher reads the settings through bot.config like every
other process, then replaces itself with `rasa run`. Rasa's HTTP API (trackers, model,
status) is enabled because the app restarts a conversation's tracker when staff hand a
chat back; `--auth-token` keeps every other local process out of it.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import InsecureSettings, load_settings  # noqa: E402
from scripts.rasa_model import RASA, ensure_model  # noqa: E402

QUIET_RASA = {
    "RASA_TELEMETRY_ENABLED": "false",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
}


def rasa_command(model: Path, token: str, port: int) -> list[str]:
    """The `rasa run` command line: loopback only, the REST channel and the token-guarded API."""
    return [
        str(RASA), "run", "--enable-api", "--auth-token", token,
        "--interface", "127.0.0.1", "--port", str(port), "--model", str(model),
        "--endpoints", str(ROOT / "endpoints.yml"), "--credentials", str(ROOT / "credentials.yml"),
    ]


def main() -> None:
    settings = load_settings()
    if not settings.rasa_token:
        raise InsecureSettings(
            "RASA_TOKEN is not set: Rasa's API would let any local process read and rewrite "
            "conversations. Set it to a long random value (`make run` writes one into .env)."
        )
    # Rasa listens where the app will call it.
    port = urlsplit(settings.rasa_url).port or 5005
    command = rasa_command(ensure_model(quiet=True), settings.rasa_token, port)
    os.execve(command[0], command, {**os.environ, **QUIET_RASA})


if __name__ == "__main__":
    main()
