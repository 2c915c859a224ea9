"""Admin report endpoints (``REPORT_PERMISSION_CLASSES``, admin only by default).

::

    GET reports/daily-summary/?date=2026-01-04
    GET reports/active-users/?date=2026-01-04
    GET reports/top/?key=service_id&date_from=2026-01-01&date_to=2026-01-04&limit=20
    GET reports/export/?date=2026-01-04&event_type=page_view&limit=10000   (streaming CSV)
    GET reports/export/?format=json&date=2026-01-04     (streaming JSON Lines)
    GET reports/dashboard/?days=7

Query parameters are validated by small serializers, so a bad value is a 400
naming the parameter. Each view costs a fixed number of queries; the numbers
come from ``services.reports`` and ``services.dashboard``.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.http import Http404, StreamingHttpResponse
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..services import reports
from ..services.aggregation import today
from ..services.analytics import check_day
from ..services.csv_writer import csv_chunks
from ..services.dashboard import MAX_DAYS, build_dashboard
from ..services.json_lines import JSON_LINES_MEDIA_TYPE, json_lines_chunks
from .parsers import JSONBodyMixin
from .permissions import report_permissions
from .schema import OpenApiTypes, error_responses, extend_schema, inline_serializer

DEFAULT_TOP_DAYS = 30
MAX_EXPORT_ROWS = 1_000_000
#: ``?format=`` of the export: json and jsonl both mean JSON Lines.
EXPORT_FORMATS = ("csv", "json", "jsonl")


def validate_day(value: date) -> None:
    """A 400 for a day outside the supported calendar (``analytics.check_day``)."""
    try:
        check_day(value)
    except ValueError:
        raise serializers.ValidationError("Date out of range.") from None


class DayQuery(serializers.Serializer):
    date = serializers.DateField(
        required=False,
        validators=[validate_day],
        help_text="Calendar day (YYYY-MM-DD) in TIME_ZONE; default today.",
    )


class TopQuery(serializers.Serializer):
    key = serializers.RegexField(
        reports.PAYLOAD_KEY_RE,
        help_text="Payload key to rank values of.",
        error_messages={"invalid": "Use 1 to 64 letters, digits or underscores."},
    )
    date_from = serializers.DateField(
        required=False,
        validators=[validate_day],
        help_text=f"First day (inclusive); default date_to - {DEFAULT_TOP_DAYS - 1}.",
    )
    date_to = serializers.DateField(
        required=False,
        validators=[validate_day],
        help_text="Last day (inclusive); default today.",
    )
    limit = serializers.IntegerField(required=False, default=20, min_value=1, max_value=100)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs.setdefault("date_to", today())
        if "date_from" not in attrs:
            try:
                first = attrs["date_to"] - timedelta(days=DEFAULT_TOP_DAYS - 1)
                validate_day(first)
                attrs["date_from"] = first
            except (OverflowError, serializers.ValidationError):
                raise serializers.ValidationError(
                    {"date_from": "Required: the default window would start out of range."}
                ) from None
        if attrs["date_from"] > attrs["date_to"]:
            raise serializers.ValidationError({"date_from": "Must be on or before date_to."})
        return attrs


class ExportQuery(serializers.Serializer):
    date = serializers.DateField(
        required=False,
        validators=[validate_day],
        help_text="Only events of this day (YYYY-MM-DD); default all days.",
    )
    event_type = serializers.RegexField(
        r"^[A-Za-z0-9_.:-]{1,64}$",
        required=False,
        help_text="Only events of this type.",
        error_messages={"invalid": "Not a valid event type code."},
    )
    limit = serializers.IntegerField(
        required=False, default=10_000, min_value=1, max_value=MAX_EXPORT_ROWS
    )
    format = serializers.ChoiceField(
        choices=EXPORT_FORMATS,
        required=False,
        help_text="csv (default), or json (also jsonl): JSON Lines, one event object a line "
        "(application/x-ndjson). Accept: application/x-ndjson picks JSON Lines too.",
    )


class DashboardQuery(serializers.Serializer):
    days = serializers.IntegerField(required=False, default=7, min_value=1, max_value=MAX_DAYS)


class ReportView(JSONBodyMixin, APIView):
    """Base of the report views: permissions read from settings on every request."""

    query_serializer: type[serializers.Serializer] = DayQuery

    def get_permissions(self) -> list[BasePermission]:
        return report_permissions()

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        """An unknown ``?format=`` is a 400 naming it, not DRF's bare 404."""
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            raise serializers.ValidationError({"format": ["Unknown format."]}) from None

    def query(self, request: Request) -> dict[str, Any]:
        """The validated query parameters; raises a 400 naming the bad one (or a repeated one)."""
        return validated_query(request, self.query_serializer)


def validated_query(request: Request, serializer_class: type[serializers.Serializer]) -> Any:
    """``request``'s query parameters through ``serializer_class``; a 400 names a repeated
    or blank parameter (DRF would take the last value, or skip a blank optional one)."""
    params = request.query_params
    repeated = [key for key in params if len(params.getlist(key)) > 1]
    if repeated:
        raise serializers.ValidationError(dict.fromkeys(repeated, ["Send one value."]))
    blank = [key for key, value in params.items() if value == ""]
    if blank:
        # ``?date=`` is no date: leave the parameter out for the default.
        raise serializers.ValidationError(dict.fromkeys(blank, ["This field may not be blank."]))
    serializer = serializer_class(data=params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


#: What every report may answer besides 200: a bad query parameter, not signed in
#: (401 with a WWW-Authenticate scheme first, else 403), not allowed.
REPORT_ERRORS = error_responses(400, 401, 403)

DAILY_SUMMARY = inline_serializer(
    "DailySummary",
    {
        "date": serializers.DateField(),
        "total_events": serializers.IntegerField(),
        "unique_users": serializers.IntegerField(),
        "unique_anonymous": serializers.IntegerField(),
        "events_by_type": serializers.DictField(child=serializers.IntegerField()),
    },
)
ACTIVE_USERS = inline_serializer(
    "ActiveUsers",
    {
        "date": serializers.DateField(),
        "daily_active_users": serializers.IntegerField(),
        "unique_anonymous": serializers.IntegerField(),
        "total_active": serializers.IntegerField(),
    },
)
TOP_VALUES = inline_serializer(
    "TopValues",
    {
        "key": serializers.CharField(),
        "date_from": serializers.DateField(),
        "date_to": serializers.DateField(),
        "limit": serializers.IntegerField(),
        "top": serializers.ListField(child=serializers.DictField()),
    },
)


class DailySummaryView(ReportView):
    """Events, distinct users and anonymous ids of one day, and events per type."""

    @extend_schema(parameters=[DayQuery], responses={200: DAILY_SUMMARY, **REPORT_ERRORS})
    def get(self, request: Request) -> Response:
        day = self.query(request).get("date") or today()
        return Response(reports.daily_summary(day))


class ActiveUsersView(ReportView):
    """Daily active users: distinct signed-in users plus distinct anonymous ids."""

    @extend_schema(parameters=[DayQuery], responses={200: ACTIVE_USERS, **REPORT_ERRORS})
    def get(self, request: Request) -> Response:
        day = self.query(request).get("date") or today()
        return Response(reports.active_users(day))


class TopValuesView(ReportView):
    """Most frequent values of one payload key over a range of days."""

    query_serializer = TopQuery

    @extend_schema(parameters=[TopQuery], responses={200: TOP_VALUES, **REPORT_ERRORS})
    def get(self, request: Request) -> Response:
        params = self.query(request)
        top = reports.top_values(
            params["key"],
            date_from=params["date_from"],
            date_to=params["date_to"],
            limit=params["limit"],
        )
        return Response(
            {
                "key": params["key"],
                "date_from": params["date_from"].isoformat(),
                "date_to": params["date_to"].isoformat(),
                "limit": params["limit"],
                "top": top,
            }
        )


class CSVRenderer(BaseRenderer):
    """Lets ``Accept: text/csv`` through content negotiation; the CSV itself streams."""

    media_type = "text/csv"
    format = "csv"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context=None):
        # Only error bodies get here (the export streams its own response).
        return JSONRenderer().render(data)


class JSONLinesRenderer(BaseRenderer):
    """Lets ``Accept: application/x-ndjson`` through content negotiation; the lines stream."""

    media_type = JSON_LINES_MEDIA_TYPE
    format = "jsonl"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context=None):
        # Only error bodies get here (the export streams its own response).
        return JSONRenderer().render(data)


class EventExportView(ReportView):
    """Streaming export of raw events, newest first, at most `limit` rows: CSV, or JSON
    Lines with `format=json` (or `Accept: application/x-ndjson`)."""

    query_serializer = ExportQuery
    renderer_classes = [JSONRenderer, CSVRenderer, JSONLinesRenderer]

    @extend_schema(
        parameters=[ExportQuery],
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            (200, JSON_LINES_MEDIA_TYPE): OpenApiTypes.STR,
            **{(code, "application/json"): body for code, body in REPORT_ERRORS.items()},
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        params = self.query(request)
        day, event_type = params.get("date"), params.get("event_type")
        name = "-".join(
            ["events", day.isoformat() if day else "all", *([event_type] if event_type else [])]
        )
        as_json = params.get("format") in ("json", "jsonl") or (
            "format" not in params and request.accepted_renderer.format == "jsonl"
        )
        if as_json:
            records = reports.export_records(day=day, event_type=event_type, limit=params["limit"])
            response = StreamingHttpResponse(
                json_lines_chunks(records), content_type=JSON_LINES_MEDIA_TYPE
            )
            response["Content-Disposition"] = f'attachment; filename="{name}.jsonl"'
            return response
        rows = reports.export_rows(day=day, event_type=event_type, limit=params["limit"])
        response = StreamingHttpResponse(
            csv_chunks(reports.EXPORT_COLUMNS, rows), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return response


class DashboardView(ReportView):
    """Totals and chart series of the last `days` days (the admin dashboard's data)."""

    query_serializer = DashboardQuery

    @extend_schema(
        parameters=[DashboardQuery], responses={200: OpenApiTypes.OBJECT, **REPORT_ERRORS}
    )
    def get(self, request: Request) -> Response:
        return Response(build_dashboard(self.query(request)["days"]))
