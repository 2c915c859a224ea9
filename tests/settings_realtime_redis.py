"""The test settings with the real-time stream on Redis pub/sub (db 10 of 127.0.0.1)."""

from tests.settings import *  # noqa: F403
from tests.settings import ENGAGEMENT

ENGAGEMENT = {
    **ENGAGEMENT,
    "REALTIME_BROKER": "redis",
    "REALTIME_REDIS_URL": "redis://127.0.0.1:6379/10",
}
