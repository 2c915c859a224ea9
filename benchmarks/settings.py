"""Settings for the benchmarks: the test settings on a file or PostgreSQL database."""

from tests.settings import *  # noqa: F403

DEBUG = False
