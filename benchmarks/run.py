"""Run the benchmarks and print one table per suite.

    python benchmarks/run.py                      # every suite, SQLite file database
    DATABASE_URL=postgres://... python benchmarks/run.py ingest feed
    python benchmarks/run.py --scale 0.1          # smaller data for a quick look

Each ``benchmarks/bench_<name>.py`` module defines ``run(scale: float) -> list[Row]``;
rows put the package's number beside the raw-SQL floor for the same work.
Timing lives here, never in tests.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{ROOT / 'benchmarks' / 'bench.sqlite3'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suites", nargs="*", help="suite names (bench_<name>.py); default all")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply data sizes by this")
    args = parser.parse_args()

    import django

    django.setup()
    from common import prepare_database, print_table

    names = args.suites or sorted(p.stem[6:] for p in Path(__file__).parent.glob("bench_*.py"))
    prepare_database()
    for name in names:
        module = importlib.import_module(f"bench_{name}")
        print_table(name, module.run(args.scale))


if __name__ == "__main__":
    main()
