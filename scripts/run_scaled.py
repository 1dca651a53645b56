"""`make run-scaled`: the production shape on this machine, from Procfile.scaled.

Two web hosts (gunicorn each), two single-worker Rasa replicas sharing conversations
in Redis, the action server, the answer workers, two notice dispatchers sharing one
rate in Redis, and the scheduler (planning only), all on PostgreSQL: the topology of
the README's "Running for a whole country", at the size of one machine.

Settings follow the rule of every process (bot/config.py): what the shell exports
wins, then `.env`, then the defaults below, which point at the PostgreSQL and Redis
that run locally. `make run`'s SQLite file is never used: a DATABASE_URL that is not
PostgreSQL is refused, since SQLite is one host's database. The database is created
when missing, migrated, and given the demo data set.

Ports come from WEB1_PORT, WEB2_PORT (8001, 8002), RASA1_PORT, RASA2_PORT (5005,
5006) and ACTIONS_PORT (5055); the tests start the topology on free ones.

    .venv/bin/python scripts/run_scaled.py [--no-demo] [--check]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import load_env_file  # noqa: E402

PROCFILE = ROOT / "Procfile.scaled"
DEFAULTS = {
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/bansos",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "RASA_TRACKER_STORE_URL": "redis://127.0.0.1:6379/1",
    "WEB1_PORT": "8001",
    "WEB2_PORT": "8002",
    "RASA1_PORT": "5005",
    "RASA2_PORT": "5006",
    "ACTIONS_PORT": "5055",
    # The two dispatchers send; the scheduler only plans.
    "SCHEDULER_DISPATCHES": "0",
    # Nine processes use the database: 9 × 8 connections stay under PostgreSQL's
    # default 100 (README, "Database connections").
    "DB_POOL_SIZE": "4",
    "DB_MAX_OVERFLOW": "4",
    # Citizens' photos live in the database, where every web host serves them and the
    # purge deletes them (bot/media/store.py); MEDIA_DIR is one host's folder.
    "MEDIA_STORE": "database",
    # Every process of this one host counts its metrics into one folder (bot/metrics.py).
    "PROMETHEUS_MULTIPROC_DIR": str(ROOT / "instance" / "metrics-scaled"),
}


def scaled_environment(env: dict[str, str]) -> dict[str, str]:
    """The environment every process of Procfile.scaled gets: `env`, with the defaults filled in."""
    merged = dict(env)
    for key, value in DEFAULTS.items():
        if not merged.get(key):
            merged[key] = value
    if make_url(merged["DATABASE_URL"]).get_backend_name() != "postgresql":
        raise SystemExit(
            "run-scaled runs on PostgreSQL: set DATABASE_URL to a postgresql:// URL "
            f"(or leave it unset for {DEFAULTS['DATABASE_URL']})"
        )
    rasa = [f"http://127.0.0.1:{merged[key]}" for key in ("RASA1_PORT", "RASA2_PORT")]
    merged["RASA_URLS"] = ",".join(rasa)
    merged["RASA_URL"] = rasa[0]
    merged["ACTION_ENDPOINT_URL"] = f"http://127.0.0.1:{merged['ACTIONS_PORT']}/webhook"
    # Kannel, `make chat` and the callbacks reach the first web host.
    merged["APP_PORT"] = merged["PORT"] = merged["WEB1_PORT"]
    return merged


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database `url` names, if it does not exist yet."""
    target = make_url(url).set(drivername="postgresql+psycopg")
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database})
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))
                print(f"created database {target.database}")
    finally:
        admin.dispose()


def bansos(env: dict[str, str], *args: str) -> None:
    subprocess.run([str(ROOT / ".venv" / "bin" / "bansos"), *args], env=env, check=True, cwd=ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-demo", action="store_true", help="migrate the database but load no demo data")
    args = parser.parse_args()
    load_env_file()
    env = scaled_environment(dict(os.environ))
    ensure_database(env["DATABASE_URL"])
    bansos(env, "init-db")
    if not args.no_demo:
        bansos(env, "seed-demo")
    print(
        f"\nStarting the scaled shape: web on :{env['WEB1_PORT']} and :{env['WEB2_PORT']}, "
        f"Rasa on :{env['RASA1_PORT']} and :{env['RASA2_PORT']}, actions on :{env['ACTIONS_PORT']}.\n"
        f"In another terminal: 'make chat PORT={env['WEB1_PORT']}'. Ctrl-C stops everything.\n",
        flush=True,
    )
    honcho = str(ROOT / ".venv" / "bin" / "honcho")
    os.chdir(ROOT)
    os.execve(honcho, [honcho, "start", "--env", "/dev/null", "-f", str(PROCFILE)], env)


if __name__ == "__main__":
    main()
