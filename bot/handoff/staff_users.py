"""Staff accounts: creation, password checks with lockout, roles and regions.

Passwords are stored as werkzeug hashes (scrypt), never in clear. After
MAX_FAILED_LOGINS wrong passwords in a row an account is locked for LOCKOUT; while
locked, even the right password is refused, so guessing costs an attacker fifteen
minutes per five tries. Unknown usernames take as long to refuse as known ones.

A sign-in opens a server-side session (`StaffLoginSession`): the browser holds a
random id, the database a hash of it. Logout ends that session only, so a copy of
its cookie is worthless while the officer's other devices stay signed in; a password
change, deactivation or any change of role or region ends all of that user's
sessions. Nothing lives in process memory, so every web host agrees.

The dashboard never holds an ORM object: it gets a `StaffIdentity`, a frozen
snapshot that also decides what its holder may see (`may_see_region`, `can`).
"""
from __future__ import annotations

import functools
import hashlib
import logging
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from bot.handoff.audit import AuditAction, AuditLog
from bot.db import Database
from bot.conversation.models import utcnow
from bot.rules.phone import mask_phone, normalise_phone
from bot.rules.regions import PROVINCES
from bot.handoff.staff_models import (
    FULL_NAME_MAX_CHARS,
    USERNAME_MAX_CHARS,
    StaffLoginSession,
    StaffRole,
    StaffUser,
)

log = logging.getLogger(__name__)

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
PASSWORD_MIN_CHARS = 10
PASSWORD_MAX_CHARS = 128
# A session ends after this long without a request (a shift's worth), or at logout.
SESSION_LIFETIME = timedelta(hours=8)
# Polling pages call every few seconds; the last-seen time is written at most this often.
SESSION_TOUCH_INTERVAL = timedelta(minutes=1)
# token_urlsafe(32) gives 43 characters; anything longer is not ours and is not hashed.
SESSION_ID_MAX_CHARS = 64
_USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_REGION_RE = re.compile(r"^\d{2}(\d{2})?$")


class InvalidStaffUser(ValueError):
    """Refused account data; the message is Indonesian, for the admin who typed it."""


class AccessDenied(PermissionError):
    """The staff member may not see or do this (role, region, or named in a sensitive report)."""


@dataclass(frozen=True)
class StaffIdentity:
    """Who is signed in, detached from any session."""

    id: int
    username: str
    full_name: str
    role: str
    region: str | None

    @property
    def display_name(self) -> str:
        return self.full_name or self.username

    def can(self, role: str) -> bool:
        """Whether this person's role is `role` or above."""
        return StaffRole.RANK[self.role] >= StaffRole.RANK[role]

    @property
    def can_assign(self) -> bool:
        return self.can(StaffRole.SUPERVISOR)

    @property
    def can_reveal_nik(self) -> bool:
        return self.can(StaffRole.SUPERVISOR)

    @property
    def is_admin(self) -> bool:
        return self.role == StaffRole.ADMIN

    def may_see_region(self, region: str | None) -> bool:
        """Supervisors see everything; an agent sees their region (a national agent, all).

        Regions are Kemendagri codes, so a province agent ("32") sees its regencies
        ("3201"), but a regency agent does not see province-level items.
        """
        return self.can(StaffRole.SUPERVISOR) or self.covers(region)

    def covers(self, region: str | None) -> bool:
        """Whether `region` lies within this person's own region, whatever their role."""
        return self.region is None or (region is not None and region.startswith(self.region))


@dataclass(frozen=True)
class StaffUserView:
    """An account as the admin pages list it (no hash)."""

    id: int
    username: str
    full_name: str
    role: str
    region: str | None
    phone: str | None
    active: bool
    locked_until: datetime | None
    last_login_at: datetime | None


@dataclass(frozen=True)
class LoginResult:
    """A login attempt's outcome; on success, the new session's id goes into the cookie."""

    identity: StaffIdentity | None
    locked: bool = False
    session_id: str = ""


def _session_hash(session_id: str) -> str:
    """What the database keeps of a session id: the id has 256 random bits, so one SHA-256 suffices."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def _end_sessions_of(session: Session, user_id: int, now: datetime) -> None:
    """Sign a user out everywhere: after a change to their password, role, region or status."""
    session.execute(
        update(StaffLoginSession)
        .where(StaffLoginSession.user_id == user_id, StaffLoginSession.ended_at.is_(None))
        .values(ended_at=now)
    )


@functools.cache
def _dummy_hash() -> str:
    """Checked against when the username is unknown, so both cases cost one hash."""
    return generate_password_hash("not-a-real-password")


def _identity(user: StaffUser) -> StaffIdentity:
    return StaffIdentity(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        role=user.role,
        region=user.region,
    )


def _view(user: StaffUser) -> StaffUserView:
    return StaffUserView(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        role=user.role,
        region=user.region,
        phone=user.phone,
        active=user.active,
        locked_until=user.locked_until,
        last_login_at=user.last_login_at,
    )


def normalise_username(raw: str) -> str:
    return unicodedata.normalize("NFKC", raw or "").strip().lower()


def check_username(raw: str) -> str:
    username = normalise_username(raw)
    if not _USERNAME_RE.fullmatch(username):
        raise InvalidStaffUser(
            "Nama pengguna 2-64 karakter: huruf kecil, angka, titik, garis bawah atau strip."
        )
    return username


def check_password(password: str, username: str = "") -> str:
    if not PASSWORD_MIN_CHARS <= len(password or "") <= PASSWORD_MAX_CHARS:
        raise InvalidStaffUser(
            f"Kata sandi harus {PASSWORD_MIN_CHARS} sampai {PASSWORD_MAX_CHARS} karakter."
        )
    if username and password.strip().lower() == username.lower():
        raise InvalidStaffUser("Kata sandi tidak boleh sama dengan nama pengguna.")
    return password


def check_region(raw: str | None) -> str | None:
    """A province ("32") or regency ("3201") code whose province exists; empty means national."""
    region = (raw or "").strip()
    if not region:
        return None
    if not _REGION_RE.fullmatch(region) or region[:2] not in PROVINCES:
        raise InvalidStaffUser("Wilayah harus kode provinsi (2 angka) atau kabupaten/kota (4 angka).")
    return region


def check_phone(raw: str | None) -> str | None:
    """A staff member's phone number as stored (None: none given), or InvalidStaffUser."""
    if not (raw or "").strip():
        return None
    phone = normalise_phone(raw)
    if phone is None:
        raise InvalidStaffUser("Nomor HP tidak valid. Contoh: 0812 3456 7890 atau +62 812 3456 7890.")
    return phone


def _check_full_name(raw: str) -> str:
    name = " ".join(unicodedata.normalize("NFC", raw or "").split())
    if not name or len(name) > FULL_NAME_MAX_CHARS:
        raise InvalidStaffUser(f"Nama lengkap wajib diisi, maksimal {FULL_NAME_MAX_CHARS} karakter.")
    return name


def _check_role(role: str) -> str:
    if role not in StaffRole.ALL:
        raise InvalidStaffUser("Peran tidak dikenal.")
    return role


class StaffDirectory:
    """Creates accounts, signs people in, and answers "who is this session?"."""

    def __init__(self, db: Database, audit: AuditLog, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock

    # ---- accounts ------------------------------------------------------------------

    def create_user(
        self,
        username: str,
        password: str,
        role: str,
        full_name: str,
        region: str | None = None,
        actor: StaffIdentity | None = None,
        ip: str = "",
    ) -> StaffIdentity:
        """Create an account; InvalidStaffUser when a field is wrong or the name is taken."""
        name = check_username(username)
        user = StaffUser(
            username=name,
            full_name=_check_full_name(full_name),
            password_hash=generate_password_hash(check_password(password, name)),
            role=_check_role(role),
            region=check_region(region),
        )
        with self.db.session() as session:
            if session.scalar(select(StaffUser.id).where(StaffUser.username == name)) is not None:
                raise InvalidStaffUser(f"Nama pengguna {name} sudah dipakai.")
            session.add(user)
            session.flush()
            identity = _identity(user)
            self.audit.record_in(
                session, actor, AuditAction.USER_CREATED, f"staff:{name}", f"role={role}", ip
            )
        log.info("staff account %s created with role %s", name, role)
        return identity

    def list_users(self) -> list[StaffUserView]:
        with self.db.session() as session:
            users = session.scalars(select(StaffUser).order_by(StaffUser.username)).all()
            return [_view(user) for user in users]

    def get_user(self, user_id: int) -> StaffUserView | None:
        with self.db.session() as session:
            user = session.get(StaffUser, user_id)
            return _view(user) if user else None

    def active_staff(self) -> list[StaffIdentity]:
        """Everyone who can be given a chat, by name."""
        with self.db.session() as session:
            users = session.scalars(
                select(StaffUser).where(StaffUser.active.is_(True)).order_by(StaffUser.full_name)
            ).all()
            return [_identity(user) for user in users]

    def update_user(
        self,
        user_id: int,
        role: str,
        region: str | None,
        active: bool,
        actor: StaffIdentity,
        ip: str = "",
    ) -> None:
        """Change role, region or active flag; any change ends the user's sessions."""
        role, region = _check_role(role), check_region(region)
        with self.db.session() as session:
            user = session.get(StaffUser, user_id, with_for_update=True)
            if user is None:
                raise InvalidStaffUser("Akun tidak ditemukan.")
            if user.id == actor.id and (role != user.role or not active):
                raise InvalidStaffUser("Peran dan status akun sendiri tidak dapat diubah.")
            changes = []
            for attr, new in (("role", role), ("region", region), ("active", active)):
                if getattr(user, attr) != new:
                    changes.append(f"{attr}={new}")
                    setattr(user, attr, new)
            if changes:
                _end_sessions_of(session, user.id, self.clock())
                self.audit.record_in(
                    session, actor, AuditAction.USER_UPDATED, f"staff:{user.username}", " ".join(changes), ip
                )

    def set_phone(self, user_id: int, raw: str | None, actor: StaffIdentity, ip: str = "") -> None:
        """Set (or, when empty, clear) where the daily summary of new clusters goes."""
        phone = check_phone(raw)
        with self.db.session() as session:
            user = session.get(StaffUser, user_id, with_for_update=True)
            if user is None:
                raise InvalidStaffUser("Akun tidak ditemukan.")
            if user.phone != phone:
                user.phone = phone
                self.audit.record_in(
                    session, actor, AuditAction.USER_UPDATED, f"staff:{user.username}",
                    f"phone={mask_phone(phone) if phone else '-'}", ip,
                )

    def supervisors_with_phone(self) -> list[tuple[StaffIdentity, str]]:
        """Active supervisors who gave a phone number, for the daily summary of new clusters."""
        with self.db.session() as session:
            users = session.scalars(
                select(StaffUser)
                .where(
                    StaffUser.active.is_(True),
                    StaffUser.role == StaffRole.SUPERVISOR,
                    StaffUser.phone.is_not(None),
                )
                .order_by(StaffUser.id)
            ).all()
            return [(_identity(user), user.phone) for user in users if user.phone]

    def set_password(
        self, user_id: int, password: str, actor: StaffIdentity | None = None, ip: str = ""
    ) -> None:
        """Set a new password; it also unlocks the account and ends its sessions."""
        with self.db.session() as session:
            user = session.get(StaffUser, user_id, with_for_update=True)
            if user is None:
                raise InvalidStaffUser("Akun tidak ditemukan.")
            user.password_hash = generate_password_hash(check_password(password, user.username))
            user.failed_logins = 0
            user.locked_until = None
            _end_sessions_of(session, user.id, self.clock())
            self.audit.record_in(session, actor, AuditAction.PASSWORD_SET, f"staff:{user.username}", "", ip)

    def unlock(self, user_id: int, actor: StaffIdentity, ip: str = "") -> None:
        with self.db.session() as session:
            user = session.get(StaffUser, user_id, with_for_update=True)
            if user is None:
                raise InvalidStaffUser("Akun tidak ditemukan.")
            user.failed_logins = 0
            user.locked_until = None
            self.audit.record_in(session, actor, AuditAction.USER_UNLOCKED, f"staff:{user.username}", "", ip)

    def find_by_username(self, username: str) -> StaffUserView | None:
        with self.db.session() as session:
            user = session.scalar(
                select(StaffUser).where(StaffUser.username == normalise_username(username))
            )
            return _view(user) if user else None

    # ---- sessions ------------------------------------------------------------------

    def authenticate(self, username: str, password: str, ip: str = "") -> LoginResult:
        """Check a login; count failures and lock the account after too many.

        A locked or inactive account is refused without looking at the password, and
        the failure does not extend the lock: a locked-out officer can try again at
        the time they were told.
        """
        name = normalise_username(username)[:USERNAME_MAX_CHARS]
        now = self.clock()
        with self.db.session() as session:
            user = session.scalar(
                select(StaffUser).where(StaffUser.username == name).with_for_update()
            )
            if user is None or not user.active:
                check_password_hash(_dummy_hash(), password or "")
                self.audit.record_in(session, None, AuditAction.LOGIN_FAILED, f"staff:{name}", "unknown or inactive", ip)
                return LoginResult(None)
            if user.locked_until is not None and user.locked_until > now:
                self.audit.record_in(session, None, AuditAction.LOGIN_FAILED, f"staff:{name}", "locked", ip)
                return LoginResult(None, locked=True)
            if not check_password_hash(user.password_hash, password or ""):
                user.failed_logins += 1
                if user.failed_logins >= MAX_FAILED_LOGINS:
                    user.failed_logins = 0
                    user.locked_until = now + LOCKOUT
                    self.audit.record_in(session, None, AuditAction.ACCOUNT_LOCKED, f"staff:{name}", "", ip)
                    log.warning("staff account %s locked after %d failed logins", name, MAX_FAILED_LOGINS)
                    return LoginResult(None, locked=True)
                self.audit.record_in(session, None, AuditAction.LOGIN_FAILED, f"staff:{name}", "wrong password", ip)
                return LoginResult(None)
            user.failed_logins = 0
            user.locked_until = None
            user.last_login_at = now
            identity = _identity(user)
            session_id = self._open_session(session, user.id, now)
            self.audit.record_in(session, identity, AuditAction.LOGIN, f"staff:{name}", "", ip)
            return LoginResult(identity, session_id=session_id)

    def _open_session(self, session: Session, user_id: int, now: datetime) -> str:
        """Record a new session and return its id; the user's dead sessions are cleared out."""
        session.execute(
            delete(StaffLoginSession).where(
                StaffLoginSession.user_id == user_id,
                or_(StaffLoginSession.ended_at.is_not(None), StaffLoginSession.expires_at <= now),
            )
        )
        session_id = secrets.token_urlsafe(32)
        session.add(
            StaffLoginSession(
                id_hash=_session_hash(session_id),
                user_id=user_id,
                created_at=now,
                last_seen_at=now,
                expires_at=now + SESSION_LIFETIME,
            )
        )
        return session_id

    def identity(self, session_id: str) -> StaffIdentity | None:
        """The signed-in person behind a session id, or None when the session no longer counts.

        Using a session moves its expiry forward, as an idle timeout; the write is
        skipped while the last one is recent, so polling does not write on every call.
        """
        if not session_id or len(session_id) > SESSION_ID_MAX_CHARS:
            return None
        now = self.clock()
        with self.db.session() as session:
            row = session.execute(
                select(StaffLoginSession, StaffUser)
                .join(StaffUser, StaffUser.id == StaffLoginSession.user_id)
                .where(
                    StaffLoginSession.id_hash == _session_hash(session_id),
                    StaffLoginSession.ended_at.is_(None),
                    StaffLoginSession.expires_at > now,
                    StaffUser.active.is_(True),
                )
            ).one_or_none()
            if row is None:
                return None
            login_session, user = row
            if now - login_session.last_seen_at >= SESSION_TOUCH_INTERVAL:
                login_session.last_seen_at = now
                login_session.expires_at = now + SESSION_LIFETIME
            return _identity(user)

    def logout(self, identity: StaffIdentity, session_id: str, ip: str = "") -> None:
        """End this one session (the officer's other devices stay signed in) and audit it."""
        with self.db.session() as session:
            session.execute(
                update(StaffLoginSession)
                .where(
                    StaffLoginSession.id_hash == _session_hash(session_id),
                    StaffLoginSession.user_id == identity.id,
                    StaffLoginSession.ended_at.is_(None),
                )
                .values(ended_at=self.clock())
            )
            self.audit.record_in(session, identity, AuditAction.LOGOUT, f"staff:{identity.username}", "", ip)
