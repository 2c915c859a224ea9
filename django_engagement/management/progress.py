"""A one-line progress display for long management commands.

Usage::

    with Progress(self.stdout, verbosity) as progress:
        service(on_batch=progress.update)   # on_batch(label, rows_done)

It rewrites a single line (``\\r``) and only when stdout is a terminal and
verbosity is at least 1, so logs, pipes and ``call_command`` output stay clean.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import OutputWrapper


class Progress:
    """Shows ``<label>: <n> rows`` on one terminal line while work goes on."""

    def __init__(self, stdout: OutputWrapper, verbosity: int) -> None:
        self.stdout = stdout
        self.enabled = verbosity >= 1 and stdout.isatty()
        self._shown = False

    def update(self, label: str, done: int) -> None:
        if not self.enabled:
            return
        self.stdout.write(f"\r\033[K{label}: {done:,} rows", ending="")
        self.stdout.flush()
        self._shown = True

    def finish(self) -> None:
        """End the progress line so the next output starts on a fresh one."""
        if self._shown:
            self.stdout.write("\r\033[K", ending="")
            self.stdout.flush()
            self._shown = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.finish()
