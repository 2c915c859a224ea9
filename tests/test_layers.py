"""The package's layering, read from its source with ``ast`` (docs/architecture.md).

- models and services never import DRF, django-filter, drf-spectacular, nor the faces
  (api, admin, management) or the wiring (tasks, receivers, checks);
- no import cycles among the package's modules (module-level imports);
- a function-local import of the package's own modules only where it breaks a real
  ordering problem (the app registry), listed in ``DEFERRED_IMPORTS``.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from django_engagement import tasks
from django_engagement.services.feed import enqueue_fan_out
from django_engagement.signals import fan_out_requested

PACKAGE = "django_engagement"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

#: Top-level distributions only the HTTP face may use.
HTTP_LIBRARIES = ("rest_framework", "django_filters", "drf_spectacular")
#: Package parts the core (models) and the services must not depend on.
FACES_AND_WIRING = tuple(
    f"{PACKAGE}.{name}" for name in ("api", "admin", "management", "tasks", "receivers", "checks")
)

#: (module, function) -> the package modules it imports inside the function, and why.
DEFERRED_IMPORTS = {
    # ready(): receivers and tasks import the models, which load after the app configs.
    ("django_engagement.apps", "ready"): {"django_engagement.receivers", "django_engagement.tasks"},
    # checks is imported by EngagementConfig.__init__, before any model can load.
    ("django_engagement.checks", "_model_setting_errors"): {"django_engagement.models"},
    ("django_engagement.checks", "_target_errors"): {"django_engagement.models"},
    ("django_engagement.checks", "_feed_rule_errors"): {"django_engagement.services.feed"},
    ("django_engagement.checks", "_grouping_errors"): {"django_engagement.services.grouping"},
    ("django_engagement.checks", "_throttle_cache_warnings"): {"django_engagement.api.throttling"},
    ("django_engagement.checks", "_realtime_broker_problem"): {
        "django_engagement.services.realtime"
    },
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module (or package member), absolute
    function: str | None  # the enclosing function, None at module level
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for path in sorted(ROOT.rglob("*.py"))
        if "migrations" not in path.relative_to(ROOT).parts
    }


MODULES = package_modules()


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str, path: Path) -> Iterator[Import]:
    """Every import in ``module`` outside ``if TYPE_CHECKING:``, with its enclosing function."""

    def visit(node: ast.AST, function: str | None) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from visit(child, function or child.name)
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(module, alias.name, function, child.lineno)
            elif isinstance(child, ast.ImportFrom):
                base = _absolute(module, path, child)
                for alias in child.names:
                    member = f"{base}.{alias.name}"
                    # ``from . import checks`` imports a module; ``from .x import name`` does not.
                    target = member if member in MODULES else base
                    yield Import(module, target, function, child.lineno)
            else:
                yield from visit(child, function)

    yield from visit(ast.parse(path.read_text(), str(path)), None)


ALL_IMPORTS = [item for module, path in MODULES.items() for item in imports_of(module, path)]


def _within(target: str, prefixes: tuple[str, ...]) -> bool:
    return any(target == prefix or target.startswith(f"{prefix}.") for prefix in prefixes)


def test_the_walk_sees_the_package():
    """A guard for the checks below: they would pass vacuously on an empty walk."""
    assert {"django_engagement.services.feed", "django_engagement.api.serializers"} <= set(MODULES)
    api_feed = {item.target for item in ALL_IMPORTS if item.module == "django_engagement.api.feed"}
    assert {"django_engagement.services.feed", "rest_framework"} <= api_feed


@pytest.mark.parametrize("layer", ["django_engagement.models", "django_engagement.services"])
def test_core_and_services_import_no_http_library_nor_faces(layer):
    leaks = [
        f"{item.module}:{item.line} imports {item.target}"
        for item in ALL_IMPORTS
        if _within(item.module, (layer,))
        and (_within(item.target, HTTP_LIBRARIES) or _within(item.target, FACES_AND_WIRING))
    ]
    assert leaks == []


def test_models_import_no_services():
    leaks = [
        f"{item.module}:{item.line} imports {item.target}"
        for item in ALL_IMPORTS
        if _within(item.module, ("django_engagement.models",))
        and _within(item.target, ("django_engagement.services",))
    ]
    assert leaks == []


def _import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for item in ALL_IMPORTS:
        if item.function is None and item.target in MODULES and item.target != item.module:
            graph[item.module].add(item.target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    assert find_cycle(_import_graph()) is None


def test_function_local_imports_of_the_package_are_only_the_listed_ones():
    found: dict[tuple[str, str], set[str]] = {}
    for item in ALL_IMPORTS:
        if item.function is not None and _within(item.target, (PACKAGE,)):
            found.setdefault((item.module, item.function), set()).add(item.target)
    assert found == DEFERRED_IMPORTS


def test_the_async_hand_off_reaches_the_task_through_the_signal(monkeypatch):
    queued = []
    monkeypatch.setattr(tasks.fan_out_feed_task, "delay", queued.append)
    assert enqueue_fan_out([3, 5]) is True
    assert queued == [[3, 5]]


def test_without_a_receiver_the_fan_out_stays_pending_and_says_so(caplog):
    uid = "django_engagement.queue_fan_out"
    assert fan_out_requested.disconnect(dispatch_uid=uid)
    try:
        with caplog.at_level(logging.WARNING, logger="django_engagement.services.feed"):
            assert enqueue_fan_out([7]) is False
    finally:
        fan_out_requested.connect(tasks.queue_fan_out, dispatch_uid=uid)
    assert "Nothing listens to fan_out_requested" in caplog.text
    assert "(first id 7) stays pending" in caplog.text
