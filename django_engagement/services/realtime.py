"""Real-time feed delivery: writers publish small change notes, stream processes fan them out.

Any process that writes feed items (a web worker, a Celery worker, a management
command) publishes, after commit, a note naming the users whose feeds changed
(``FeedChange``: user ids, or "anyone" for a queryset fan-out). A broker carries it
to every stream process:

- ``"postgres"``: ``NOTIFY`` on the feed database, ``LISTEN`` on one psycopg 3 async
  connection per process (the default on PostgreSQL, no extra server);
- ``"redis"``: Redis pub/sub on ``REALTIME_REDIS_URL``;
- ``"memory"``: within one process only (the default elsewhere, e.g. SQLite).

Each stream process holds one ``Hub``: one broker listener however many streams
are open, started with the first subscriber and closed with the last one. On a
note, the hub re-reads the new items and unread counts of all its affected users
in a fixed number of queries (``read_changes``) and hands each subscription its
share; notes never carry item contents. Nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router
from django.db.models import Max

from ..conf import engagement_settings
from ..models import get_feed_model
from ..models.feed import AbstractActivityFeedItem
from .unread import unread_counts

logger = logging.getLogger(__name__)

POSTGRES, REDIS, MEMORY = "postgres", "redis", "memory"
BROKERS = (POSTGRES, REDIS, MEMORY)

# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; a longer user list becomes
# "anyone", which costs the stream processes one wider re-read, never a lost item.
MAX_PAYLOAD = 7900
# Items sent on a resume (Last-Event-ID); older ones are left to the paginated list.
RESUME_LIMIT = 100
# Users per ``user_id IN (...)`` of a re-read (SQLite's variable limit is 999 on old builds).
READ_CHUNK_SIZE = 500
# Seconds before a broken broker connection is opened again.
RECONNECT_DELAY = 1.0


# -- the note ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedChange:
    """Whose feeds changed; ``user_ids`` None means any user's may have."""

    user_ids: tuple[Any, ...] | None

    def to_payload(self) -> str:
        payload = json.dumps({"users": None if self.user_ids is None else list(self.user_ids)})
        return payload if len(payload) < MAX_PAYLOAD else json.dumps({"users": None})

    @classmethod
    def from_payload(cls, payload: str | bytes) -> FeedChange:
        """Parse a note; anything unreadable is treated as "anyone" (re-read, never miss)."""
        try:
            users = json.loads(payload)["users"]
        except (ValueError, TypeError, KeyError):
            return cls(None)
        return cls(None if not isinstance(users, list) else tuple(users))

    def concerns(self, user_id: Any) -> bool:
        return self.user_ids is None or user_id in self.user_ids


def broker_name() -> str:
    """The configured broker, or the default for the feed database's vendor."""
    configured = engagement_settings.REALTIME_BROKER
    if configured is None:
        return POSTGRES if feed_connection().vendor == "postgresql" else MEMORY
    if configured not in BROKERS:
        raise ImproperlyConfigured(
            f"ENGAGEMENT['REALTIME_BROKER'] must be one of {', '.join(BROKERS)} or None, "
            f"not {configured!r}."
        )
    return configured


def feed_connection():
    """The connection of the feed model's write database (where NOTIFY goes)."""
    return connections[router.db_for_write(get_feed_model())]


# -- publishing (any process, sync) -----------------------------------------------------


_redis_clients: dict[str, Any] = {}


def _redis_client(url: str) -> Any:
    import redis  # the "realtime" extra; only imported when the Redis broker is chosen

    client = _redis_clients.get(url)
    if client is None:
        client = _redis_clients[url] = redis.Redis.from_url(url)
    return client


def publish(change: FeedChange) -> None:
    """Send ``change`` to every stream process; a broker failure is logged, not raised.

    Called after the writing transaction committed, so raising would only turn a
    successful write into an error for its caller.
    """
    payload = change.to_payload()
    channel = engagement_settings.REALTIME_CHANNEL
    try:
        name = broker_name()
        if name == POSTGRES:
            with feed_connection().cursor() as cursor:
                cursor.execute("SELECT pg_notify(%s, %s)", [channel, payload])
        elif name == REDIS:
            _redis_client(engagement_settings.REALTIME_REDIS_URL).publish(channel, payload)
        else:
            hub.receive_threadsafe(payload)
    except Exception:
        logger.warning("Could not publish a feed change to the real-time broker", exc_info=True)


def publish_users(user_ids: Iterable[Any] | None) -> None:
    """``publish`` for these users (None: anyone)."""
    publish(FeedChange(None if user_ids is None else tuple(user_ids)))


# -- reading (the stream process, sync; run through sync_to_async) ---------------------


def release_connections() -> None:
    """Close this thread's database connections outside a transaction.

    Django's ASGI handler gives each request its own thread for sync code, and a
    stream's request lasts as long as the tab is open: without this, every open
    stream would keep a database connection (PostgreSQL's 100 are soon gone).
    """
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def _released(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` run through ``sync_to_async``, releasing its connections afterwards."""

    def run(*args: Any) -> Any:
        try:
            return function(*args)
        finally:
            release_connections()

    return sync_to_async(run)


@dataclass
class FeedState:
    """New items (ascending pk) and unread counts of some users, read together."""

    items: dict[Any, list[AbstractActivityFeedItem]] = field(default_factory=dict)
    unread: dict[Any, int] = field(default_factory=dict)


def _chunks(values: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _unread_counts(user_ids: Sequence[Any]) -> dict[Any, int]:
    """The users' unread counters (``services/unread.py``): one primary-key read."""
    return unread_counts(user_ids)


def read_changes(user_ids: Sequence[Any], after: int) -> FeedState:
    """Items with ``pk > after`` and the unread count of each of ``user_ids``.

    Two queries per chunk of ``READ_CHUNK_SIZE`` users, however many items or streams.
    """
    manager = get_feed_model()._default_manager
    state = FeedState()
    for chunk in _chunks(list(user_ids), READ_CHUNK_SIZE):
        for item in manager.filter(user_id__in=chunk, pk__gt=after).order_by("pk"):
            state.items.setdefault(item.user_id, []).append(item)
        state.unread.update(_unread_counts(chunk))
    return state


def newest_item_id(user_id: Any) -> int:
    """The pk of ``user_id``'s newest item (0 for an empty feed): where a fresh stream starts."""
    newest = get_feed_model()._default_manager.filter(user_id=user_id).aggregate(Max("pk"))
    return newest["pk__max"] or 0


def read_start(user_id: Any, after: int) -> FeedState:
    """A new stream's first state: at most ``RESUME_LIMIT`` newest items after ``after``
    (ascending) and the unread count. Two queries."""
    manager = get_feed_model()._default_manager
    newest = manager.filter(user_id=user_id, pk__gt=after).order_by("-pk")[:RESUME_LIMIT]
    return FeedState(items={user_id: list(reversed(newest))}, unread=_unread_counts([user_id]))


# -- the stream process: one listener, many subscriptions -------------------------------


@dataclass(frozen=True)
class Update:
    """What a subscription is told: its user's new items and current unread count."""

    items: list[AbstractActivityFeedItem]
    unread_count: int


class Subscription:
    """One open stream of ``user_id``'s feed; ``last_id`` is the newest item it has sent."""

    def __init__(self, user_id: Any, last_id: int) -> None:
        self.user_id = user_id
        self.last_id = last_id
        self.updates: asyncio.Queue[Update] = asyncio.Queue()

    def take(self, update: Update) -> Update:
        """``update`` without the items this stream already sent; advances ``last_id``."""
        items = [item for item in update.items if item.pk > self.last_id]
        if items:
            self.last_id = items[-1].pk
        return Update(items, update.unread_count)


Listener = Callable[[Callable[[str | bytes], None], asyncio.Event], Awaitable[None]]


async def listen_postgres(deliver: Callable[[str | bytes], None], ready: asyncio.Event) -> None:
    """``LISTEN`` on one autocommit psycopg 3 connection to the feed database until cancelled."""
    import psycopg
    from psycopg import sql

    params = {
        key: value
        for key, value in feed_connection().get_connection_params().items()
        if isinstance(value, str | int) and key != "prepare_threshold"
    }
    channel = engagement_settings.REALTIME_CHANNEL
    # Django's connection params (a plain dict of str/int) match connect()'s keywords.
    connection = await psycopg.AsyncConnection.connect(**params, autocommit=True)  # type: ignore[arg-type]
    async with connection:
        await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        ready.set()
        async for note in connection.notifies():
            deliver(note.payload)


async def listen_redis(deliver: Callable[[str | bytes], None], ready: asyncio.Event) -> None:
    """``SUBSCRIBE`` on ``REALTIME_REDIS_URL`` until cancelled."""
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(engagement_settings.REALTIME_REDIS_URL)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(engagement_settings.REALTIME_CHANNEL)
        ready.set()
        async for message in pubsub.listen():
            deliver(message["data"])
    finally:
        await pubsub.aclose()
        await client.aclose()


async def listen_memory(deliver: Callable[[str | bytes], None], ready: asyncio.Event) -> None:
    """No broker: ``publish`` calls ``Hub.receive_threadsafe`` of this process directly."""
    ready.set()
    await asyncio.Event().wait()


LISTENERS: dict[str, Listener] = {
    POSTGRES: listen_postgres,
    REDIS: listen_redis,
    MEMORY: listen_memory,
}


class Hub:
    """The process's subscriptions by user, its broker listener and its re-read loop.

    Both tasks run while at least one subscription is open, so an idle process
    holds no broker connection. Notes arriving during a re-read are merged into
    the next one: a burst of writes costs a few re-reads, not one per note.
    """

    def __init__(self) -> None:
        self.subscriptions: dict[Any, set[Subscription]] = defaultdict(set)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.tasks: list[asyncio.Task] = []
        self._lock = threading.Lock()
        self._pending: set[Any] | None = set()  # None: every user
        self._dirty = asyncio.Event()

    @property
    def subscriber_count(self) -> int:
        return sum(len(subscriptions) for subscriptions in self.subscriptions.values())

    @property
    def running(self) -> bool:
        return any(not task.done() for task in self.tasks)

    async def subscribe(self, user_id: Any, last_id: int) -> Subscription:
        """Register a stream; the first one starts the listener and waits until it listens."""
        subscription = Subscription(user_id, last_id)
        if not self.running:
            await self._start()
        self.subscriptions[user_id].add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Drop a stream; the last one stops the listener (and closes its connection)."""
        users = self.subscriptions.get(subscription.user_id)
        if users is not None:
            users.discard(subscription)
            if not users:
                del self.subscriptions[subscription.user_id]
        if not self.subscriptions:
            for task in self.tasks:
                task.cancel()
            self.tasks = []

    async def _start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._dirty = asyncio.Event()
        self._pending = set()
        ready = asyncio.Event()
        listener = LISTENERS[broker_name()]
        self.tasks = [
            asyncio.create_task(self._listen(listener, ready), name="engagement-listener"),
            asyncio.create_task(self._reread(), name="engagement-reread"),
        ]
        await ready.wait()

    async def _listen(self, listener: Listener, ready: asyncio.Event) -> None:
        """Run ``listener``; reopen it after a failure and make every stream re-read."""
        while True:
            try:
                await listener(self.receive, ready)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("Real-time broker connection lost; reconnecting", exc_info=True)
            ready.set()  # a broken broker must not hang new streams
            await asyncio.sleep(RECONNECT_DELAY)
            self.receive(FeedChange(None).to_payload())  # notes may have been missed

    def receive(self, payload: str | bytes) -> None:
        """Take a note from the broker (in the hub's loop)."""
        change = FeedChange.from_payload(payload)
        with self._lock:
            if change.user_ids is None or self._pending is None:
                self._pending = None
            else:
                self._pending.update(u for u in change.user_ids if u in self.subscriptions)
                if not self._pending:
                    return
        self._dirty.set()

    def receive_threadsafe(self, payload: str | bytes) -> None:
        """``receive`` from any thread (the memory broker's writers run in worker threads)."""
        loop = self.loop
        if loop is not None and self.running and not loop.is_closed():
            loop.call_soon_threadsafe(self.receive, payload)

    async def _reread(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            with self._lock:
                pending, self._pending = self._pending, set()
            users = list(self.subscriptions) if pending is None else list(pending)
            subscriptions = [s for user in users for s in self.subscriptions.get(user, ())]
            if not subscriptions:
                continue
            after = min(subscription.last_id for subscription in subscriptions)
            try:
                state = await _released(read_changes)(users, after)
            except Exception:
                logger.warning("Could not re-read feeds for the real-time stream", exc_info=True)
                continue
            for subscription in subscriptions:
                subscription.updates.put_nowait(
                    Update(
                        state.items.get(subscription.user_id, []),
                        state.unread.get(subscription.user_id, 0),
                    )
                )


hub = Hub()


@contextlib.asynccontextmanager
async def subscription_for(user_id: Any, after: int | None):
    """Open a subscription of ``user_id`` and yield it with its first ``Update``.

    Without ``after`` (no Last-Event-ID) the stream starts after the newest item, read
    before subscribing; the first read happens after subscribing, so an item committed
    in between comes from one or the other (``Subscription.take`` drops the twin).
    Always unsubscribes.
    """
    if after is None:
        after = await _released(newest_item_id)(user_id)
    subscription = await hub.subscribe(user_id, after)
    try:
        state = await _released(read_start)(user_id, after)
        first = subscription.take(Update(state.items[user_id], state.unread[user_id]))
        yield subscription, first
    finally:
        hub.unsubscribe(subscription)
