"""Stored report endpoints (``REPORT_PERMISSION_CLASSES``, admin only by default).

::

    GET  reports/saved/?report_type=daily_summary&status=done&page=2
    GET  reports/saved/<id>/
    POST reports/saved/generate/  {"report_type": "daily_summary", "date": "2026-01-04"}
    POST reports/saved/generate/  {"report_type": "user_activity", "user_id": 7,
                                   "start": "2026-01-01", "end": "2026-01-31", "force": true}

``generate`` answers 201 with the report when it ran in the request, 202 with its URL
(``Location``) when ``ASYNC_REPORTS`` queued it, and 200 with the stored report when one
of that type, period and parameters already exists (``force`` regenerates it). The
rules and the numbers are in ``services.stored_reports``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from ..models import Report, ReportType
from ..services.stored_reports import ReportRequestError, generate_report, report_file_url
from .pagination import IntegerPageSizeMixin
from .parsers import JSONBodyMixin
from .permissions import report_permissions
from .reports import REPORT_ERRORS, validate_day, validated_query
from .schema import OpenApiParameter, error_responses, extend_schema
from .serializers import StrictBooleanField, StrictFieldsMixin, UserField


class StoredReportSerializer(serializers.ModelSerializer):
    """A stored report: what it covers, its status (pending, running, done, failed) with
    the error of a failed one, and its result once done."""

    url = serializers.SerializerMethodField(help_text=_("This report's URL."))
    file_url = serializers.SerializerMethodField(
        help_text=_("URL of the report's file in REPORT_STORAGE, or null.")
    )
    parameters = serializers.DictField(
        read_only=True, help_text=_('What else the report is about, e.g. {"user_id": 7}.')
    )
    created_by: serializers.PrimaryKeyRelatedField = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text=_("Who asked for it (null: a command or task).")
    )
    result = serializers.JSONField(
        read_only=True, allow_null=True, help_text=_("The report's numbers; null until done.")
    )

    class Meta:
        model = Report
        fields = [
            "id",
            "url",
            "report_type",
            "title",
            "period_start",
            "period_end",
            "parameters",
            "status",
            "status_changed",
            "error",
            "result",
            "file_url",
            "created_by",
            "created",
            "modified",
        ]
        read_only_fields = fields

    def get_url(self, report: Report) -> str:
        path = reverse("django_engagement:engagement-reports-saved-detail", args=[report.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_file_url(self, report: Report) -> str | None:
        return report_file_url(report)


class StoredReportSummarySerializer(StoredReportSerializer):
    """A stored report in the list: everything but its result."""

    class Meta(StoredReportSerializer.Meta):
        fields = [name for name in StoredReportSerializer.Meta.fields if name != "result"]
        read_only_fields = fields


class GenerateReportSerializer(StrictFieldsMixin, serializers.Serializer):
    """Which stored report to generate: its type, period and (user_activity) user."""

    report_type = serializers.ChoiceField(choices=ReportType.choices)
    date = serializers.DateField(
        required=False,
        validators=[validate_day],
        help_text=_(
            "A day (YYYY-MM-DD): the day itself, or the ISO week / month it falls in for "
            "weekly_summary / monthly_summary. Leave out date, start and end for the last "
            "complete period."
        ),
    )
    start = serializers.DateField(
        required=False,
        validators=[validate_day],
        help_text=_("First day of the period of a ranged type (with end)."),
    )
    end = serializers.DateField(
        required=False,
        validators=[validate_day],
        help_text=_("Last day (inclusive) of the period of a ranged type (with start)."),
    )
    user_id = UserField(required=False, help_text=_("The user of a user_activity report."))
    force = StrictBooleanField(
        required=False, default=False, help_text=_("Regenerate a report that is done.")
    )


class StoredReportPagination(IntegerPageSizeMixin, PageNumberPagination):
    """``?page=2&page_size=50``; answers ``count``, ``next``, ``previous``, ``results``."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class StoredReportView(JSONBodyMixin, GenericAPIView):
    """Base of the stored report views: permissions read from settings on every request."""

    serializer_class: type[serializers.Serializer] = StoredReportSerializer

    def get_permissions(self) -> list[BasePermission]:
        return report_permissions()

    def get_queryset(self) -> QuerySet:
        return Report._default_manager.order_by("-created", "-pk")


class StoredReportFilter(serializers.Serializer):
    report_type = serializers.ChoiceField(choices=ReportType.choices, required=False)
    status = serializers.ChoiceField(choices=list(Report.STATUS), required=False)


class StoredReportListView(StoredReportView):
    """Stored reports, newest first, without their results."""

    serializer_class = StoredReportSummarySerializer
    pagination_class = StoredReportPagination

    @extend_schema(
        parameters=[
            StoredReportFilter,
            OpenApiParameter("page", int, description="Page number."),
            OpenApiParameter("page_size", int, description="Reports per page (at most 100)."),
        ],
        responses={
            200: StoredReportSummarySerializer(many=True),
            **REPORT_ERRORS,
            **error_responses(404),
        },
    )
    def get(self, request: Request) -> Response:
        filters = validated_query(request, StoredReportFilter)
        reports = self.get_queryset().filter(**filters)
        page = self.paginate_queryset(reports)
        serializer = self.get_serializer(page, many=True)
        return self.get_paginated_response(serializer.data)


class StoredReportDetailView(StoredReportView):
    """One stored report with its result."""

    @extend_schema(
        responses={200: StoredReportSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(self.get_serializer(self.get_object()).data)


class GenerateReportView(StoredReportView):
    """Generate a stored report: in the request (201), queued (202), or stored (200)."""

    serializer_class = GenerateReportSerializer

    @extend_schema(
        request=GenerateReportSerializer,
        responses={
            200: StoredReportSerializer,
            201: StoredReportSerializer,
            202: StoredReportSerializer,
            **REPORT_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = GenerateReportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = serializer.validated_data
        try:
            outcome = generate_report(
                data["report_type"],
                day=data.get("date"),
                start=data.get("start"),
                end=data.get("end"),
                user_id=data.get("user_id"),
                force=data["force"],
                created_by=request.user if request.user.is_authenticated else None,
            )
        except ReportRequestError as exc:
            raise serializers.ValidationError({exc.field: [str(exc)]}) from None
        body = StoredReportSerializer(outcome.report, context={"request": request}).data
        if outcome.queued:
            return Response(
                body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]}
            )
        if outcome.ran:
            return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["url"]})
        return Response(body)
