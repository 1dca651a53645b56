"""Complaints counted by category, region and week for the "Sinyal" page, and the
clusters in them (bot/reports/signal_stats.py), as each staff member may see them.

A complaint's region is the registry's village the citizen named, matched without
regard to case or spacing within the regency they gave ("andir" is Andir); else the
registered household of its subject NIK, else the household registered to the
reporter's phone: chat reports seldom carry a village, the registry always does. A
typed village the registry does not know is kept only where the registry knows no
village of that regency (else it would count as a village of no households).

Clusters are found on every complaint, whoever looks, so one officer's narrower view
cannot hide or invent one; then each viewer sees only the clusters whose every report
is in their region (StaffIdentity.may_see_region) and names them in none, whatever the
report's category (bot.reports.service.names_person): a cluster points at whoever its
reports name. A cluster carries its reports' ids and its reason, never who filed them.
"""
from __future__ import annotations

import hashlib
import math
import string
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import astuple, dataclass, field, replace
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from bot.config import Settings
from bot.conversation.models import Contact, utcnow
from bot.db import Database
from bot.handoff.staff_users import AccessDenied, StaffIdentity
from bot.registry.models import Recipient
from bot.reports.models import Report, ReportKind, category_codes, category_label
from bot.reports.service import names_person, report_words
from bot.reports.signal_stats import (
    WATCHED,
    Mention,
    Region,
    StatSettings,
    VillageCount,
    named_clusters,
    named_reason,
    named_summary,
    point_names,
    village_clusters,
    village_reason,
    village_summary,
)
from bot.reports.staff_view import may_see_report
from bot.rules.regions import PROVINCES

PERIOD_CHOICES = (7, 14, 30, 60, 90)
LEVELS = ("province", "regency", "district", "village")
LEVEL_LABELS = {
    "province": "Provinsi",
    "regency": "Kabupaten/Kota",
    "district": "Kecamatan",
    "village": "Desa/Kelurahan",
}
COMPLAINT_CATEGORIES = category_codes(ReportKind.PENGADUAN)
UNKNOWN_REGION = "(tidak diketahui)"
# Values per IN list: far below the bind-parameter limits (SQLite 32,766, PostgreSQL 65,535).
IN_CHUNK = 500


@dataclass(frozen=True)
class SignalQuery:
    """The page's filters: a period ending now, a category, and a region path from the top."""

    days: int = 30
    category: str | None = None
    province: str | None = None
    regency: str | None = None
    district: str | None = None
    village: str | None = None

    @property
    def path(self) -> tuple[str | None, ...]:
        return (self.province, self.regency, self.district, self.village)

    @property
    def level(self) -> str:
        """The level the table and the bars break down into: one below the deepest chosen."""
        depth = next((i for i, part in enumerate(self.path) if part is None), len(LEVELS))
        return LEVELS[min(depth, len(LEVELS) - 1)]

    def contains(self, region: Region) -> bool:
        values = (region.province_code, region.regency, region.district, region.village)
        return all(part is None or part == value for part, value in zip(self.path, values))

    def params(self, **changes: object) -> dict[str, object]:
        """Query-string parameters of this query with some changed; None leaves one out."""
        values = {
            "days": self.days, "category": self.category, "province": self.province,
            "regency": self.regency, "district": self.district, "village": self.village,
        } | changes
        return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class Complaint:
    id: int
    reference: str
    category: str
    status: str
    is_sensitive: bool
    region: Region
    routed_to: str | None
    created_at: datetime
    # Only counted (one per reporter), never shown.
    reporter_key: int = field(repr=False, compare=False)
    names: tuple[tuple[str, str], ...] = ()
    # The report's words (bot.reports.service.report_words): whom it names, never shown.
    words: frozenset[str] = field(default=frozenset(), repr=False, compare=False)


@dataclass(frozen=True)
class Cluster:
    """A flagged village (kind "desa") or a point/agent named by several reporters (kind "nama")."""

    key: str
    kind: str
    region: Region
    category: str
    title: str
    reason: str
    summary: str
    report_ids: frozenset[int]
    # Where its reports are routed (Kemendagri codes): whose region the cluster is in.
    routed_to: frozenset[str | None]

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.key.encode()).hexdigest()


@dataclass(frozen=True)
class ClusterRun:
    """The clusters of one period over every complaint: found once, then shown per viewer."""

    clusters: list[Cluster]
    complaints: dict[int, Complaint]

    def for_viewer(self, viewer: StaffIdentity) -> list[Cluster]:
        return [c for c in self.clusters if may_see_cluster(viewer, c, self.complaints)]


def may_see_cluster(viewer: StaffIdentity, cluster: Cluster, complaints: dict[int, Complaint]) -> bool:
    """Every report behind it is in the viewer's region, and none names the viewer."""
    behind = [complaints[i] for i in cluster.report_ids]
    return all(
        viewer.may_see_region(c.routed_to) and not names_person(c.words, viewer.display_name) for c in behind
    )


@dataclass(frozen=True)
class RegionRow:
    name: str
    value: str | None  # what the drill-down link sets; None for complaints without that level
    counts: dict[str, int]
    total: int


@dataclass(frozen=True)
class WeekBar:
    index: int
    start: date
    end: date
    count: int
    counts: dict[str, int]


@dataclass(frozen=True)
class SignalPage:
    query: SignalQuery
    start: datetime
    end: datetime
    level: str
    rows: list[RegionRow]
    weeks: list[WeekBar]
    clusters: list[Cluster]
    total: int


@dataclass(frozen=True)
class SignalReportRow:
    reference: str
    category_label: str
    status: str
    is_sensitive: bool
    region_label: str
    created_at: datetime


def region_value(region: Region, level: str) -> str:
    return {
        "province": region.province_code,
        "regency": region.regency,
        "district": region.district,
        "village": region.village,
    }[level]


def region_name(region: Region, level: str) -> str:
    value = region_value(region, level)
    if level == "province":
        found = PROVINCES.get(value)
        return found.name if found else UNKNOWN_REGION
    return value or UNKNOWN_REGION


def _week_index(at: datetime, end: datetime, days: int) -> int:
    """Which seven-day bucket, counted back from `end`, an instant falls in (0: the oldest)."""
    return math.ceil(days / 7) - 1 - (end - at).days // 7


def _common_region(regions: list[Region]) -> Region:
    """The deepest region all of these lie in: a named agent's cluster sits where its complaints are."""
    first = regions[0]
    same_district = all(r.district == first.district for r in regions)
    same_village = same_district and all(r.village == first.village for r in regions)
    return Region(
        first.province_code,
        first.regency,
        first.district if same_district else "",
        first.village if same_village else "",
    )


def _recipient_region(recipient: Recipient) -> Region:
    return Region(recipient.province_code, recipient.regency.strip(), recipient.district.strip(), recipient.village.strip())


def _fold(name: str | None) -> str:
    return " ".join((name or "").split()).casefold()


def _tidy(name: str | None) -> str:
    """A name typed by a citizen in one spelling whatever its case and spacing: "andir " is "Andir"."""
    return string.capwords(" ".join((name or "").split()))


class Places:
    """The registry's regencies and villages, for placing what citizens type."""

    def __init__(self, villages: Iterable[Region]) -> None:
        self.regencies: dict[tuple[str, str], str] = {}
        self.villages: dict[tuple[str, str, str], list[Region]] = defaultdict(list)
        for region in villages:
            self.regencies.setdefault((region.province_code, _fold(region.regency)), region.regency)
            self.villages[(region.province_code, region.regency, _fold(region.village))].append(region)

    def regency(self, province_code: str, typed: str | None) -> str:
        return self.regencies.get((province_code, _fold(typed)), _tidy(typed))

    def knows_regency(self, province_code: str, regency: str) -> bool:
        return (province_code, _fold(regency)) in self.regencies

    def village(self, report: Report) -> Region | None:
        """The registry's village a report names, if one matches (by district too when two share a name)."""
        province_code = report.province_code or ""
        found = self.villages.get((province_code, self.regency(province_code, report.regency), _fold(report.village)), [])
        if len(found) > 1:
            found = [r for r in found if _fold(r.district) == _fold(report.district)]
        return found[0] if len(found) == 1 else None


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start:start + IN_CHUNK]


def _report_text(report: Report) -> str:
    return " ".join([report.description] + [event.note or "" for event in report.events])


class SignalService:
    """What the "Sinyal" page and the daily summary read."""

    def __init__(self, db: Database, settings: StatSettings, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock

    # ---- reading ------------------------------------------------------------------

    def _load(
        self, since: datetime, viewer: StaffIdentity | None = None
    ) -> tuple[list[Complaint], set[int], dict[Region, int]]:
        """Complaints filed since `since`, the ids the viewer may see (none without one), and
        households per village."""
        with self.db.session() as session:
            rows = session.execute(
                select(Report, Contact.address)
                .join(Contact, Contact.id == Report.reporter_contact_id)
                .where(Report.kind == ReportKind.PENGADUAN, Report.created_at >= since)
                .options(selectinload(Report.events))
                .order_by(Report.id)
            ).all()
            households = self._households(session)
            places = Places(households)
            unplaced = [(report, address) for report, address in rows if not (report.village and places.village(report))]
            by_nik, by_phone = self._registry_regions(session, unplaced)
            complaints, visible = [], set()
            for report, address in rows:
                region = self._region(report, places, by_nik.get(report.subject_nik or ""), by_phone.get(address))
                complaints.append(Complaint(
                    id=report.id,
                    reference=report.reference,
                    category=report.category,
                    status=report.status,
                    is_sensitive=report.is_sensitive,
                    region=region,
                    routed_to=report.routed_to,
                    created_at=report.created_at,
                    reporter_key=report.reporter_contact_id,
                    names=point_names(_report_text(report)) if report.category in WATCHED else (),
                    words=report_words(report) if report.category in WATCHED else frozenset(),
                ))
                if viewer is not None and may_see_report(viewer, report):
                    visible.add(report.id)
        return complaints, visible, households

    @staticmethod
    def _registry_regions(
        session: Session, rows: Iterable[tuple[Report, str]]
    ) -> tuple[dict[str, Region], dict[str, Region]]:
        """Registry regions by subject NIK and by phone, for the reports given (in chunks, so
        no IN list outgrows the database's bind-parameter limit)."""
        rows = list(rows)
        niks = sorted({r.subject_nik for r, _ in rows if r.subject_nik})
        phones = sorted({address for _, address in rows})
        by_nik: dict[str, Region] = {}
        by_phone: dict[str, Region] = {}
        for chunk in _chunks(niks):
            for recipient in session.scalars(select(Recipient).where(Recipient.nik.in_(chunk))):
                by_nik.setdefault(recipient.nik, _recipient_region(recipient))
        for chunk in _chunks(phones):
            for recipient in session.scalars(
                select(Recipient).where(Recipient.phone.in_(chunk)).order_by(Recipient.id)
            ):
                by_phone.setdefault(recipient.phone or "", _recipient_region(recipient))
        return by_nik, by_phone

    @staticmethod
    def _region(report: Report, places: Places, by_nik: Region | None, by_phone: Region | None) -> Region:
        province_code = report.province_code or ""
        if report.village:
            matched = places.village(report)
            if matched is not None:
                return matched
        found = by_nik or by_phone
        if found is not None and (not province_code or found.province_code == province_code):
            return found
        regency = places.regency(province_code, report.regency)
        village = "" if places.knows_regency(province_code, regency) else _tidy(report.village)
        return Region(province_code, regency, _tidy(report.district), village)

    @staticmethod
    def _households(session: Session) -> dict[Region, int]:
        rows = session.execute(
            select(
                Recipient.province_code, Recipient.regency, Recipient.district, Recipient.village,
                func.count(Recipient.id),
            ).group_by(Recipient.province_code, Recipient.regency, Recipient.district, Recipient.village)
        ).all()
        households: dict[Region, int] = defaultdict(int)
        for province_code, regency, district, village, count in rows:
            if village:
                households[Region(province_code, regency.strip(), district.strip(), village.strip())] += count
        return households

    # ---- clusters -----------------------------------------------------------------

    def _settings_for(self, days: int) -> StatSettings:
        return replace(self.settings, period_days=days)

    def _clusters(
        self, complaints: list[Complaint], households: dict[Region, int], end: datetime, days: int
    ) -> list[Cluster]:
        settings = self._settings_for(days)
        start = end - timedelta(days=days)
        baseline_start = start - timedelta(days=settings.baseline_days)
        villages = set(households) | {c.region for c in complaints if c.region.village}
        period_reporters: dict[tuple[Region, str], set[int]] = defaultdict(set)
        baseline_reporters: dict[tuple[Region, str], set[int]] = defaultdict(set)
        ids: dict[tuple[Region, str], set[int]] = defaultdict(set)
        mentions = []
        routes = {c.id: c.routed_to for c in complaints}
        regions = {c.id: c.region for c in complaints}
        for c in complaints:
            if c.category not in WATCHED or c.created_at >= end or c.created_at < baseline_start:
                continue
            if c.created_at >= start:
                mentions.append(Mention(c.id, c.reporter_key, c.region, c.category, c.names))
                if c.region.village:
                    period_reporters[(c.region, c.category)].add(c.reporter_key)
                    ids[(c.region, c.category)].add(c.id)
            elif c.region.village:
                baseline_reporters[(c.region, c.category)].add(c.reporter_key)
        counts = [
            VillageCount(
                region=village,
                category=category,
                households=households.get(village, 0),
                period=len(period_reporters[(village, category)]),
                baseline=len(baseline_reporters[(village, category)]),
            )
            for village in villages
            for category in WATCHED
        ]
        found = [
            Cluster(
                key="|".join(("desa", *astuple(v.region), v.category)),
                kind="desa",
                region=v.region,
                category=v.category,
                title=v.region.label(),
                reason=village_reason(v, settings),
                summary=village_summary(v, settings),
                report_ids=frozenset(ids[(v.region, v.category)]),
                routed_to=frozenset(routes[i] for i in ids[(v.region, v.category)]),
            )
            for v in village_clusters(counts, settings)
        ]
        for named in named_clusters(mentions, settings):
            province_code, regency = named.regency_key
            found.append(Cluster(
                key=f"nama|{province_code}|{regency}|{named.key}",
                kind="nama",
                region=_common_region([regions[i] for i in named.report_ids]),
                category=named.categories[0][0],
                title=named.label,
                reason=named_reason(named, regency, settings),
                summary=named_summary(named, regency),
                report_ids=named.report_ids,
                routed_to=frozenset(routes[i] for i in named.report_ids),
            ))
        return found

    def _window(self, days: int) -> tuple[datetime, datetime, datetime]:
        end = self.clock()
        start = end - timedelta(days=days)
        return start - timedelta(days=self.settings.baseline_days), start, end

    def find_clusters(self, days: int | None = None) -> ClusterRun:
        """Every cluster of the period, before any viewer's filter: the daily summary finds
        them once for all supervisors."""
        days = days or self.settings.period_days
        since, _, end = self._window(days)
        complaints, _, households = self._load(since)
        return ClusterRun(self._clusters(complaints, households, end, days), {c.id: c for c in complaints})

    def visible_clusters(self, viewer: StaffIdentity, days: int | None = None) -> list[Cluster]:
        """The clusters of the period the viewer may see (may_see_cluster)."""
        return self.find_clusters(days).for_viewer(viewer)

    # ---- the page -----------------------------------------------------------------

    def page(self, viewer: StaffIdentity, query: SignalQuery) -> SignalPage:
        """Counts by region and week of the complaints the viewer may see, and their clusters."""
        since, start, end = self._window(query.days)
        complaints, visible, households = self._load(since, viewer)
        shown = list(self._in_query(complaints, visible, query, start, end))
        level = query.level
        by_region: dict[str, Counter[str]] = defaultdict(Counter)
        for c in shown:
            by_region[region_value(c.region, level)][c.category] += 1
        names = {region_value(c.region, level): region_name(c.region, level) for c in shown}
        rows = sorted(
            (
                RegionRow(names[value], value or None, dict(counts), sum(counts.values()))
                for value, counts in by_region.items()
            ),
            key=lambda row: (-row.total, row.name),
        )
        weeks = self._weeks(shown, start, end, query.days)
        run = ClusterRun(self._clusters(complaints, households, end, query.days), {c.id: c for c in complaints})
        clusters = [
            c for c in run.for_viewer(viewer)
            if query.contains(c.region)
            and (query.category is None or query.category == c.category)
        ]
        return SignalPage(query, start, end, level, rows, weeks, clusters, len(shown))

    @staticmethod
    def _in_query(
        complaints: Iterable[Complaint], visible: set[int], query: SignalQuery, start: datetime, end: datetime
    ) -> Iterable[Complaint]:
        for c in complaints:
            if (
                c.id in visible
                and start <= c.created_at < end
                and (query.category is None or c.category == query.category)
                and query.contains(c.region)
            ):
                yield c

    @staticmethod
    def _weeks(complaints: Iterable[Complaint], start: datetime, end: datetime, days: int) -> list[WeekBar]:
        """Seven-day buckets counted back from now; the oldest may be shorter."""
        count = math.ceil(days / 7)
        by_week: dict[int, Counter[str]] = defaultdict(Counter)
        for c in complaints:
            by_week[_week_index(c.created_at, end, days)][c.category] += 1
        bars = []
        for index in range(count):
            bucket_start = max(start, end - timedelta(days=7 * (count - index)))
            last_day = (end - timedelta(days=7 * (count - 1 - index), microseconds=1)).date()
            counts = by_week[index]
            bars.append(WeekBar(index, bucket_start.date(), last_day, sum(counts.values()), dict(counts)))
        return bars

    def reports_behind(
        self, viewer: StaffIdentity, query: SignalQuery, week: int | None = None, cluster: str | None = None
    ) -> list[SignalReportRow]:
        """The reports behind one figure of the page (a region, a week, or a cluster by its hash).

        Links name a cluster by hash, so no village or agent name lands in access logs.
        """
        since, start, end = self._window(query.days)
        complaints, visible, households = self._load(since, viewer)
        if cluster is not None:
            run = ClusterRun(self._clusters(complaints, households, end, query.days), {c.id: c for c in complaints})
            found = next((c for c in run.for_viewer(viewer) if c.hash == cluster), None)
            if found is None:
                raise AccessDenied("Klaster ini tidak ada atau bukan wewenang Anda.")
            chosen = [c for c in complaints if c.id in found.report_ids]
        else:
            chosen = list(self._in_query(complaints, visible, query, start, end))
            if week is not None:
                chosen = [c for c in chosen if _week_index(c.created_at, end, query.days) == week]
        return [
            SignalReportRow(
                reference=c.reference,
                category_label=category_label(ReportKind.PENGADUAN, c.category) or c.category,
                status=c.status,
                is_sensitive=c.is_sensitive,
                region_label=c.region.label() if c.region.regency else region_name(c.region, "province"),
                created_at=c.created_at,
            )
            for c in sorted(chosen, key=lambda c: c.created_at, reverse=True)
        ]


def stat_settings(settings: Settings) -> StatSettings:
    """The SIGNAL_* settings as the statistics take them."""
    return StatSettings(
        period_days=settings.signal_period_days,
        baseline_days=settings.signal_baseline_days,
        min_count=settings.signal_min_count,
        alpha=settings.signal_alpha,
        named_min=settings.signal_named_min,
    )
