"""DRF API of django-engagement: ingestion, activity feed and admin reports."""
