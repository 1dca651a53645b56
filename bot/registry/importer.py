"""CSV import of recipients and disbursements, in the formats of the design.

Operators import extracts of the national register that run to hundreds of
thousands of rows, with the odd typo. So every row is checked on its own (a bad one
is reported by line and skipped, the good ones are kept), a re-import updates by
natural key instead of duplicating, and rows are written in chunks: one SELECT of
the existing keys per chunk, then one executemany INSERT and one UPDATE. Each chunk
commits by itself so a long import never holds SQLite's write lock for longer than
a chunk; the webhook's writers wait at most a few seconds for it.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO, Any, Union

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from bot.db import Base, Database
from bot.conversation.models import utcnow
from bot.rules.nik import InvalidNik, Nik, parse_nik
from bot.rules.phone import normalise_phone
from bot.rules.regions import PROVINCES
from bot.registry.models import (
    Disbursement,
    DisbursementStatus,
    Enrolment,
    EnrolmentStatus,
    PaymentChannel,
    Program,
    Recipient,
)

log = logging.getLogger(__name__)

Source = Union[str, "os.PathLike[str]", IO[str], IO[bytes]]

RECIPIENT_COLUMNS = (
    "nik",
    "name",
    "birth_date",
    "phone",
    "province",
    "regency",
    "district",
    "village",
    "address",
    "has_smartphone",
)
DISBURSEMENT_COLUMNS = ("nik", "program", "period", "amount", "channel", "scheduled_date", "status")
CHUNK_SIZE = 2000

MAX_NAME = 200
MAX_REGION_NAME = 100
MAX_ADDRESS = 500
MAX_PERIOD = 40
# Far above any real payment, far below BIGINT: a typo must fail its row, not the chunk.
MAX_AMOUNT = 1_000_000_000

_TRUE = frozenset({"true", "1", "ya", "yes"})
_FALSE = frozenset({"false", "0", "tidak", "no"})
_WHITESPACE = re.compile(r"\s+")
# Channel spellings seen in exports, compared without case, dots or spaces.
_CHANNEL_ALIASES = {"POS": PaymentChannel.PT_POS, "KANTORPOS": PaymentChannel.PT_POS}
# "Sembako" is the programme's current name; the register still says BPNT.
_PROGRAM_ALIASES = {"SEMBAKO": "BPNT"}


class ImportFileError(Exception):
    """The file as a whole cannot be imported (unreadable, or required columns missing)."""


class RowInvalid(ValueError):
    """One row is wrong; the message is the reason shown to the operator."""


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str


@dataclass
class ImportReport:
    """What an import did; `errors` are sorted by line (the header is line 1)."""

    kind: str
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def imported(self) -> int:
        return self.inserted + self.updated

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


# --- reading ---------------------------------------------------------------------------


@contextmanager
def _text_stream(source: Source) -> Iterator[IO[str]]:
    """Open a path or wrap a file object as UTF-8 text; a BOM is dropped.

    Undecodable bytes become U+FFFD, so one bad row is reported instead of the
    whole file failing halfway through.
    """
    if isinstance(source, (str, os.PathLike)):
        try:
            handle = open(source, encoding="utf-8-sig", errors="replace", newline="")
        except OSError as exc:
            raise ImportFileError(
                f"cannot read {os.fspath(source)}: {exc.strerror or exc}"
            ) from exc
        with handle:
            yield handle
        return
    if isinstance(source.read(0), bytes):
        wrapper = io.TextIOWrapper(
            source, encoding="utf-8-sig", errors="replace", newline=""  # type: ignore[arg-type]
        )
        try:
            yield wrapper
        finally:
            wrapper.detach()
        return
    yield source  # type: ignore[misc]


def _records(
    stream: IO[str], columns: tuple[str, ...]
) -> Iterator[tuple[int, dict[str, str] | RowError]]:
    """Yield (line, fields) per data row, or (line, RowError) for a malformed one."""
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError("the file is empty (a header row is required)") from None
    except csv.Error as exc:
        raise ImportFileError(f"line 1: {exc}") from exc
    names = [name.strip().lstrip("\ufeff").lower() for name in header]
    missing = [column for column in columns if column not in names]
    if missing:
        raise ImportFileError(
            f"missing column(s): {', '.join(missing)} (expected header: {','.join(columns)})"
        )
    positions = {column: names.index(column) for column in columns}
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield line, RowError(line, f"unreadable CSV: {exc}")
            continue
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            yield line, RowError(line, f"expected {len(names)} fields, found {len(row)}")
            continue
        if any("\ufffd" in cell for cell in row):
            yield line, RowError(line, "text is not valid UTF-8")
            continue
        yield line, {column: row[index].strip() for column, index in positions.items()}


# --- field rules -------------------------------------------------------------------------


def _nik(raw: str) -> Nik:
    try:
        return parse_nik(raw)
    except InvalidNik as exc:
        raise RowInvalid(f"nik: {exc.reason}") from None


def _iso_date(raw: str, column: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise RowInvalid(f"{column}: {raw!r} is not a date in YYYY-MM-DD form") from None


def _text(raw: str, column: str, limit: int, required: bool = False) -> str:
    value = _WHITESPACE.sub(" ", raw).strip()
    if required and not value:
        raise RowInvalid(f"{column}: must not be empty")
    if len(value) > limit:
        raise RowInvalid(f"{column}: longer than {limit} characters")
    return value


def _recipient(fields: dict[str, str]) -> dict[str, Any]:
    nik = _nik(fields["nik"])
    birth_date = _iso_date(fields["birth_date"], "birth_date")
    nik_date = nik.birth_date
    if (birth_date.day, birth_date.month, birth_date.year % 100) != (
        nik_date.day,
        nik_date.month,
        nik_date.year % 100,
    ):
        raise RowInvalid(
            f"birth_date: {birth_date.isoformat()} does not match the date in the NIK "
            f"({nik_date:%d-%m-%y})"
        )
    if birth_date > date.today():
        raise RowInvalid(f"birth_date: {birth_date.isoformat()} is in the future")
    phone = None
    if fields["phone"]:
        phone = normalise_phone(fields["phone"])
        if phone is None:
            raise RowInvalid(f"phone: {fields['phone']!r} is not a valid phone number")
    province_code = fields["province"]
    if province_code not in PROVINCES:
        raise RowInvalid(f"province: unknown province code {province_code!r}")
    smartphone = fields["has_smartphone"].lower()
    if smartphone not in _TRUE | _FALSE:
        raise RowInvalid(f"has_smartphone: {fields['has_smartphone']!r} is not true or false")
    return {
        "nik": nik.value,
        "name": _text(fields["name"], "name", MAX_NAME, required=True),
        "birth_date": birth_date,
        "phone": phone,
        "province_code": province_code,
        "regency": _text(fields["regency"], "regency", MAX_REGION_NAME),
        "district": _text(fields["district"], "district", MAX_REGION_NAME),
        "village": _text(fields["village"], "village", MAX_REGION_NAME),
        "address": _text(fields["address"], "address", MAX_ADDRESS),
        "has_smartphone": smartphone in _TRUE,
    }


def _channel_lookup() -> dict[str, str]:
    table = {re.sub(r"[\s.]", "", channel).upper(): channel for channel in PaymentChannel.ALL}
    return table | _CHANNEL_ALIASES


_CHANNELS = _channel_lookup()


class _DisbursementRules:
    """Row rules that depend on the programmes stored in the database."""

    def __init__(self, programs: dict[str, bool]) -> None:
        self.programs = {code.upper(): code for code in programs}
        self.gives_cash = programs

    def __call__(self, fields: dict[str, str]) -> dict[str, Any]:
        nik = _nik(fields["nik"])
        raw_program = fields["program"].upper()
        program = self.programs.get(_PROGRAM_ALIASES.get(raw_program, raw_program))
        if program is None:
            raise RowInvalid(
                f"program: unknown {fields['program']!r} "
                f"(expected {', '.join(self.programs.values())})"
            )
        amount_text = fields["amount"]
        if not amount_text.isascii() or not amount_text.isdigit() or int(amount_text) <= 0:
            raise RowInvalid(f"amount: {amount_text!r} is not a positive whole number of rupiah")
        if int(amount_text) > MAX_AMOUNT:
            raise RowInvalid(f"amount: {amount_text} is more than Rp{MAX_AMOUNT:,} for one payment")
        channel = _CHANNELS.get(re.sub(r"[\s.]", "", fields["channel"]).upper())
        if channel is None and (fields["channel"] or self.gives_cash[program]):
            raise RowInvalid(
                f"channel: unknown {fields['channel']!r} (expected {', '.join(PaymentChannel.ALL)})"
            )
        status = fields["status"].lower()
        if status not in DisbursementStatus.ALL:
            raise RowInvalid(
                f"status: unknown {fields['status']!r} "
                f"(expected {', '.join(DisbursementStatus.ALL)})"
            )
        return {
            "nik": nik.value,
            "program_code": program,
            "period": _text(fields["period"], "period", MAX_PERIOD, required=True),
            "amount": int(amount_text),
            "channel": channel,
            "scheduled_date": _iso_date(fields["scheduled_date"], "scheduled_date"),
            "status": status,
        }


# --- writing -----------------------------------------------------------------------------

# A chunk maps each natural key to (line, values); a later row with the same key
# replaces an earlier one, as a re-import would.
Chunk = dict[Any, tuple[int, dict[str, Any]]]


def _insert_many(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """One Core executemany INSERT.

    The ORM's bulk insert starts a new statement wherever a nullable column flips
    between None and a value (a phone, say), which made it row-by-row on real data.
    """
    session.execute(insert(model.__table__), rows)


def _update_many(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """One Core executemany UPDATE by primary key; every row carries the same columns."""
    table = model.__table__
    columns = [name for name in rows[0] if name != "id"]
    statement = (
        update(table)
        .where(table.c.id == bindparam("pk"))
        .values({name: bindparam(f"new_{name}") for name in columns})
    )
    session.execute(
        statement,
        [{"pk": row["id"], **{f"new_{name}": row[name] for name in columns}} for row in rows],
    )


def _write_recipients(session: Session, chunk: Chunk, report: ImportReport) -> None:
    existing = dict(
        session.execute(select(Recipient.nik, Recipient.id).where(Recipient.nik.in_(list(chunk))))
        .tuples()
        .all()
    )
    now = utcnow()
    new = [
        values | {"created_at": now, "updated_at": now}
        for nik, (_, values) in chunk.items()
        if nik not in existing
    ]
    changed = [
        values | {"id": existing[nik], "updated_at": now}
        for nik, (_, values) in chunk.items()
        if nik in existing
    ]
    if new:
        _insert_many(session, Recipient, new)
    if changed:
        _update_many(session, Recipient, changed)
    report.inserted += len(new)
    report.updated += len(changed)


def _write_disbursements(session: Session, chunk: Chunk, report: ImportReport) -> None:
    niks = {values["nik"] for _, values in chunk.values()}
    recipient_ids = dict(
        session.execute(select(Recipient.nik, Recipient.id).where(Recipient.nik.in_(niks)))
        .tuples()
        .all()
    )
    rows: dict[tuple[int, str, str], dict[str, Any]] = {}
    for line, values in chunk.values():
        recipient_id = recipient_ids.get(values["nik"])
        if recipient_id is None:
            report.errors.append(
                RowError(line, "nik: no recipient with this NIK (import recipients first)")
            )
            continue
        row = {key: value for key, value in values.items() if key != "nik"}
        row["recipient_id"] = recipient_id
        rows[(recipient_id, row["program_code"], row["period"])] = row
    if not rows:
        return
    ids = sorted({key[0] for key in rows})
    existing = {
        (recipient_id, program, period): (disbursement_id, disbursed_at)
        for disbursement_id, recipient_id, program, period, disbursed_at in session.execute(
            select(
                Disbursement.id,
                Disbursement.recipient_id,
                Disbursement.program_code,
                Disbursement.period,
                Disbursement.disbursed_at,
            ).where(Disbursement.recipient_id.in_(ids))
        ).tuples()
    }
    now = utcnow()
    new, changed = [], []
    for key, row in rows.items():
        found = existing.get(key)
        paid = row["status"] == DisbursementStatus.TERSALUR
        if found is None:
            new.append(
                row | {"disbursed_at": now if paid else None, "created_at": now, "updated_at": now}
            )
        else:
            disbursed_at = (found[1] or now) if paid else None
            changed.append(row | {"id": found[0], "disbursed_at": disbursed_at, "updated_at": now})
    if new:
        _insert_many(session, Disbursement, new)
    if changed:
        _update_many(session, Disbursement, changed)
    report.inserted += len(new)
    report.updated += len(changed)
    _ensure_enrolments(session, {(key[0], key[1]) for key in rows}, ids, now)


def _ensure_enrolments(
    session: Session, wanted: set[tuple[int, str]], recipient_ids: list[int], now: datetime
) -> None:
    """A disbursement implies membership of its programme; existing statuses are kept."""
    present = set(
        session.execute(
            select(Enrolment.recipient_id, Enrolment.program_code).where(
                Enrolment.recipient_id.in_(recipient_ids)
            )
        ).tuples()
    )
    missing = [
        {
            "recipient_id": recipient_id,
            "program_code": program,
            "status": EnrolmentStatus.AKTIF,
            "created_at": now,
            "updated_at": now,
        }
        for recipient_id, program in sorted(wanted - present)
    ]
    if missing:
        _insert_many(session, Enrolment, missing)


# --- the two imports -------------------------------------------------------------------


def _run(
    db: Database,
    source: Source,
    kind: str,
    columns: tuple[str, ...],
    rule: Callable[[dict[str, str]], dict[str, Any]],
    key: Callable[[dict[str, Any]], Any],
    write: Callable[[Session, Chunk, ImportReport], None],
) -> ImportReport:
    report = ImportReport(kind=kind)
    started = time.perf_counter()
    chunk: Chunk = {}

    def flush() -> None:
        if chunk:
            with db.session() as session:
                write(session, chunk, report)
            chunk.clear()

    with _text_stream(source) as stream:
        for line, record in _records(stream, columns):
            report.rows += 1
            if isinstance(record, RowError):
                report.errors.append(record)
                continue
            try:
                values = rule(record)
            except RowInvalid as exc:
                report.errors.append(RowError(line, str(exc)))
                continue
            chunk[key(values)] = (line, values)
            if len(chunk) >= CHUNK_SIZE:
                flush()
        flush()
    report.errors.sort(key=lambda error: error.line)
    report.seconds = time.perf_counter() - started
    log.info(
        "imported %s: %d rows, %d new, %d updated, %d bad, %.1f s",
        kind,
        report.rows,
        report.inserted,
        report.updated,
        len(report.errors),
        report.seconds,
    )
    return report


def import_recipients(db: Database, source: Source) -> ImportReport:
    """Import a recipients CSV (path or file object); re-importing a NIK updates it."""
    return _run(
        db,
        source,
        "recipients",
        RECIPIENT_COLUMNS,
        _recipient,
        key=lambda values: values["nik"],
        write=_write_recipients,
    )


def import_disbursements(db: Database, source: Source) -> ImportReport:
    """Import a disbursements CSV; each row's recipient must already be imported.

    A row is keyed by (NIK, programme, period): importing it again updates amount,
    channel, date and status. Every imported row also enrols the recipient in the
    programme if they were not yet.
    """
    with db.session() as session:
        programs = dict(session.execute(select(Program.code, Program.gives_cash)).tuples().all())
    return _run(
        db,
        source,
        "disbursements",
        DISBURSEMENT_COLUMNS,
        _DisbursementRules(programs),
        key=lambda values: (values["nik"], values["program_code"], values["period"]),
        write=_write_disbursements,
    )
