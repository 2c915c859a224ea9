"""Placeholder: replaced by the ingestion endpoint (issue 4)."""

from rest_framework.views import APIView


class EventIngestView(APIView):
    pass
