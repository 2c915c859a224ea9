"""Grouping and flood folding at fan-out: ``FEED_GROUPING`` and ``FEED_RATE_LIMIT`` "fold".

Usage::

    ENGAGEMENT = {
        "FEED_GROUPING": {
            "member_joined": {"window": 3600, "title": "{actor} and {others} joined {target}"},
        },
    }

Items of a grouped activity type carry a ``group_key`` (type and target). While a
recipient's item of that key is unread and younger than ``window`` seconds, the next
item folds into it: ``data["count"]`` goes up by one, the actor joins
``data["actors"]`` (the latest ``actors``, newest last) and the title is rendered
again from the count. The fold is the ``ON CONFLICT (group_key, user) DO UPDATE`` of
the fan-out's own ``INSERT ... SELECT``, against a partial unique index on the open
(unread) group items, so concurrent fan-outs count exactly and no recipient is read
and written from Python. Reading the item ends the group (it leaves the index).

This module builds the SQL pieces; ``services.feed`` runs them.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connections, models, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Exists, OuterRef, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.sql import Query
from django.utils import timezone
from django.utils.translation import ngettext

from ..conf import engagement_settings
from ..models import AbstractActivityFeedItem, column_of
from .analytics import pk_json
from .preferences import RateLimit, rate_limit_table

#: What a grouped title or description may name.
PLACEHOLDERS = ("actor", "others", "count", "target", "title")
GROUPING_KEYS = ("window", "title", "description", "actors")
DEFAULT_GROUP_TITLE = "{title} ({count})"

# Stand-ins for the per-row numbers while a template is rendered in Python; the SQL
# replaces them with the row's count.
_COUNT = "\x00count\x00"
_OTHERS = "\x00others\x00"
_NUMBER = "\x00n\x00"
_TOKENS = re.compile(f"({re.escape(_COUNT)}|{re.escape(_OTHERS)})")


def _template_error(template: Any) -> str | None:
    """Why ``template`` is not a grouped title/description template, or None."""
    if not isinstance(template, str):
        return "must be a string"
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"is not a format string ({exc})"
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in PLACEHOLDERS:
            return f"names {{{field}}}; use {', '.join('{' + name + '}' for name in PLACEHOLDERS)}"
        if spec or conversion:
            return f"formats {{{field}}}; write the placeholder plainly"
    return None


@dataclass(frozen=True)
class Grouping:
    """How one activity type folds: ``window`` seconds, the templates, actors kept.

    ``title`` (and ``description``, when given) is rendered for two or more items
    with ``{actor}`` (the newest actor), ``{others}`` ("1 other", "3 others"),
    ``{count}``, ``{target}`` and ``{title}`` (the single item's title).
    """

    window: int = 3600
    title: str = DEFAULT_GROUP_TITLE
    description: str | None = None
    actors: int = 3

    @classmethod
    def from_setting(cls, activity_type: str, value: Any) -> Grouping:
        where = f"ENGAGEMENT FEED_GROUPING[{activity_type!r}]"
        if not isinstance(value, dict):
            raise ImproperlyConfigured(f"{where} must be a dict, got {value!r}.")
        unknown = sorted(set(value) - set(GROUPING_KEYS))
        if unknown:
            raise ImproperlyConfigured(
                f"{where} has unknown keys {unknown}; keys are {', '.join(GROUPING_KEYS)}."
            )
        for key in ("window", "actors"):
            number = value.get(key, getattr(cls, key))
            if isinstance(number, bool) or not isinstance(number, int) or number < 1:
                raise ImproperlyConfigured(
                    f"{where}[{key!r}] must be a positive whole number, got {number!r}."
                )
        for key in ("title", "description"):
            if value.get(key) is None and key == "description":
                continue
            error = _template_error(value.get(key, DEFAULT_GROUP_TITLE))
            if error:
                raise ImproperlyConfigured(f"{where}[{key!r}] {error}.")
        return cls(**value)


def grouping_table() -> dict[str, Grouping]:
    """``activity_type -> Grouping`` from ``FEED_GROUPING``; raises ImproperlyConfigured."""
    setting = engagement_settings.FEED_GROUPING or {}
    if not isinstance(setting, dict):
        raise ImproperlyConfigured(
            f"ENGAGEMENT FEED_GROUPING must be a dict of activity types, got {setting!r}."
        )
    return {key: Grouping.from_setting(key, value) for key, value in setting.items()}


def flood_and_grouping_tables() -> tuple[dict[str, Grouping], dict[str, RateLimit | None]]:
    """``FEED_GROUPING`` and ``FEED_RATE_LIMIT`` parsed (check E016 reports the error)."""
    return grouping_table(), rate_limit_table()


def grouping_for(activity_type: str) -> Grouping | None:
    """The ``FEED_GROUPING`` entry of ``activity_type``, or None (not grouped)."""
    return grouping_table().get(activity_type)


def group_key(item: AbstractActivityFeedItem) -> str:
    """The key items fold on: activity type and target (content type and id)."""
    content_type = item.target_content_type_id or ""
    return f"{item.activity_type}|{content_type}|{item.target_object_id}"


def actor_entry(actor: Any) -> dict[str, Any] | None:
    """``{"id", "name"}`` of a user as ``data["actors"]`` holds it; None without one."""
    if actor is None or getattr(actor, "pk", None) is None:
        return None
    return {"id": pk_json(actor.pk), "name": str(actor)}


def start_group(
    item: AbstractActivityFeedItem, grouping: Grouping, actor: dict[str, Any] | None
) -> None:
    """Make ``item`` (an unsaved template) the first item of its group."""
    item.group_key = group_key(item)
    item.data = {**item.data, "count": 1, "actors": [actor] if actor else []}


def close_expired(item: AbstractActivityFeedItem, grouping: Grouping) -> int:
    """End the open groups of ``item``'s key that are ``window`` seconds old: one UPDATE.

    Their ``group_key`` is cleared, so they leave the unique index and the next item
    starts a new group. Served by the partial ``(group_key, created_at)`` index.
    """
    cutoff = timezone.now() - timedelta(seconds=grouping.window)
    return (
        type(item)
        ._default_manager.filter(group_key=item.group_key, is_read=False, created_at__lte=cutoff)
        .update(group_key="")
    )


def open_group(item: AbstractActivityFeedItem) -> Exists:
    """EXISTS: the recipient (``OuterRef("pk")``) has an open group of ``item``'s key."""
    return Exists(
        type(item)._default_manager.filter(
            user=OuterRef("pk"), group_key=item.group_key, is_read=False
        )
    )


# -- SQL --------------------------------------------------------------------------------


def _text(connection: BaseDatabaseWrapper) -> str:
    return "CAST(%s AS text)" if connection.vendor == "postgresql" else "%s"


def _render_sql(
    template: str,
    count_sql: str,
    context: dict[str, str],
    connection: BaseDatabaseWrapper,
    max_length: int | None,
) -> tuple[str, list[Any]]:
    """SQL of ``template`` for a row whose item count is ``count_sql`` (two or more).

    Everything but the count is the same for every recipient of one fan-out, so it is
    rendered here; only ``{count}`` and ``{others}`` are SQL.
    """
    rendered = template.format_map({**context, "count": _COUNT, "others": _OTHERS})
    one = ngettext("%(number)s other", "%(number)s others", 1) % {"number": 1}
    many = ngettext("%(number)s other", "%(number)s others", 2) % {"number": _NUMBER}
    many_before, _, many_after = many.partition(_NUMBER)
    text = _text(connection)
    parts: list[str] = []
    params: list[Any] = []
    for piece in _TOKENS.split(rendered):
        if piece == _COUNT:
            parts.append(f"CAST({count_sql} AS text)")
        elif piece == _OTHERS:
            parts.append(
                f"(CASE WHEN {count_sql} = 2 THEN {text} "
                f"ELSE {text} || CAST({count_sql} - 1 AS text) || {text} END)"
            )
            params += [one, many_before, many_after]
        elif piece:
            parts.append(text)
            params.append(piece)
    sql = " || ".join(parts) or text
    if not parts:
        params.append("")
    if max_length:
        sql = f"SUBSTR({sql}, 1, {int(max_length)})"
    return sql, params


def _json_sql(Feed: type[models.Model], connection: BaseDatabaseWrapper, qualified: bool) -> dict:
    """Column references and JSON functions of ``Feed.data`` for this database."""
    quote = connection.ops.quote_name
    data = quote(column_of(Feed, "data"))
    if qualified:
        data = f"{quote(Feed._meta.db_table)}.{data}"
    if connection.vendor == "postgresql":
        return {
            "data": data,
            "get_int": lambda key, default: f"COALESCE(({data} ->> '{key}')::integer, {default})",
            "set": lambda expr, key, value: f"jsonb_set({expr}, '{{{key}}}', to_jsonb({value}))",
        }
    return {
        "data": data,
        "get_int": lambda key, default: f"COALESCE(json_extract({data}, '$.{key}'), {default})",
        "set": lambda expr, key, value: f"json_set({expr}, '$.{key}', {value})",
    }


def _actors_sql(
    connection: BaseDatabaseWrapper, expr: str, data_sql: str, actor: dict[str, Any], keep: int
) -> tuple[str, list[Any]]:
    """``expr`` with ``data["actors"]`` (read from ``data_sql``) plus ``actor``, at most ``keep``.

    The new actor goes last; past ``keep``, the oldest is dropped.
    """
    payload = json.dumps(actor, separators=(",", ":"))
    if connection.vendor == "postgresql":
        old = f"COALESCE({data_sql} -> 'actors', '[]'::jsonb)"
        trimmed = f"(CASE WHEN jsonb_array_length({old}) >= %s THEN {old} - 0 ELSE {old} END)"
        added = f"{trimmed} || jsonb_build_array(CAST(%s AS jsonb))"
        return f"jsonb_set({expr}, '{{actors}}', {added})", [keep, payload]
    old = f"COALESCE(json_extract({data_sql}, '$.actors'), '[]')"
    trimmed = (
        f"(CASE WHEN json_array_length({old}) >= %s THEN json_remove({old}, '$[0]') ELSE {old} END)"
    )
    added = f"json(json_insert({trimmed}, '$[#]', json(%s)))"
    return f"json_set({expr}, '$.actors', {added})", [keep, payload]


def _condition_sql(
    Feed: type[models.Model], condition: models.Q, connection: BaseDatabaseWrapper
) -> str:
    """A model's ``Q`` as SQL on unqualified columns with literal values, as in the index.

    Both databases match an ``ON CONFLICT ... WHERE`` to a partial index by its
    predicate, and SQLite only with the same constants (not parameters).
    """
    query = Query(model=Feed, alias_cols=False)
    where = query.build_where(condition)
    sql, params = where.as_sql(query.get_compiler(connection=connection), connection)
    quote_value = connection.schema_editor().quote_value
    return sql % tuple(quote_value(param) for param in params)


def _open_group_constraint(Feed: type[models.Model]) -> models.UniqueConstraint:
    for constraint in Feed._meta.constraints:
        if (
            isinstance(constraint, models.UniqueConstraint)
            and tuple(constraint.fields) == ("group_key", "user")
            and constraint.condition is not None
        ):
            return constraint
    raise ImproperlyConfigured(
        f"{Feed._meta.label} has no unique constraint on (group_key, user): subclass "
        "AbstractActivityFeedItem without replacing Meta.constraints, or FEED_GROUPING "
        "cannot fold."
    )


def upsert_suffix(
    template: AbstractActivityFeedItem,
    grouping: Grouping,
    connection: BaseDatabaseWrapper,
    *,
    actor: dict[str, Any] | None,
    target_name: str,
) -> tuple[str, list[Any]]:
    """``ON CONFLICT ... DO UPDATE ... RETURNING user, count`` for a grouped INSERT ... SELECT.

    A row is new when its returned count is 1; a fold returns two or more.
    """
    Feed = type(template)
    quote = connection.ops.quote_name
    constraint = _open_group_constraint(Feed)
    assert constraint.condition is not None
    columns = ", ".join(quote(column_of(Feed, name)) for name in constraint.fields)
    predicate = _condition_sql(Feed, constraint.condition, connection)
    sql_json = _json_sql(Feed, connection, qualified=True)
    count = f"({sql_json['get_int']('count', 1)} + 1)"
    data = sql_json["set"](sql_json["data"], "count", count)
    set_params: list[Any] = []
    if actor:
        data, actor_params = _actors_sql(connection, data, sql_json["data"], actor, grouping.actors)
        set_params += actor_params
    context = {
        "actor": actor["name"] if actor else "",
        "target": target_name,
        "title": template.title,
    }
    assignments = [f"{quote(column_of(Feed, 'data'))} = {data}"]
    title_field = Feed._meta.get_field("title")
    title_sql, title_params = _render_sql(
        grouping.title, count, context, connection, getattr(title_field, "max_length", None)
    )
    assignments.append(f"{quote(column_of(Feed, 'title'))} = {title_sql}")
    set_params += title_params
    if grouping.description is not None:
        description_sql, description_params = _render_sql(
            grouping.description,
            count,
            {**context, "title": template.description},
            connection,
            None,
        )
        assignments.append(f"{quote(column_of(Feed, 'description'))} = {description_sql}")
        set_params += description_params
    returned = _json_sql(Feed, connection, qualified=False)["get_int"]("count", 1)
    sql = (
        f"ON CONFLICT ({columns}) WHERE {predicate} DO UPDATE SET {', '.join(assignments)} "
        f"RETURNING {quote(column_of(Feed, 'user'))}, {returned}"
    )
    return sql, set_params


def fold_into_latest(item: AbstractActivityFeedItem, recipients: models.QuerySet) -> int:
    """Flood fold: count ``item`` in each recipient's latest unread item of its type.

    One UPDATE of ``data["folded"]`` (+1) on the rows a correlated subquery picks
    per recipient; recipients without an unread item of the type get nothing.
    Returns how many items were folded into.
    """
    Feed = type(item)
    manager = Feed._default_manager
    latest = (
        manager.filter(user=OuterRef("pk"), activity_type=item.activity_type, is_read=False)
        .order_by("-created_at", "-pk")
        .values("pk")[:1]
    )
    picked = (
        recipients.order_by()
        .annotate(engagement_latest=Subquery(latest))
        .filter(engagement_latest__isnull=False)
        .values("engagement_latest")
    )
    connection = connections[router.db_for_write(Feed)]
    sql_json = _json_sql(Feed, connection, qualified=False)
    folded = sql_json["set"](
        sql_json["data"], "folded", f"({sql_json['get_int']('folded', 0)} + 1)"
    )
    return manager.filter(pk__in=picked).update(
        data=RawSQL(folded, [], output_field=models.JSONField())
    )
