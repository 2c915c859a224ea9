"""Celery app of the prefork worker that tests/test_fan_out_delivery.py starts and kills.

The test passes everything through the environment: ``DJANGO_SETTINGS_MODULE`` and
``DATABASE_URL`` (its test database), ``ENGAGEMENT_TEST_BROKER`` and
``ENGAGEMENT_TEST_QUEUE``. With ``ENGAGEMENT_TEST_PAUSE_FILE`` set, the pool process
writes its pid to that file and sleeps just before its first feed INSERT, inside the
fan-out's transaction, so the test can SIGKILL it there (SQLite has no
``pg_stat_activity`` to watch).
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

app = Celery("engagement-delivery-worker")
app.conf.update(
    broker_url=os.environ["ENGAGEMENT_TEST_BROKER"],
    task_default_queue=os.environ["ENGAGEMENT_TEST_QUEUE"],
    result_backend=None,
    imports=["django_engagement.tasks"],
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
)

PAUSE_FILE = os.environ.get("ENGAGEMENT_TEST_PAUSE_FILE")


def pause_before_feed_insert(execute: Any, sql: str, params: Any, many: bool, context: Any):
    """Block the first feed INSERT until the test kills this process."""
    from django_engagement.models import get_feed_model

    table = get_feed_model()._meta.db_table
    if PAUSE_FILE and sql.startswith("INSERT") and table in sql and not os.path.exists(PAUSE_FILE):
        with open(f"{PAUSE_FILE}.tmp", "w") as file:
            file.write(str(os.getpid()))
        os.rename(f"{PAUSE_FILE}.tmp", PAUSE_FILE)
        time.sleep(120)
    return execute(sql, params, many, context)


@worker_process_init.connect
def install_pause(**kwargs: Any) -> None:
    if PAUSE_FILE:
        from django.db import connection

        connection.execute_wrappers.append(pause_before_feed_insert)
