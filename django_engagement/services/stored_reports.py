"""Stored reports: generate a report of one type and period once, keep it, hand it out.

Usage::

    from django_engagement.services.stored_reports import generate_report

    outcome = generate_report("daily_summary", day=date(2026, 1, 4))
    outcome.report.status, outcome.report.result["total_events"]    # "done", 120
    generate_report("weekly_summary", day=date(2026, 1, 7))          # that day's ISO week
    generate_report("user_activity", start=..., end=..., user_id=7, force=True)
    for spec in due_reports(date(2026, 3, 1)): ...                   # what the schedule owes

A report is unique per type, period and parameters (a unique constraint): asking again
returns the stored one unless ``force``. Its lifecycle is pending -> running -> done, or
failed with the error and no result. The numbers come from ``services.reports`` (the
analytics core behind ``reports/*``) and ``services.engagement_report``; nothing is
counted here. With ``ASYNC_REPORTS`` a pending report is handed to Celery after commit
through the ``report_requested`` signal.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import storages
from django.db import router, transaction
from django.utils import timezone

from ..conf import engagement_settings
from ..models import Report, ReportType
from ..signals import report_requested
from . import reports
from .aggregation import today
from .analytics import DateWindow, pk_json
from .email import send_report_email
from .engagement_report import build_engagement_report, period_info
from .report_files import report_storage, spooled_zip, write_report_files

__all__ = [
    "MAX_PERIOD_DAYS",
    "RANGED_TYPES",
    "Generated",
    "ReportRequestError",
    "ReportSpec",
    "due_reports",
    "generate_due_reports",
    "generate_report",
    "report_file_url",
    "resolve_report",
    "run_report",
]

logger = logging.getLogger(__name__)

#: The longest period one stored report covers (a leap year).
MAX_PERIOD_DAYS = 366
#: Types that take a ``start``/``end`` range (``daily_summary`` takes one day).
RANGED_TYPES = tuple(t.value for t in ReportType if t != ReportType.DAILY_SUMMARY)
#: Errors are kept to this many characters.
MAX_ERROR_LENGTH = 2000
FILE_PREFIX = "engagement-reports"


class ReportRequestError(ValueError):
    """A request ``resolve_report`` refuses; ``field`` names the argument at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ReportSpec:
    """What identifies a stored report: its type, period (inclusive) and parameters."""

    report_type: str
    period_start: date
    period_end: date
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def parameters_key(self) -> str:
        """SHA-256 of the parameters as canonical JSON (sorted keys, no spaces)."""
        text = json.dumps(self.parameters, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def title(self) -> str:
        label = ReportType(self.report_type).label
        start, end = self.period_start, self.period_end
        if self.report_type == ReportType.DAILY_SUMMARY:
            period = start.isoformat()
        elif self.report_type == ReportType.WEEKLY_SUMMARY and _is_iso_week(start, end):
            year, week, _ = start.isocalendar()
            period = f"{year}-W{week:02d}"
        elif self.report_type == ReportType.MONTHLY_SUMMARY and _is_month(start, end):
            period = f"{start:%Y-%m}"
        elif start == end:
            period = start.isoformat()
        else:
            period = f"{start.isoformat()} to {end.isoformat()}"
        if "user_id" in self.parameters:
            return f"{label} of user {self.parameters['user_id']}, {period}"
        return f"{label} {period}"


@dataclass(frozen=True)
class Generated:
    """What ``generate_report`` did: ``ran`` it in this process, ``queued`` it for a
    worker, or neither (the stored report was returned as it is)."""

    report: Report
    ran: bool = False
    queued: bool = False


# -- periods -------------------------------------------------------------------------------


def _is_iso_week(start: date, end: date) -> bool:
    return start.isoweekday() == 1 and end == start + timedelta(days=6)


def _month_of(day: date) -> tuple[date, date]:
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def _is_month(start: date, end: date) -> bool:
    return start.day == 1 and _month_of(start)[1] == end


def _period_of(report_type: str, day: date) -> tuple[date, date]:
    """The period of ``report_type`` that ``day`` falls in: its ISO week, its month, or it."""
    if report_type == ReportType.WEEKLY_SUMMARY:
        monday = day - timedelta(days=day.isoweekday() - 1)
        return monday, monday + timedelta(days=6)
    if report_type == ReportType.MONTHLY_SUMMARY:
        return _month_of(day)
    return day, day


def last_complete_period(report_type: str, on: date) -> tuple[date, date]:
    """The latest period of ``report_type`` that ended before ``on``: yesterday, the last
    ISO week, the last calendar month (yesterday for the other types)."""
    if report_type == ReportType.WEEKLY_SUMMARY:
        return _period_of(report_type, on - timedelta(days=on.isoweekday()))
    if report_type == ReportType.MONTHLY_SUMMARY:
        return _month_of(on.replace(day=1) - timedelta(days=1))
    yesterday = on - timedelta(days=1)
    return yesterday, yesterday


def _user_parameter(user_id: Any) -> Any:
    """``user_id`` (a primary key, or the user itself) as JSON, checked to exist."""
    User = get_user_model()
    if isinstance(user_id, User):
        return pk_json(user_id.pk)
    try:
        pk = User._meta.pk.to_python(user_id)
    except (ValidationError, TypeError, ValueError):
        raise ReportRequestError("user_id", f"{user_id!r} is not a valid user id.") from None
    if pk is None or not User._default_manager.filter(pk=pk).exists():
        raise ReportRequestError("user_id", f"No user with id {user_id}.")
    return pk_json(pk)


def resolve_report(
    report_type: str,
    *,
    day: date | None = None,
    start: date | None = None,
    end: date | None = None,
    user_id: Any = None,
    on: date | None = None,
) -> ReportSpec:
    """The ``ReportSpec`` of a request, checked; raises ``ValueError`` with one line.

    ``day`` picks the period it falls in (its ISO week for ``weekly_summary``, its month
    for ``monthly_summary``, the day itself otherwise); ranged types also take ``start``
    and ``end``; with neither, the last complete period before ``on`` (default today).
    ``user_activity`` needs ``user_id`` (a primary key, or the user); no other type takes
    one. Raises ``ReportRequestError`` (a ``ValueError``) naming the argument at fault.
    """
    if report_type not in ReportType.values:
        raise ReportRequestError(
            "report_type", f"report_type must be one of {', '.join(ReportType.values)}."
        )
    if day is not None and (start is not None or end is not None):
        raise ReportRequestError("date", "Give either a date or a start and an end, not both.")
    if (start is None) != (end is None):
        raise ReportRequestError("end" if end is None else "start", "Give both start and end.")
    if start is not None and report_type not in RANGED_TYPES:
        raise ReportRequestError(
            "start", f"{report_type} covers one day: give a date, not a start and an end."
        )
    if day is not None:
        start, end = _period_of(report_type, day)
    elif start is None or end is None:
        start, end = last_complete_period(report_type, on or today())
    if start > end:
        raise ReportRequestError("start", "start must be on or before end.")
    try:
        DateWindow(start, end)
    except ValueError as exc:  # a day outside the supported calendar
        raise ReportRequestError("date" if day else "start", str(exc)) from None
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise ReportRequestError("end", f"A stored report covers at most {MAX_PERIOD_DAYS} days.")
    parameters: dict[str, Any] = {}
    if report_type == ReportType.USER_ACTIVITY:
        if user_id is None or user_id == "":
            raise ReportRequestError("user_id", "user_activity needs a user_id.")
        parameters["user_id"] = _user_parameter(user_id)
    elif user_id is not None:
        raise ReportRequestError("user_id", "user_id applies to user_activity only.")
    return ReportSpec(report_type, start, end, parameters)


def due_reports(on: date) -> list[ReportSpec]:
    """What the schedule owes on day ``on``: yesterday's daily summary, on Mondays the
    last ISO week's weekly summary, on the 1st the last month's monthly summary."""
    types = [ReportType.DAILY_SUMMARY]
    if on.isoweekday() == 1:
        types.append(ReportType.WEEKLY_SUMMARY)
    if on.day == 1:
        types.append(ReportType.MONTHLY_SUMMARY)
    return [ReportSpec(t.value, *last_complete_period(t, on)) for t in types]


# -- generating ----------------------------------------------------------------------------


def generate_report(
    report_type: str | ReportSpec,
    *,
    day: date | None = None,
    start: date | None = None,
    end: date | None = None,
    user_id: Any = None,
    force: bool = False,
    created_by: Any = None,
    asynchronous: bool | None = None,
) -> Generated:
    """The stored report of a request, generated if needed (``resolve_report`` reads the
    arguments; a ``ReportSpec`` may be given instead).

    A done or running report is returned as it is, unless ``force`` (a running one is
    never restarted); a pending or failed one is (re)run. Runs in this process, or with
    ``asynchronous`` (default ``ASYNC_REPORTS``) is queued for a worker after commit.
    """
    spec = (
        report_type
        if isinstance(report_type, ReportSpec)
        else resolve_report(report_type, day=day, start=start, end=end, user_id=user_id)
    )
    if asynchronous is None:
        asynchronous = bool(engagement_settings.ASYNC_REPORTS)
    manager = Report._default_manager
    using = router.db_for_write(Report)
    # get_or_create: a concurrent request for the same report meets the unique constraint
    # and reads the row the other one created.
    report, created = manager.get_or_create(
        report_type=spec.report_type,
        period_start=spec.period_start,
        period_end=spec.period_end,
        parameters_key=spec.parameters_key,
        defaults={"title": spec.title, "parameters": spec.parameters, "created_by": created_by},
    )
    if not created:
        rerun = report.status in (Report.STATUS.pending, Report.STATUS.failed) or (
            force and report.status == Report.STATUS.done
        )
        if not rerun:
            return Generated(report)
        now = timezone.now()
        reset = manager.filter(pk=report.pk, status=report.status).update(
            status=Report.STATUS.pending,
            status_changed=now,
            modified=now,
            error="",
            result=None,
            created_by=created_by or report.created_by,
        )
        report.refresh_from_db()
        if not reset:  # another process moved it on meanwhile
            return Generated(report)
    if asynchronous:
        report_id = report.pk
        transaction.on_commit(lambda: _hand_over(report_id), using=using)
        return Generated(report, queued=True)
    return Generated(run_report(report.pk), ran=True)


def _hand_over(report_id: Any) -> None:
    """Send ``report_requested``; a broker error or no receiver leaves the report pending
    (asking for it again queues it again)."""
    try:
        receivers = report_requested.send(sender=Report, report_id=report_id)
    except Exception:
        logger.warning(
            "Could not queue stored report %s; it stays pending.", report_id, exc_info=True
        )
        return
    if not receivers:
        logger.warning(
            "Nothing listens to report_requested (is the [celery] extra installed?): "
            "stored report %s stays pending.",
            report_id,
        )


def run_report(report_id: Any) -> Report:
    """Run pending report ``report_id``: running, then done with its result, or failed
    with the error and no result. A report that is not pending is returned unchanged
    (another process has it), so a task delivered twice runs it once."""
    manager = Report._default_manager
    now = timezone.now()
    claimed = manager.filter(pk=report_id, status=Report.STATUS.pending).update(
        status=Report.STATUS.running, status_changed=now, modified=now
    )
    report = manager.get(pk=report_id)
    if not claimed:
        return report
    previous_file = report.file
    saved = ""
    try:
        with transaction.atomic(using=router.db_for_write(Report)):
            result, saved = BUILDERS[report.report_type](report)
            now = timezone.now()
            manager.filter(pk=report_id).update(
                status=Report.STATUS.done,
                status_changed=now,
                modified=now,
                result=result,
                file=saved,
                error="",
            )
    except Exception as exc:
        logger.exception("Stored report %s (%s) failed.", report_id, report.title)
        for name in {saved, previous_file} - {""}:  # no file of a failed report is kept
            _delete_file(name)
        now = timezone.now()
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:MAX_ERROR_LENGTH]
        manager.filter(pk=report_id).update(
            status=Report.STATUS.failed,
            status_changed=now,
            modified=now,
            result=None,
            file="",
            error=message,
        )
    else:
        if previous_file and previous_file != saved:
            _delete_file(previous_file)
    report.refresh_from_db()
    return report


def generate_due_reports(
    *, on: date | None = None, force: bool = False, email_recipients: list[str] | None = None
) -> list[Generated]:
    """Generate, in this process, what ``due_reports(on)`` owes (default: today in
    TIME_ZONE); each report that is done is emailed to ``email_recipients``.

    Idempotent: a report already done is not generated (nor emailed) again unless
    ``force``. What ``generate_reports --auto-schedule`` and the beat task run.
    """
    outcomes = [
        generate_report(spec, force=force, asynchronous=False)
        for spec in due_reports(on or today())
    ]
    if email_recipients:
        for outcome in outcomes:
            if outcome.ran and outcome.report.status == Report.STATUS.done:
                report = outcome.report
                send_report_email(report, email_recipients, file_url=report_file_url(report))
    return outcomes


# -- what each type holds ------------------------------------------------------------------

Built = tuple[Any, str]  # (result JSON, file name in REPORT_STORAGE or "")


def _daily_summary(report: Report) -> Built:
    return reports.daily_summary(report.period_start), ""


def _period_summary(report: Report) -> Built:
    return reports.period_summary(report.period_start, report.period_end), ""


def _user_activity(report: Report) -> Built:
    result = reports.user_activity(
        report.parameters["user_id"], date_from=report.period_start, date_to=report.period_end
    )
    return result, ""


def _engagement_report(report: Report) -> Built:
    """The consolidated report as the result; with ``REPORT_STORAGE`` its files (JSON,
    zipped) go to that storage instead and the result lists them."""
    start, end = report.period_start, report.period_end
    if not engagement_settings.REPORT_STORAGE:
        return build_engagement_report(start, end), ""
    storage, _ = report_storage()
    with tempfile.TemporaryDirectory(prefix="engagement-report-") as directory:
        paths = write_report_files(start, end, directory, fmt="json")
        result = {"period": period_info(start, end), "files": [path.name for path in paths]}
        key = f"{FILE_PREFIX}/{report.report_type}-{start}-{end}-{report.pk}.zip"
        with spooled_zip(paths) as archive:  # last: nothing after it can fail here
            name = storage.save(key, File(archive, name=key))
    return result, name


BUILDERS: dict[str, Callable[[Report], Built]] = {
    ReportType.DAILY_SUMMARY: _daily_summary,
    ReportType.WEEKLY_SUMMARY: _period_summary,
    ReportType.MONTHLY_SUMMARY: _period_summary,
    ReportType.USER_ACTIVITY: _user_activity,
    ReportType.ENGAGEMENT_REPORT: _engagement_report,
}


# -- files ---------------------------------------------------------------------------------


def _delete_file(name: str) -> None:
    alias = engagement_settings.REPORT_STORAGE
    if not alias or alias not in settings.STORAGES:
        return
    try:
        storages[alias].delete(name)
    except Exception:
        logger.warning("Could not delete stored report file %r.", name, exc_info=True)


def report_file_url(report: Report) -> str | None:
    """The URL of the report's file in ``REPORT_STORAGE``, or None without a file."""
    alias = engagement_settings.REPORT_STORAGE
    if not report.file or not alias or alias not in settings.STORAGES:
        return None
    return storages[alias].url(report.file)
