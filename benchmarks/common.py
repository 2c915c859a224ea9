"""Helpers shared by the benchmark suites: timing, peak memory, the result table."""

from __future__ import annotations

import resource
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

from django.core.management import call_command
from django.db import connection


@dataclass
class Row:
    """One measured operation: the package's figure beside the raw-SQL floor."""

    operation: str
    size: int
    seconds: float
    floor_seconds: float | None = None
    unit: str = "rows/s"
    note: str = ""

    @property
    def rate(self) -> float:
        return self.size / self.seconds if self.seconds else float("inf")

    @property
    def ratio(self) -> str:
        if not self.floor_seconds:
            return "-"
        return f"{self.seconds / self.floor_seconds:.2f}x"


def prepare_database() -> None:
    call_command("migrate", verbosity=0)


def measure(func: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def peak_python_memory_mb(func: Callable[[], object]) -> tuple[float, float]:
    """Run ``func`` under tracemalloc; return (seconds, peak MB allocated by Python)."""
    tracemalloc.start()
    try:
        seconds, _ = measure(func)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return seconds, peak / 1e6


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vendor() -> str:
    return connection.vendor


def print_table(title: str, rows: list[Row]) -> None:
    header = (
        f"{'operation':<48} {'size':>10} {'seconds':>9} {'rate':>14} "
        f"{'floor s':>9} {'vs floor':>8}  note"
    )
    print(f"\n## {title} ({connection.vendor})\n{header}\n{'-' * len(header)}")
    for row in rows:
        floor = f"{row.floor_seconds:.4f}" if row.floor_seconds else "-"
        rate = f"{row.rate:,.0f} {row.unit}"
        print(
            f"{row.operation:<48} {row.size:>10,} {row.seconds:>9.4f} {rate:>14} "
            f"{floor:>9} {row.ratio:>8}  {row.note}"
        )
