#!/usr/bin/env bash
# Install the built wheel into a fresh venv and drive a host project it has never seen:
# custom user model, UUID target, swapped event model migrated with the host's own makemigrations.
# usage: .ci/host_smoke/run.sh path/to/django_engagement-*.whl [DATABASE_URL]
set -euo pipefail
wheel=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$here"/settings.py "$here"/urls.py "$here"/exercise.py "$here"/shop "$work"/
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$wheel" "psycopg[binary]"
cd "$work"
export DJANGO_SETTINGS_MODULE=settings PYTHONPATH="$work"
export DATABASE_URL="${2:-sqlite:///$work/host.sqlite3}"
"$work/venv/bin/django-admin" makemigrations shop -v0
"$work/venv/bin/django-admin" migrate -v0
"$work/venv/bin/django-admin" makemigrations --check --dry-run -v0
"$work/venv/bin/django-admin" check --fail-level WARNING
"$work/venv/bin/python" exercise.py
