"""Celery tasks (``[celery]`` extra): thin wrappers over the services.

Loaded by Celery's autodiscovery only; nothing in the package imports this
module eagerly. Tasks take ids, not instances, and are safe to retry.
"""

from __future__ import annotations

from celery import shared_task  # noqa: F401
