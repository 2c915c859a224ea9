"""Plain helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import io
import socket

from django.core.management import call_command

from django_engagement.models import get_event_model, get_feed_model


def events():
    """The configured event model's default manager."""
    return get_event_model()._default_manager


def feed():
    """The configured feed model's default manager."""
    return get_feed_model()._default_manager


def command_output(name: str, *args, tty: bool = False) -> str:
    """Run management command ``name`` and return its stdout; ``tty`` makes it a terminal."""
    out = io.StringIO()
    if tty:
        out.isatty = lambda: True
    call_command(name, *args, stdout=out)
    return out.getvalue()


def redis_available() -> bool:
    """Whether a Redis server answers PING on 127.0.0.1:6379."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False
