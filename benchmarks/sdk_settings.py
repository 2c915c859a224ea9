"""Settings of the gunicorn server ``bench_sdk`` starts: no receivers, no throttle limit hit."""

from benchmarks.settings import *  # noqa: F403
from benchmarks.settings import ENGAGEMENT

UNREACHED_RATE = "100000000/day"  # the throttle runs (its cache work is measured), never bites

ENGAGEMENT = {
    **ENGAGEMENT,
    "TRACK": dict.fromkeys(["login", "logout", "signup", "membership", "target_lifecycle"], False),
    "INGEST_THROTTLE_RATE": UNREACHED_RATE,
    "WRITE_KEYS": {
        "wk_bench": {"source": "web", "throttle_rate": UNREACHED_RATE},
        "phc_bench": {"source": "web", "throttle_rate": UNREACHED_RATE},
    },
}
