"""Start one Rasa replica as `make run` does: the cached model, the API behind a token.

A Procfile line cannot read `.env` by our rule (the real environment wins, empty values
count as unset), so this launcher reads the settings through bot.config like every
other process, then replaces itself with `rasa run`. Rasa's HTTP API (trackers, model,
status) is enabled because the app restarts a conversation's tracker when staff hand a
chat back; `--auth-token` keeps every other local process out of it.

Several replicas run from one model, one port each (`--port` or RASA_PORT, else the
port of RASA_URL). With RASA_TRACKER_STORE_URL set, conversations live in Redis rather
than in the replica's memory, so a restarted or replaced replica carries on a
half-filled form: the endpoints file Rasa reads is then endpoints.yml plus a generated
`tracker_store` section (Rasa 3.6 has no command-line option for it). ACTION_ENDPOINT_URL
puts the action server elsewhere than endpoints.yml's port 5055 the same way.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import InsecureSettings, Settings, load_settings  # noqa: E402
from scripts.rasa_model import RASA, cache_dir, ensure_model  # noqa: E402

ENDPOINTS = ROOT / "endpoints.yml"
# Where the generated endpoints files go: git-ignored, next to the app's own state.
GENERATED_ENDPOINTS_DIR = ROOT / "instance"
# Tracker keys are `bansos:tracker:<conversation>`, so the store may share a Redis
# database with other data. Rasa accepts only letters and digits here.
TRACKER_KEY_PREFIX = "bansos"
REDIS_DEFAULT_PORT = 6379

QUIET_RASA = {
    "RASA_TELEMETRY_ENABLED": "false",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
}
# One Sanic worker per replica, said explicitly: the lock store stays in memory, which
# serialises a conversation's turns only within one process (Rasa itself falls back to
# one worker with that lock store), and the app pins each conversation to one replica.
RASA_ENV = {**QUIET_RASA, "SANIC_WORKERS": "1"}
# A replica is one process doing one turn at a time, and replicas scale by cores:
# TensorFlow's own thread pools (one thread per core each, by default) only add
# switching to its small matrices. One thread each cost 15 % less CPU per message in
# one benchmark run and made no difference in the next (README, "CPU per conversational
# turn"). An operator's exported value wins.
TF_THREAD_DEFAULTS = {"TF_INTER_OP_PARALLELISM_THREADS": "1", "TF_INTRA_OP_PARALLELISM_THREADS": "1"}


def rasa_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Rasa's environment: ours over the operator's, the operator's over our defaults."""
    return {**TF_THREAD_DEFAULTS, **environ, **RASA_ENV}


def rasa_command(model: Path, token: str, port: int, endpoints: Path = ENDPOINTS) -> list[str]:
    """The `rasa run` command line: loopback only, the REST channel and the token-guarded API."""
    return [
        str(RASA), "run", "--enable-api", "--auth-token", token,
        "--interface", "127.0.0.1", "--port", str(port), "--model", str(model),
        "--endpoints", str(endpoints), "--credentials", str(ROOT / "credentials.yml"),
    ]


def tracker_store_section(url: str, expiry_seconds: int, key_prefix: str = TRACKER_KEY_PREFIX) -> str:
    """Rasa 3.6's `tracker_store` section (RedisTrackerStore) for a redis:// URL, as YAML.

    Rasa takes host, port, db and password as separate keys, not a URL, so the URL is
    taken apart here. Values are written as JSON scalars, which YAML reads as they are;
    being quoted, a password is never mistaken for Rasa's `${VAR}` syntax. An expiry of
    0 keeps conversations for ever (Rasa sets no expiry then).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(
            "RASA_TRACKER_STORE_URL must look like redis://[:password@]host[:port][/db] "
            "(rediss:// for TLS), without query parameters"
        )
    db = parts.path.strip("/") or "0"
    if not db.isdigit():
        raise ValueError(f"RASA_TRACKER_STORE_URL: the Redis database must be a number, not {db!r}")
    if expiry_seconds < 0:
        raise ValueError("RASA_TRACKER_EXPIRY_SECONDS must be 0 (no expiry) or more")
    # Rasa would ignore any other prefix with no more than a warning.
    if not key_prefix.isalnum():
        raise ValueError(f"tracker key prefix must be letters and digits only, not {key_prefix!r}")
    fields: dict[str, object] = {
        "type": "redis",
        "url": parts.hostname,
        "port": parts.port or REDIS_DEFAULT_PORT,
        "db": int(db),
        "key_prefix": key_prefix,
        "use_ssl": parts.scheme == "rediss",
    }
    # Redis URLs percent-encode the credentials; Rasa wants them as they are.
    if parts.username:
        fields["username"] = unquote(parts.username)
    if parts.password:
        fields["password"] = unquote(parts.password)
    if expiry_seconds:
        fields["record_exp"] = expiry_seconds
    return "\n".join(["tracker_store:", *(f"  {key}: {json.dumps(value)}" for key, value in fields.items())])


def endpoints_text(
    base: str,
    tracker_store_url: str,
    expiry_seconds: int,
    key_prefix: str = TRACKER_KEY_PREFIX,
    action_url: str = "",
) -> str:
    """An endpoints file: `base` (endpoints.yml) with the Redis tracker store, and with
    the action server at `action_url` instead of the base's when one is given.

    The base's comments are left out: they describe the file without a tracker store.
    """
    kept = [line for line in base.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if action_url:
        section = kept.index("action_endpoint:")
        kept[section + 1] = f"  url: {json.dumps(action_url)}"
    store = [tracker_store_section(tracker_store_url, expiry_seconds, key_prefix)] if tracker_store_url else []
    return "\n".join([
        "# Written by scripts/run_rasa.py from endpoints.yml, RASA_TRACKER_STORE_URL and"
        " ACTION_ENDPOINT_URL; edit those instead.",
        *kept,
        *store,
        "",
    ])


def write_private(path: Path, text: str) -> Path:
    """Write `path` readable by its owner only from the first byte: it may hold a password.

    Written to a new file and renamed over `path`, so a replica starting at the same
    moment never reads half a file, and neither a leftover file's looser mode nor a
    descriptor someone kept open on it ever sees the new text.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(partial, path)
    return path


def endpoints_for(
    settings: Settings, port: int, directory: Path = GENERATED_ENDPOINTS_DIR, action_url: str = ""
) -> Path:
    """The endpoints file for the replica on `port`: endpoints.yml itself, or with a
    tracker store and the action server's URL (ACTION_ENDPOINT_URL) put in.

    One generated file per port, so replicas starting together never write the same one.
    """
    if not settings.rasa_tracker_store_url and not action_url:
        return ENDPOINTS
    text = endpoints_text(
        ENDPOINTS.read_text(),
        settings.rasa_tracker_store_url,
        settings.rasa_tracker_expiry_seconds,
        action_url=action_url,
    )
    return write_private(directory / f"rasa-endpoints-{port}.yml", text)


def replica_port(argument: int | None, environ: Mapping[str, str], rasa_url: str) -> int:
    """The port to listen on: `--port`, else RASA_PORT, else the port of RASA_URL (5005 if none).

    RASA_URL names one server; with several replicas each Procfile line says its own port.
    """
    if argument:
        return argument
    if environ.get("RASA_PORT"):
        return int(environ["RASA_PORT"])
    return urlsplit(rasa_url).port or 5005


def shared_model() -> Path:
    """The cached model, trained at most once when several replicas start together.

    ensure_model trains when the model is missing; replicas started at the same moment
    would each train it (minutes of CPU each, for the same file). They take
    turns on a lock file instead: the first trains, the others wait and then find the
    model in the cache. The lock is released before `rasa run` starts.
    """
    lock_path = cache_dir() / ".train.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return ensure_model(quiet=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, help="port of this replica (default: RASA_PORT, else RASA_URL's port)")
    args = parser.parse_args()
    settings = load_settings()
    if not settings.rasa_token:
        raise InsecureSettings(
            "RASA_TOKEN is not set: Rasa's API would let any local process read and rewrite "
            "conversations. Set it to a long random value (`make run` writes one into .env)."
        )
    port = replica_port(args.port, os.environ, settings.rasa_url)
    endpoints = endpoints_for(settings, port, action_url=os.environ.get("ACTION_ENDPOINT_URL", ""))
    command = rasa_command(shared_model(), settings.rasa_token, port, endpoints)
    os.execve(command[0], command, rasa_environment(os.environ))


if __name__ == "__main__":
    main()
