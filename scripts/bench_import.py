"""Benchmark the CSV import: 100,000 recipients and 100,000 disbursements.

Generates the files with the demo generator into a temporary directory, imports
them into a fresh SQLite database (and into a fresh PostgreSQL schema when
TEST_DATABASE_URL is set), twice each: the first run inserts, the second is the
idempotent re-import that updates every row. Prints rows/s and seconds.

    .venv/bin/python scripts/bench_import.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.db import Database  # noqa: E402
from bot.registry.demo import generate, write_disbursements_csv, write_recipients_csv  # noqa: E402
from bot.registry.importer import ImportReport, import_disbursements, import_recipients  # noqa: E402
from tools.databases import fresh_database_url, postgres_base_url  # noqa: E402


def _line(backend: str, run: str, report: ImportReport) -> str:
    return (
        f"{backend:<10} {report.kind:<13} {run:<9} {report.rows:>8} rows "
        f"{report.seconds:7.2f} s {report.rows_per_second:>9,.0f} rows/s "
        f"({report.inserted} new, {report.updated} updated, {len(report.errors)} bad)"
    )


def _bench(backend: str, tmp: Path, recipients_csv: Path, disbursements_csv: Path) -> None:
    with fresh_database_url(backend, tmp) as url:
        db = Database(url)
        try:
            db.upgrade()
            for run in ("insert", "re-import"):
                print(_line(backend, run, import_recipients(db, recipients_csv)), flush=True)
            for run in ("insert", "re-import"):
                print(_line(backend, run, import_disbursements(db, disbursements_csv)), flush=True)
        finally:
            db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows per file (default 100000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bansos-bench-") as tmp_name:
        tmp = Path(tmp_name)
        started = time.perf_counter()
        data = generate(recipients=args.rows)
        recipients_csv = write_recipients_csv(tmp / "recipients.csv", data.recipients[: args.rows])
        disbursements_csv = write_disbursements_csv(
            tmp / "disbursements.csv", data.disbursements[: args.rows]
        )
        print(f"generated {args.rows} + {args.rows} rows in {time.perf_counter() - started:.1f} s")
        backends = ["sqlite"] + (["postgresql"] if postgres_base_url() else [])
        for backend in backends:
            _bench(backend, tmp, recipients_csv, disbursements_csv)


if __name__ == "__main__":
    main()
