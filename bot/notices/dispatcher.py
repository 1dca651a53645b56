"""Sending the notice outbox: claim, record the intent, send, record the outcome.

Twilio has no idempotency key: a POST that times out may or may not have created a
message, and nothing in the API makes a second POST harmless. So the dispatcher
writes down what it is about to send before sending it and, when a crash leaves an
answer unknown, asks Twilio what it holds instead of guessing. For each batch:

1. Claim: due rows (pending, `not_before` passed, sending hours in their zone, not
   paused) become `claimed` under a fresh claim token. On PostgreSQL the rows are
   picked with `SELECT … FOR UPDATE SKIP LOCKED`, so two dispatchers never pick the
   same row; on SQLite the transaction holds the write lock from its start; and on
   both the UPDATE is conditional (`WHERE status = 'pending'`), so a row is claimed
   by exactly one token. Rows that must no longer go out are cancelled here.
2. Intent: before any provider call the batch's rows become `sending`, each with a
   `NoticeAttempt` row, in one transaction (conditional on the token).
3. Send: worker threads hand the notices to the provider, paced per sender (a
   token bucket in this process, or one schedule in Redis shared by every
   dispatcher: bot/notices/shared_pacing.py), while the next batch is claimed; outcomes are recorded every few
   dozen sends or tenth of a second: SID and status, or the error and what it means
   (retry after a backoff, go again at once by SMS after a WhatsApp refusal, give up
   and say why).

Any number of dispatchers may run against one database, on as many hosts (the
scheduler's own dispatch job, `python -m bot.notices.dispatch` processes, an
operator's `bansos notices run`). A crash leaves rows in one of two states, each
resolved once it is older than NOTICE_STALE_SECONDS (at least twice the HTTP
timeout, so its sender is certainly gone or has given up on its request). Age is
judged by the database's clock (`Database.now`): `claimed_at` and the attempt's
`started_at` are written with it and compared with it, so a host whose clock runs
ahead never takes a live dispatcher's rows for a dead one's. A live dispatcher
keeps its in-flight rows fresh: while its workers wait for rate-limit slots (many
dispatchers share one rate; Redis may be away for a while) it rewrites their
`claimed_at` every quarter of the stale period. Only a dead or frozen dispatcher's
rows go stale, and a worker never starts a send later than the stale period less
the HTTP timeout after its rows were last refreshed (by its own monotonic clock):
a dispatcher that froze and woke up after its rows were taken over puts the
notice back instead of sending it, and a send, once started, ends before anyone
may reconcile its row.

- `claimed`: no provider call was made. The row returns to `pending` and is sent by
  whoever claims it next: a crash before the call sends.
- `sending`: the call may have reached the provider. The reconciler asks the
  provider for the messages to that number created since the attempt started. One
  we hold no SID for, carrying this notice's text, is the lost send: the notice is
  recorded as sent with that SID and not sent again. When there is none, the request
  never arrived (or the crash came before it) and the notice returns to `pending`. A
  crash after the call therefore does not send twice.

A request that got no answer at all (timeout, connection reset) is the same case:
it stays `sending` until reconciled, because a timeout says nothing about whether
Twilio created the message. What is left is a provider that accepts a message yet
lists it only after the stale period; the period is minutes, Twilio lists a message
once it has created it, and a duplicate would need a crash inside that gap as well.

Every transition after the claim is conditional on the claim token and the state
the row is expected in, so a dispatcher whose rows were taken over (it stalled for
longer than the stale period) changes nothing. Recording intent and outcomes per
batch rather than per message keeps the database out of the way: a commit costs a
disk flush, and two per message would cap sending near 150 a second.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.db import Database
from bot.channels.delivery import Failure, FailureKind, classify_failure, record_permanent_failure
from bot.channels.outbox import (
    ProviderUnreachable,
    SendResult,
    SentMessage,
    Template,
    Transport,
    provider_for,
)
from bot.conversation.models import Channel, Contact, utcnow
from bot.notices.planning import STATUS_FOR_KIND, whatsapp_ready
from bot.notices.models import (
    AttemptStatus,
    Notice,
    NoticeAttempt,
    NoticeCampaign,
    NoticeControl,
    NoticeKind,
    NoticeStatus,
)
from bot import metrics
from bot.notices.pacing import RetryPolicy, SendingWindow
from bot.notices.shared_pacing import pacers_for
from bot.rules.phone import mask_phone
from bot.registry.models import Disbursement, Recipient

log = logging.getLogger(__name__)

# Clocks differ between us and the provider; a lost message may look this much older.
CLOCK_SKEW = timedelta(seconds=60)
MAX_BATCH = 200
# Outcomes are written after this many sends, or this many seconds, whichever first.
RECORD_EVERY = 50
RECORD_SECONDS = 0.1
CANCEL_OPTED_OUT = "opted out"
CANCEL_FLAGGED = "number flagged for data cleaning"


@dataclass(frozen=True)
class ClaimedNotice:
    """A claimed row, as the worker that sends it needs it."""

    id: int
    token: str
    kind: str
    disbursement_id: int
    recipient_id: int
    scheduled_date: date
    to: str
    zone: str
    channel: str
    body: str
    variables: dict[str, str]
    attempts: int
    attempt_id: int | None = None

    @classmethod
    def of(cls, row: Notice, token: str, attempt_id: int | None = None) -> "ClaimedNotice":
        """The claimed view of an outbox row, built in one place for every claim path."""
        return cls(
            id=row.id,
            token=token,
            kind=row.kind,
            disbursement_id=row.disbursement_id,
            recipient_id=row.recipient_id,
            scheduled_date=row.scheduled_date,
            to=row.to_address,
            zone=row.zone,
            channel=row.channel,
            body=row.body,
            variables=dict(row.content_variables or {}),
            attempts=row.attempts,
            attempt_id=attempt_id,
        )


class SendOutcome:
    """What became of one notice handed to a worker."""

    SENT = "sent"
    REFUSED = "refused"  # the provider answered with an error
    UNANSWERED = "unanswered"  # no answer: left `sending` for the reconciler
    NOT_SENT = "not_sent"  # the worker did not call the provider (stop, night, refused number)


@dataclass(frozen=True)
class _Result:
    notice: ClaimedNotice
    outcome: str
    result: SendResult | None = None
    # For NOT_SENT: the notice's next state and why.
    status: str = NoticeStatus.PENDING
    not_before: datetime | None = None
    reason: str | None = None


@dataclass
class DispatchReport:
    """What one run did; counters are safe to bump from the worker threads."""

    sent: int = 0
    failed: int = 0
    retrying: int = 0
    fell_back: int = 0
    cancelled: int = 0
    deferred: int = 0
    unanswered: int = 0
    released: int = 0
    recovered: int = 0
    resent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, count: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + count)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


class Dispatcher:
    """Sends due notices through a transport; any number may run against one database."""

    def __init__(
        self,
        db: Database,
        transport: Transport,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db = db
        self.transport = transport
        self.clock = clock
        self.monotonic = monotonic
        self.window = SendingWindow.parse(settings.notice_send_from, settings.notice_send_until)
        self.retry = RetryPolicy.from_settings(settings)
        self.pacers = pacers_for(settings, transport, monotonic, sleep)
        self.content_sid = settings.twilio_notice_content_sid if whatsapp_ready(settings) else None
        self.stale = timedelta(
            seconds=max(settings.notice_stale_seconds, 2 * settings.twilio_http_timeout)
        )
        # A send started this long after its row's last refresh ends (HTTP timeout)
        # before the row can be stale; rows are refreshed four times a stale period.
        self.send_within = self.stale.total_seconds() - settings.twilio_http_timeout
        self.refresh_every = self.stale.total_seconds() / 4
        # Per claim token: when (monotonic) its rows' `claimed_at` was last written.
        self._stamped: dict[str, float] = {}
        self._stamped_lock = threading.Lock()
        self.workers = max(1, settings.notice_workers)
        self.batch_size = self._batch_size(settings)
        # Numbers refused for good during this run, and why: the next notice to the same
        # number (a household's PKH and BPNT) is cancelled instead of tried.
        self._refused: dict[str, str] = {}
        self._refused_lock = threading.Lock()

    def _batch_size(self, settings: Settings) -> int:
        """About two seconds of sending at the limited rates, so one dispatcher does not
        hold rows for longer while others (sharing the rate) could be sending them."""
        limited = [
            rate for rate in (settings.notice_sms_rate, settings.notice_whatsapp_rate) if rate > 0
        ]
        if not limited:
            return MAX_BATCH
        return max(self.workers, min(MAX_BATCH, int(2 * sum(limited))))

    # --- the run ------------------------------------------------------------------------

    def run(
        self,
        should_stop: Callable[[], bool] = lambda: False,
        deadline: float | None = None,
        on_done: Callable[[int], None] | None = None,
    ) -> DispatchReport:
        """Reconcile what a crash left, then send until nothing is due (or stop/deadline).

        `deadline` is on the monotonic clock; `on_done(n)` is told of finished notices.
        """
        report = DispatchReport()
        self.reconcile(report)

        def next_batch() -> list[ClaimedNotice]:
            if should_stop() or (deadline is not None and self.monotonic() >= deadline):
                return []
            if self.paused():
                log.info("notices are paused by an operator")
                return []
            return self._mark_sending(self._screen(self.claim(self.batch_size), report))

        with ThreadPoolExecutor(self.workers, thread_name_prefix="notice") as pool:
            batch = next_batch()
            while batch:
                futures = [pool.submit(self._send, notice, should_stop) for notice in batch]
                # The next batch is claimed while this one is being sent, so the
                # database work never leaves the rate limit's slots unused.
                upcoming = next_batch()
                self._collect(futures, report, on_done, {n.token for n in batch + upcoming})
                # (a WhatsApp refusal just recorded may have made an SMS due at once)
                batch = upcoming or next_batch()
        return report

    def paused(self) -> bool:
        with self.db.session() as session:
            control = session.get(NoticeControl, 1)
            return bool(control and control.paused)

    # --- 1. claim -----------------------------------------------------------------------

    def claim(self, limit: int) -> list[ClaimedNotice]:
        """Claim up to `limit` due notices for this run; see the module docstring."""
        now = self.clock()
        zones = self.window.open_zones(now)
        if not zones:
            return []
        token = uuid.uuid4().hex
        with self.db.session() as session:
            claimed_at = self.db.now(session)
            ids = session.scalars(
                select(Notice.id)
                .join(NoticeCampaign, Notice.campaign_id == NoticeCampaign.id)
                .where(
                    Notice.status == NoticeStatus.PENDING,
                    Notice.not_before <= now,
                    Notice.zone.in_(zones),
                    NoticeCampaign.paused.is_(False),
                )
                .order_by(Notice.not_before, Notice.id)
                .limit(limit)
                .with_for_update(skip_locked=True, of=Notice)
            ).all()
            if not ids:
                return []
            session.execute(
                update(Notice)
                .where(Notice.id.in_(ids), Notice.status == NoticeStatus.PENDING)
                .values(status=NoticeStatus.CLAIMED, claim_token=token, claimed_at=claimed_at)
                .execution_options(synchronize_session=False)
            )
            rows = session.scalars(
                select(Notice)
                .where(Notice.claim_token == token, Notice.status == NoticeStatus.CLAIMED)
                .order_by(Notice.not_before, Notice.id)
            ).all()
            return [ClaimedNotice.of(row, token) for row in rows]

    def _screen(self, batch: list[ClaimedNotice], report: DispatchReport) -> list[ClaimedNotice]:
        """Check what may have changed since planning; cancel what must not go out.

        The notice goes to the phone registered now (a corrected number gets it, an old
        one does not); opted-out contacts and flagged numbers get nothing; a notice whose
        disbursement moved on (rescheduled, paid, the date passed) is out of date.
        """
        if not batch:
            return batch
        now = self.clock()
        with self.db.session() as session:
            recipients = {
                r.id: r
                for r in session.scalars(
                    select(Recipient).where(Recipient.id.in_({n.recipient_id for n in batch}))
                )
            }
            disbursements = {
                d.id: d
                for d in session.scalars(
                    select(Disbursement).where(
                        Disbursement.id.in_({n.disbursement_id for n in batch})
                    )
                )
            }
            phones = {r.phone for r in recipients.values() if r.phone}
            opted_out = set(
                session.scalars(
                    select(Contact.address).where(
                        Contact.address.in_(phones), Contact.opted_out.is_(True)
                    )
                )
            )
            kept: list[ClaimedNotice] = []
            for notice in batch:
                recipient = recipients.get(notice.recipient_id)
                disbursement = disbursements.get(notice.disbursement_id)
                reason = _cancel_reason(notice, recipient, disbursement, opted_out, now)
                if reason is not None:
                    _move(
                        session,
                        notice,
                        NoticeStatus.CLAIMED,
                        status=NoticeStatus.CANCELLED,
                        reason=reason,
                    )
                    report.add("cancelled")
                    continue
                phone = recipient.phone if recipient else None
                if phone and phone != notice.to:
                    session.execute(
                        update(Notice).where(Notice.id == notice.id).values(to_address=phone)
                    )
                    notice = replace(notice, to=phone)
                kept.append(notice)
            return kept

    # --- 2. intent ----------------------------------------------------------------------

    def _mark_sending(self, batch: list[ClaimedNotice]) -> list[ClaimedNotice]:
        """Write down, in one transaction, that the batch is about to be sent."""
        if not batch:
            return batch
        batch = [replace(n, channel=self._channel(n)) for n in batch]
        token = batch[0].token
        started = self.monotonic()
        with self.db.session() as session:
            now = self.db.now(session)
            for channel in {n.channel for n in batch}:
                session.execute(
                    update(Notice)
                    .where(
                        Notice.id.in_([n.id for n in batch if n.channel == channel]),
                        Notice.claim_token == token,
                        Notice.status == NoticeStatus.CLAIMED,
                    )
                    .values(
                        status=NoticeStatus.SENDING,
                        channel=channel,
                        attempts=Notice.attempts + 1,
                        claimed_at=now,
                        provider=provider_for(self.transport, channel),
                    )
                    .execution_options(synchronize_session=False)
                )
            marked = set(
                session.scalars(
                    select(Notice.id).where(
                        Notice.claim_token == token, Notice.status == NoticeStatus.SENDING
                    )
                )
            )
            kept = [n for n in batch if n.id in marked]
            if not kept:
                return []
            session.execute(
                insert(NoticeAttempt),
                [
                    {
                        "notice_id": n.id,
                        "channel": n.channel,
                        "claim_token": token,
                        "status": AttemptStatus.SENDING,
                        "provider": provider_for(self.transport, n.channel),
                        "started_at": now,
                    }
                    for n in kept
                ],
            )
            attempt_ids = dict(
                session.execute(
                    select(NoticeAttempt.notice_id, NoticeAttempt.id).where(
                        NoticeAttempt.claim_token == token
                    )
                ).all()
            )
        self._stamp({token}, started)
        return [replace(n, attempts=n.attempts + 1, attempt_id=attempt_ids[n.id]) for n in kept]

    def _refresh_claims(self, tokens: set[str]) -> None:
        """Show other dispatchers that the rows we are still sending are not stale.

        A token none of whose rows is ours any more (another dispatcher took them over
        while this one stalled) loses its stamp, so its workers put nothing out.
        """
        started = self.monotonic()
        with self.db.session() as session:
            kept = set(
                session.scalars(
                    update(Notice)
                    .where(Notice.claim_token.in_(tokens), Notice.status == NoticeStatus.SENDING)
                    .values(claimed_at=self.db.now(session))
                    .returning(Notice.claim_token)
                    .execution_options(synchronize_session=False)
                )
            )
        self._stamp(kept, started)
        with self._stamped_lock:
            for token in tokens - kept:
                self._stamped.pop(token, None)

    def _stamp(self, tokens: set[str], started: float) -> None:
        """The tokens' rows were stamped with the database's time after `started`."""
        with self._stamped_lock:
            for token in tokens:
                self._stamped[token] = started

    def _stamped_at(self, tokens: set[str]) -> float:
        """When the oldest stamp among the tokens' rows was written (monotonic)."""
        with self._stamped_lock:
            return min(self._stamped.get(token, float("-inf")) for token in tokens)

    def _channel(self, notice: ClaimedNotice) -> str:
        if notice.channel == Channel.WHATSAPP and self.content_sid is None:
            return Channel.SMS
        return notice.channel

    # --- 3. send and record -------------------------------------------------------------

    def _send(self, notice: ClaimedNotice, should_stop: Callable[[], bool]) -> _Result:
        """One provider call (or a reason not to make it); runs in a worker thread."""
        with self._refused_lock:
            refused = self._refused.get(notice.to)
        if refused is not None:
            return _Result(notice, SendOutcome.NOT_SENT, status=NoticeStatus.CANCELLED, reason=refused)
        if should_stop():
            return _Result(notice, SendOutcome.NOT_SENT)
        if not self.pacers[notice.channel].acquire(
            lambda: should_stop() or self._too_late(notice)
        ) or self._too_late(notice):
            return _Result(notice, SendOutcome.NOT_SENT)
        now = self.clock()
        if not self.window.is_open(now, notice.zone):
            # The rate limit made it wait past the end of the sending hours.
            return _Result(
                notice, SendOutcome.NOT_SENT, not_before=self.window.next_open(now, notice.zone)
            )
        template = (
            Template(self.content_sid, notice.variables)
            if notice.channel == Channel.WHATSAPP and self.content_sid
            else None
        )
        result = self.transport.send(notice.to, notice.body, notice.channel, template)
        if result.sid:
            return _Result(notice, SendOutcome.SENT, result)
        failure = classify_failure(result.error_code, result.http_status)
        if failure.kind == FailureKind.UNKNOWN:
            return _Result(notice, SendOutcome.UNANSWERED, result)
        if failure.ends_all_channels:
            with self._refused_lock:
                self._refused[notice.to] = CANCEL_OPTED_OUT if failure.opted_out else CANCEL_FLAGGED
        return _Result(notice, SendOutcome.REFUSED, result)

    def _too_late(self, notice: ClaimedNotice) -> bool:
        """Whether the row could count as stale before a send started now ends."""
        late = self.monotonic() > self._stamped_at({notice.token}) + self.send_within
        if late:
            log.warning("notice %s: its claim was not refreshed in time; back to pending", notice.id)
        return late

    def _collect(
        self,
        futures: list[Future[_Result]],
        report: DispatchReport,
        on_done: Callable[[int], None] | None,
        tokens: set[str],
    ) -> None:
        """Record outcomes as they come, in small transactions, until the batch is done;
        meanwhile keep the claims of the rows in flight (`tokens`) fresh."""
        waiting = set(futures)
        done: list[_Result] = []
        last_write = time.monotonic()
        while waiting:
            if self.monotonic() - self._stamped_at(tokens) >= self.refresh_every:
                self._refresh_claims(tokens)
            finished, waiting = wait(waiting, timeout=RECORD_SECONDS, return_when=FIRST_COMPLETED)
            done.extend(future.result() for future in finished)
            due = len(done) >= RECORD_EVERY or time.monotonic() - last_write >= RECORD_SECONDS
            if done and (due or not waiting):
                self._record(done, report)
                if on_done is not None:
                    on_done(len(done))
                done, last_write = [], time.monotonic()

    def _record(self, results: list[_Result], report: DispatchReport) -> None:
        now = self.clock()
        with self.db.session() as session:
            sent = [item for item in results if item.outcome == SendOutcome.SENT]
            if sent:
                self._record_sent(session, sent, now)
                report.add("sent", len(sent))
                metrics.count_notices_sent(item.notice.channel for item in sent)
            for item in results:
                if item.outcome == SendOutcome.SENT:
                    continue
                if item.outcome == SendOutcome.REFUSED and item.result is not None:
                    report.add(self._record_refused(session, item.notice, item.result, now))
                elif item.outcome == SendOutcome.UNANSWERED:
                    log.warning(
                        "notice %s: no answer from the provider; to be reconciled", item.notice.id
                    )
                    report.add("unanswered")
                else:
                    self._record_not_sent(session, item, now)
                    report.add("cancelled" if item.status == NoticeStatus.CANCELLED else "deferred")

    @staticmethod
    def _record_sent(session: Session, sent: list[_Result], now: datetime) -> None:
        """The common case, as two executemany UPDATEs: this is the hot path of a campaign."""
        notices, attempts = Notice.__table__, NoticeAttempt.__table__
        rows = [
            {
                "notice_id": item.notice.id,
                "token": item.notice.token,
                "attempt_id": item.notice.attempt_id,
                "sid": item.result.sid if item.result else None,
                "p_status": item.result.status if item.result else None,
            }
            for item in sent
        ]
        session.execute(
            attempts.update()
            .where(attempts.c.id == bindparam("attempt_id"))
            .values(
                status=AttemptStatus.ACCEPTED,
                provider_sid=bindparam("sid"),
                provider_status=bindparam("p_status"),
                finished_at=now,
            ),
            rows,
        )
        moved = session.execute(
            notices.update()
            .where(
                notices.c.id == bindparam("notice_id"),
                notices.c.claim_token == bindparam("token"),
                notices.c.status == NoticeStatus.SENDING,
            )
            .values(
                status=NoticeStatus.SENT,
                claim_token=None,
                provider_sid=bindparam("sid"),
                provider_status=bindparam("p_status"),
                error_code=None,
                sent_at=now,
                updated_at=now,
            ),
            rows,
        ).rowcount
        if moved != len(rows):
            log.error(
                "%d notices were taken over while their sends were in flight", len(rows) - moved
            )

    def _record_refused(
        self, session: Session, notice: ClaimedNotice, result: SendResult, now: datetime
    ) -> str:
        """Retry, fall back or give up; the report counter this adds to."""
        failure = classify_failure(result.error_code, result.http_status)
        metrics.count_provider_error(result.provider, result.error_code)
        _close_attempt(session, notice, AttemptStatus.REFUSED, now, error_code=result.error_code)
        code = {"error_code": result.error_code}
        if notice.channel == Channel.WHATSAPP and not failure.ends_all_channels:
            _move(
                session,
                notice,
                NoticeStatus.SENDING,
                status=NoticeStatus.PENDING,
                channel=Channel.SMS,
                not_before=now,
                reason=f"WhatsApp error {result.error_code}: SMS instead",
                **code,
            )
            return "fell_back"
        if failure.kind == FailureKind.TRANSIENT and not self.retry.gives_up(notice.attempts):
            later = self.window.next_open(now + self.retry.delay(notice.attempts), notice.zone)
            _move(
                session,
                notice,
                NoticeStatus.SENDING,
                status=NoticeStatus.PENDING,
                not_before=later,
                reason=f"retrying: {failure.reason}",
                **code,
            )
            return "retrying"
        reason = _give_up_reason(failure, notice.attempts)
        if _move(
            session, notice, NoticeStatus.SENDING, status=NoticeStatus.FAILED, reason=reason, **code
        ):
            record_permanent_failure(session, notice.to, failure, now)
            metrics.count_notices(notice.channel, NoticeStatus.FAILED)
        log.info("notice %s to %s failed: %s", notice.id, mask_phone(notice.to), reason)
        return "failed"

    @staticmethod
    def _record_not_sent(session: Session, item: _Result, now: datetime) -> None:
        """No provider call was made after all: undo the attempt."""
        _close_attempt(session, item.notice, AttemptStatus.NOT_SENT, now)
        _move(
            session,
            item.notice,
            NoticeStatus.SENDING,
            status=item.status,
            attempts=Notice.attempts - 1,
            not_before=item.not_before or now,
            reason=item.reason,
        )

    # --- after a crash ------------------------------------------------------------------

    def reconcile(self, report: DispatchReport | None = None) -> DispatchReport:
        """Resolve rows a dead dispatcher left `claimed` or `sending` (module docstring)."""
        report = report or DispatchReport()
        with self.db.session() as session:
            cutoff = self.db.now(session) - self.stale
            released = session.execute(
                update(Notice)
                .where(Notice.status == NoticeStatus.CLAIMED, Notice.claimed_at < cutoff)
                .values(status=NoticeStatus.PENDING, claim_token=None)
                .execution_options(synchronize_session=False)
            ).rowcount
            stale = session.execute(
                select(Notice.id, Notice.claim_token).where(
                    Notice.status == NoticeStatus.SENDING, Notice.claimed_at < cutoff
                )
            ).all()
        report.add("released", released)
        for notice_id, old_token in stale:
            self._reconcile_one(notice_id, old_token, cutoff, report)
        return report

    def _reconcile_one(
        self, notice_id: int, old_token: str | None, cutoff: datetime, report: DispatchReport
    ) -> None:
        now = self.clock()
        token = uuid.uuid4().hex
        with self.db.session() as session:
            claimed_at = self.db.now(session)
            taken = session.execute(
                update(Notice)
                .where(
                    Notice.id == notice_id,
                    Notice.status == NoticeStatus.SENDING,
                    Notice.claim_token == old_token,
                    # its dispatcher may have refreshed it since we looked
                    Notice.claimed_at < cutoff,
                )
                .values(claim_token=token, claimed_at=claimed_at)
                .execution_options(synchronize_session=False)
            ).rowcount
            if taken != 1:
                return  # another dispatcher is on it, or its own is alive after all
            row = session.get_one(Notice, notice_id)
            attempt = session.scalar(
                select(NoticeAttempt)
                .where(NoticeAttempt.notice_id == notice_id)
                .order_by(NoticeAttempt.id.desc())
                .limit(1)
            )
            notice = ClaimedNotice.of(row, token, attempt.id if attempt else None)
            since = (attempt.started_at if attempt else row.created_at) - CLOCK_SKEW
        try:
            found = self.transport.sent_to(notice.to, notice.channel, since)
        except ProviderUnreachable as exc:
            log.warning("notice %s: cannot ask the provider (%s); will try again", notice_id, exc)
            return
        with self.db.session() as session:
            known = set(
                session.scalars(
                    select(NoticeAttempt.provider_sid).where(
                        NoticeAttempt.provider == provider_for(self.transport, notice.channel),
                        NoticeAttempt.provider_sid.in_([m.sid for m in found]),
                    )
                )
            )
            ours = [m for m in found if m.sid not in known and _is_this_notice(m, notice)]
            if ours:
                message = min(ours, key=lambda m: m.created_at or now)
                _close_attempt(
                    session, notice, AttemptStatus.ACCEPTED, now, message.sid, message.status
                )
                _move(
                    session,
                    notice,
                    NoticeStatus.SENDING,
                    status=NoticeStatus.SENT,
                    provider_sid=message.sid,
                    provider_status=message.status,
                    sent_at=message.created_at or now,
                )
                report.add("recovered")
                metrics.count_notices(notice.channel, NoticeStatus.SENT)
                log.info("notice %s: at the provider after a crash; not sent again", notice_id)
                return
            _close_attempt(session, notice, AttemptStatus.NOT_SENT, now)
            _move(
                session, notice, NoticeStatus.SENDING, status=NoticeStatus.PENDING, not_before=now
            )
            report.add("resent")
            log.info("notice %s: not at the provider after a crash; will be sent", notice_id)


def _is_this_notice(message: SentMessage, notice: ClaimedNotice) -> bool:
    """Whether a message the provider holds carries this notice's text.

    SMS: our exact body. WhatsApp: the template rendered, so every variable's value
    appears in it (an empty body, where a provider does not render it, is taken as ours).
    """
    if notice.channel == Channel.WHATSAPP:
        return not message.body or all(value in message.body for value in notice.variables.values())
    return message.body == notice.body


def _move(session: Session, notice: ClaimedNotice, expected: str, **values: Any) -> bool:
    """Move a row on, only if it is still ours and where we left it; leaves it unclaimed."""
    result = session.execute(
        update(Notice)
        .where(
            Notice.id == notice.id,
            Notice.claim_token == notice.token,
            Notice.status == expected,
        )
        .values(claim_token=None, **values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _close_attempt(
    session: Session,
    notice: ClaimedNotice,
    status: str,
    now: datetime,
    sid: str | None = None,
    provider_status: str | None = None,
    error_code: str | None = None,
) -> None:
    if notice.attempt_id is None:
        return
    session.execute(
        update(NoticeAttempt)
        .where(NoticeAttempt.id == notice.attempt_id)
        .values(
            status=status,
            provider_sid=sid,
            provider_status=provider_status,
            error_code=error_code,
            finished_at=now,
        )
    )


def _give_up_reason(failure: Failure, attempts: int) -> str:
    if failure.kind == FailureKind.TRANSIENT:
        return f"gave up after {attempts} attempts: {failure.reason}"
    return failure.reason


def _cancel_reason(
    notice: ClaimedNotice,
    recipient: Recipient | None,
    disbursement: Disbursement | None,
    opted_out: set[str],
    now: datetime,
) -> str | None:
    if recipient is None or disbursement is None:
        return "recipient or disbursement deleted"
    if not recipient.phone:
        return "no phone"
    if recipient.phone in opted_out:
        return CANCEL_OPTED_OUT
    if recipient.flagged_phone == recipient.phone:
        return CANCEL_FLAGGED
    if disbursement.status != STATUS_FOR_KIND[notice.kind] or (
        disbursement.scheduled_date != notice.scheduled_date
    ):
        return f"out of date: the disbursement is now {disbursement.status}"
    local_today = now.astimezone(ZoneInfo(notice.zone)).date()
    if notice.kind == NoticeKind.REMINDER and notice.scheduled_date < local_today:
        return "out of date: the disbursement date has passed"
    return None
