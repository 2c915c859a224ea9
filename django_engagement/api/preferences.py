"""``activity-feed/preferences/``: the caller's own notification preferences.

::

    GET   activity-feed/preferences/
    PUT   activity-feed/preferences/   the whole document; what is left out is reset
    PATCH activity-feed/preferences/   {"activity_types": {"milestone": {"email": "weekly"}}}

The document: ``default`` ({"in_feed", "email"}), ``activity_types`` (type ->
the same, or null in a PATCH to drop the override) and ``muted_targets``
([{"target_type": "app.model", "target_id": ..., "until": null}]).
"""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import EmailFrequency
from ..services.analytics import target_json_id
from ..services.preferences import Mute, get_preferences, set_preferences
from .parsers import JSONBodyMixin
from .schema import error_responses, extend_schema, extend_schema_field
from .serializers import StrictBooleanField, StrictFieldsMixin

MAX_ACTIVITY_TYPES = 200
MAX_MUTED_TARGETS = 1000


class ChoiceSerializer(StrictFieldsMixin, serializers.Serializer):
    in_feed = StrictBooleanField(required=False)
    email = serializers.ChoiceField(choices=EmailFrequency.choices, required=False)


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string", "minLength": 1}]})
class TargetIdField(serializers.JSONField):
    """The target's primary key: a number for integer keys, a string otherwise (UUID)."""


class MuteSerializer(StrictFieldsMixin, serializers.Serializer):
    target_type = serializers.CharField(help_text=_("app_label.model, e.g. courses.course"))
    target_id = TargetIdField()
    until = serializers.DateTimeField(allow_null=True, required=False, default=None)

    def validate(self, attrs: dict[str, Any]) -> Mute:
        app_label, _dot, model = attrs["target_type"].lower().partition(".")
        content_type = ContentType.objects.filter(app_label=app_label, model=model).first()
        model_class = content_type.model_class() if content_type else None
        if model_class is None:
            raise serializers.ValidationError({"target_type": [_("Unknown model.")]})
        target_id = attrs["target_id"]
        if not isinstance(target_id, int | str) or isinstance(target_id, bool):
            raise serializers.ValidationError({"target_id": [_("Must be a string or integer.")]})
        try:
            object_id = str(model_class._meta.pk.to_python(target_id))
        except Exception as exc:  # a ValidationError of the pk field, whatever its type
            raise serializers.ValidationError({"target_id": [_("Not a valid id.")]}) from exc
        return Mute(content_type, object_id, attrs["until"])


class PreferencesSerializer(StrictFieldsMixin, serializers.Serializer):
    default = ChoiceSerializer(required=False)
    activity_types = serializers.DictField(child=ChoiceSerializer(allow_null=True), required=False)
    # ListSerializer takes max_length (DRF 3.14+); the stubs do not know it yet.
    muted_targets = MuteSerializer(many=True, required=False, max_length=MAX_MUTED_TARGETS)  # type: ignore[call-arg]

    def validate_activity_types(self, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_ACTIVITY_TYPES:
            raise serializers.ValidationError(_("At most %d types.") % MAX_ACTIVITY_TYPES)
        if any(not key or len(key) > 64 for key in value):
            raise serializers.ValidationError(_("Activity types are 1 to 64 characters."))
        return value


class PreferencesOutSerializer(serializers.Serializer):
    """The response: every field filled in, mutes with their ids as JSON values."""

    default = ChoiceSerializer()
    activity_types = serializers.DictField(child=ChoiceSerializer())
    muted_targets = serializers.ListField(child=serializers.DictField())


def _document(preferences: dict[str, Any]) -> dict[str, Any]:
    return {
        **preferences,
        "muted_targets": [
            {
                "target_type": f"{mute.content_type.app_label}.{mute.content_type.model}",
                "target_id": target_json_id(mute.content_type, mute.object_id),
                "until": serializers.DateTimeField().to_representation(mute.until)
                if mute.until
                else None,
            }
            for mute in preferences["muted_targets"]
        ],
    }


class PreferencesView(JSONBodyMixin, APIView):
    """Read and change the caller's preferences; nobody else's are reachable."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses={200: PreferencesOutSerializer, **error_responses(403)},
        summary="The caller's notification preferences",
    )
    def get(self, request: Request) -> Response:
        return Response(_document(get_preferences(request.user)))

    @extend_schema(
        request=PreferencesSerializer,
        responses={200: PreferencesOutSerializer, **error_responses(400, 403)},
        summary="Replace the caller's notification preferences",
    )
    def put(self, request: Request) -> Response:
        return self._change(request, replace=True)

    @extend_schema(
        request=PreferencesSerializer,
        responses={200: PreferencesOutSerializer, **error_responses(400, 403)},
        summary="Change some of the caller's notification preferences",
    )
    def patch(self, request: Request) -> Response:
        return self._change(request, replace=False)

    def _change(self, request: Request, *, replace: bool) -> Response:
        serializer = PreferencesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(
            _document(set_preferences(request.user, serializer.validated_data, replace=replace))
        )
