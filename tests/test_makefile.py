"""The Makefile's first install says what it is doing (``make -n``: nothing is run)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_first_install_announces_itself_and_is_not_silent(tmp_path):
    venv = tmp_path / "venv"
    dry_run = subprocess.run(
        ["make", "-n", "-C", str(ROOT), f"VENV={venv}", "install"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()

    install = [line for line in dry_run if "pip install" in line]
    assert install == [f"{venv}/bin/pip install -e '.[dev]'"]  # no -q: pip lists what it fetches
    announce = dry_run.index(
        f'echo "==> Installing django-engagement (editable) with the [dev] extras into {venv}"'
    )
    assert announce < dry_run.index(install[0])
    assert not venv.exists()
