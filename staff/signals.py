"""The "Sinyal" page: complaints by category, region and week, the clusters in them,
and the reports behind each figure, as the signed-in officer may see them."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, cast

from flask import abort, current_app, render_template, request, url_for
from flask_login import login_required

from bot.handoff.staff_users import AccessDenied
from bot.reports.signal_models import CLUSTER_HASH_CHARS
from bot.reports.models import REGION_NAME_MAX_CHARS, ReportKind, ReportStatus, category_label
from bot.reports.signals import (
    COMPLAINT_CATEGORIES,
    LEVEL_LABELS,
    PERIOD_CHOICES,
    SignalQuery,
    SignalService,
)
from bot.rules.regions import PROVINCES
from staff import bp
from staff.auth import me
from staff.charts import columns, horizontal_bars

DEFAULT_DAYS = 30
# Week labels, "25/11": day and month are enough within a 90-day period.
WEEK_FORMAT = "%d/%m"


def _signals() -> SignalService:
    return cast(SignalService, current_app.extensions["bansos"].signals)


def _name(args: Any, key: str) -> str | None:
    value = (args.get(key) or "").strip()
    return value if 0 < len(value) <= REGION_NAME_MAX_CHARS else None


def _query(args: Any) -> SignalQuery:
    """Filters from the query string; anything unknown is ignored rather than an error."""
    days = args.get("days", "")
    category, province = args.get("category"), args.get("province")
    return SignalQuery(
        days=int(days) if days.isdigit() and int(days) in PERIOD_CHOICES else DEFAULT_DAYS,
        category=category if category in COMPLAINT_CATEGORIES else None,
        province=province if province in PROVINCES else None,
        regency=_name(args, "regency") if province in PROVINCES else None,
        district=_name(args, "district") if province in PROVINCES and _name(args, "regency") else None,
    )


def _breadcrumbs(query: SignalQuery) -> list[tuple[str, dict[str, object]]]:
    crumbs: list[tuple[str, dict[str, object]]] = [("Semua provinsi", query.params(province=None, regency=None, district=None))]
    if query.province:
        crumbs.append((PROVINCES[query.province].name, query.params(regency=None, district=None)))
    if query.regency:
        crumbs.append((query.regency, query.params(district=None)))
    if query.district:
        crumbs.append((f"Kec. {query.district}", query.params()))
    return crumbs


@dataclass(frozen=True)
class RowLinks:
    """A row of a table (a region or a week) with where its figures lead."""

    row: Any
    drill: str | None
    behind: str | None
    by_category: dict[str, str]


def _behind(query: SignalQuery, **changes: object) -> str:
    """The page listing the reports behind one figure."""
    return url_for("staff.signal_reports", **query.params(**changes))


@bp.get("/signals")
@login_required
def signals() -> str:
    query = _query(request.args)
    page = _signals().page(me(), query)
    drill = page.level != "village"
    rows = [
        RowLinks(
            row,
            url_for("staff.signals", **query.params(**{page.level: row.value})) if drill and row.value else None,
            _behind(query, **{page.level: row.value}) if row.value else None,
            {code: _behind(query, category=code, **{page.level: row.value}) for code in row.counts} if row.value else {},
        )
        for row in page.rows
    ]
    weeks = [
        RowLinks(
            week,
            None,
            _behind(query, week=week.index),
            {code: _behind(query, category=code, week=week.index) for code in week.counts},
        )
        for week in page.weeks
    ]
    region_chart = horizontal_bars([(links.row.name, links.row.total, links.behind or "") for links in rows])
    week_chart = columns([
        (links.row.start.strftime(WEEK_FORMAT), links.row.count, links.behind or "") for links in weeks
    ])
    return render_template(
        "staff/signals.html",
        page=page,
        query=query,
        rows=rows,
        weeks=weeks,
        region_chart=region_chart,
        week_chart=week_chart,
        categories=[(code, category_label(ReportKind.PENGADUAN, code)) for code in COMPLAINT_CATEGORIES],
        periods=PERIOD_CHOICES,
        provinces=sorted(PROVINCES.values(), key=lambda p: p.name),
        level_label=LEVEL_LABELS[page.level],
        breadcrumbs=_breadcrumbs(query),
        category_label=lambda code: category_label(ReportKind.PENGADUAN, code) or code,
    )


@bp.get("/signals/reports")
@login_required
def signal_reports() -> str:
    """The reports behind one figure: a region's bar, a week's column, or a cluster."""
    args = request.args
    query = _query(args)
    if query.district:
        query = replace(query, village=_name(args, "village"))
    week = args.get("week", "")
    cluster = (args.get("cluster") or "").strip()[:CLUSTER_HASH_CHARS] or None
    try:
        rows = _signals().reports_behind(
            me(), query, week=int(week) if week.isdigit() else None, cluster=cluster
        )
    except AccessDenied:
        abort(403)
    return render_template(
        "staff/signal_reports.html",
        rows=rows,
        query=query,
        status_labels=ReportStatus.LABELS,
        back=url_for("staff.signals", **query.params(village=None)),
    )
