"""Placeholder: replaced by the admin report endpoints (issue 5)."""

from rest_framework.views import APIView


class DailySummaryView(APIView):
    pass


class ActiveUsersView(APIView):
    pass


class TopValuesView(APIView):
    pass


class EventExportView(APIView):
    pass


class DashboardView(APIView):
    pass
