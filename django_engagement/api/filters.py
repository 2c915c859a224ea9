"""Query filters of the activity feed (django-filter).

``?activity_type=milestone&is_read=false&start_date=2024-01-01&end_date=2024-01-31``

``start_date`` and ``end_date`` take an ISO 8601 date or date and time; an empty
value (``?start_date=``) is a 400, like any other value the schema refuses. A
date covers its whole day in the current time zone, so ``end_date=2024-01-31``
includes items of January 31st. A bad value is a 400 naming the parameter.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import django_filters
from django import forms
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext_lazy as _

from .schema import extend_schema_field


class DateOrDateTimeField(forms.Field):
    """Parses ``2024-01-01`` to a ``date`` and ``2024-01-01T10:00:00Z`` to a ``datetime``."""

    default_error_messages = {
        "invalid": _("Enter an ISO 8601 date (YYYY-MM-DD) or date and time."),
        "out_of_range": _("Date out of range."),
    }

    def to_python(self, value: Any) -> date | datetime | None:
        if value is None:
            return None
        value = str(value).strip()
        try:
            # Dates first: Python 3.11 also reads "2024-01-01" as a datetime.
            parsed = parse_date(value) or parse_datetime(value)
        except ValueError:
            parsed = None
        if parsed is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        try:
            # The database compares in UTC: 9999-12-31 has no next midnight, and an
            # offset near year 1 or 9999 has no UTC equivalent.
            for end in (False, True):
                created_at_bound(parsed, end=end)[1].astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError(
                self.error_messages["out_of_range"], code="out_of_range"
            ) from None
        return parsed


def created_at_bound(value: date | datetime, *, end: bool) -> tuple[str, datetime]:
    """The lookup and aware moment bounding ``created_at`` from (or, ``end``, until) ``value``.

    A date covers its whole day in the current time zone. Raises ``OverflowError``
    past the range of ``datetime``.
    """
    if isinstance(value, datetime):
        moment = timezone.make_aware(value) if timezone.is_naive(value) else value
        if settings.USE_TZ:
            # PostgreSQL refuses offsets beyond +-15:59, which Python accepts (+17:59).
            moment = moment.astimezone(UTC)
        return ("lte" if end else "gte"), moment
    day = value + timedelta(days=1) if end else value
    return ("lt" if end else "gte"), timezone.make_aware(datetime.combine(day, time.min))


@extend_schema_field(
    {"oneOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}
)
class CreatedAtBoundFilter(django_filters.Filter):
    """``created_at`` from (``end=False``, inclusive) or until (``end=True``) a moment or day."""

    field_class = DateOrDateTimeField

    def __init__(self, *, end: bool, **kwargs: Any) -> None:
        super().__init__(field_name="created_at", **kwargs)
        self.end = end

    def filter(self, qs: QuerySet, value: date | datetime | None) -> QuerySet:
        if value is None:
            return qs
        lookup, moment = created_at_bound(value, end=self.end)
        return qs.filter(**{f"{self.field_name}__{lookup}": moment})


class StrictBooleanField(forms.Field):
    """``true``/``false`` (or ``1``/``0``); anything else is an error, not "no filter"."""

    default_error_messages = {"invalid": _("Use true or false.")}
    VALUES = {"true": True, "1": True, "false": False, "0": False}

    def to_python(self, value: Any) -> bool | None:
        # Absent is None; present but empty (``?is_read=``) is an error, as the schema says.
        if value is None:
            return None
        try:
            return self.VALUES[str(value).strip().lower()]
        except KeyError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class ActivityFeedFilterSet(django_filters.FilterSet):
    """Filters of ``GET activity-feed/``; the model is bound per request (swappable)."""

    activity_type = django_filters.CharFilter(
        field_name="activity_type", max_length=64, help_text=_("Exact activity type.")
    )
    is_read = StrictBooleanFilter(field_name="is_read", help_text=_("true or false."))
    start_date = CreatedAtBoundFilter(
        end=False, help_text=_("Items created at or after this ISO date or date-time.")
    )
    end_date = CreatedAtBoundFilter(
        end=True, help_text=_("Items created up to this date-time, or through this date.")
    )
