"""The admin API's tables of routes are complete: every ``/v1/admin/`` operation of the OpenAPI
document is in the ROUTES table of some test module of tests/admin (``test_api.py`` and every
``test_*_api.py``, found by name, so that a concept's new module is read as soon as it exists),
with the scope its summary names; and every route the app serves under ``/v1/admin`` is in the
document. A route added without its tests, or without its OpenAPI part, fails here by name.

A table maps a name to (Scope, Call); a Call takes the site, and for some tables ids of objects
it made (webhook endpoint and delivery ids), and gives (method, path, body) or (method, path). It is called here with
a real site and a placeholder for each further id; its concrete path is matched to the document's
templates, the most literal first."""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import BaseRoute, Mount, Route

from offline_service.admin.models import Scope
from offline_service.web import openapi
from tests.web.site import Site

HERE = Path(__file__).resolve().parent
PREFIX = "/v1/admin"
METHODS = ("get", "put", "post", "patch", "delete")

Operation = tuple[str, str]  # (METHOD, OpenAPI path template)


def _modules() -> list[str]:
    names = ["test_api", *sorted(p.stem for p in HERE.glob("test_*_api.py"))]
    return list(dict.fromkeys(names))


def _tables() -> dict[str, dict[str, tuple[Scope, Any]]]:
    """Each module's ROUTES table, by module name; a module without one fails by name."""
    found = {}
    for name in _modules():
        module = importlib.import_module(f"tests.admin.{name}")
        table = getattr(module, "ROUTES", None)
        assert isinstance(table, dict) and table, f"tests/admin/{name}.py has no ROUTES table of its routes"
        found[name] = table
    return found


def _documented() -> dict[Operation, dict[str, Any]]:
    paths = openapi.document()["paths"]
    return {
        (method.upper(), path): item[method]
        for path, item in paths.items()
        if path.startswith(PREFIX + "/")
        for method in METHODS
        if method in item
    }


def _template(path: str) -> re.Pattern[str]:
    """A concrete path of the template ``path``: each ``{name}`` is one segment."""
    parts = re.split(r"\{[^}/]+\}", path)
    return re.compile("[^/]+".join(re.escape(p) for p in parts) + r"\Z")


def _operation(method: str, concrete: str, documented: dict[Operation, Any]) -> Operation | None:
    """The documented operation a concrete request is, the most literal template first (a path
    like ``/audit/export`` before a ``/audit/{id}`` that would match it too)."""
    path = concrete.split("?", 1)[0]
    matching = [(m, t) for m, t in documented if m == method and _template(t).match(path)]
    matching.sort(key=lambda op: (op[1].count("{"), -len(op[1])))
    return matching[0] if matching else None


def _tested(site: Site) -> Iterator[tuple[str, str, Scope, str, str]]:
    """(module, route name, scope, METHOD, concrete path) of every table's every route."""
    for module, table in _tables().items():
        for name, (scope, call) in table.items():
            extra = len(inspect.signature(call).parameters) - 1
            # (method, path, body), or (method, path) in tables of routes without a body
            method, path = call(site, *(f"placeholder{i}" for i in range(extra)))[:2]
            yield module, name, scope, method.upper(), path


@pytest.mark.sqlite_only  # a check of the tables and the document, not of a backend
def test_every_documented_admin_operation_is_in_a_routes_table_with_its_scope(site: Site) -> None:
    documented = _documented()
    assert documented, "the OpenAPI document has no /v1/admin/ operation"
    covered: dict[Operation, list[str]] = {}
    unknown, wrong_scope = [], []
    for module, name, scope, method, path in _tested(site):
        operation = _operation(method, path, documented)
        if operation is None:
            unknown.append(f"{module}.ROUTES[{name!r}]: {method} {path}")
            continue
        covered.setdefault(operation, []).append(f"{module}.ROUTES[{name!r}]")
        summary = documented[operation].get("summary", "")
        if f"(scope {scope.value})" not in summary:
            wrong_scope.append(
                f"{module}.ROUTES[{name!r}] uses {scope.value}; {' '.join(operation)} says {summary!r}"
            )
    missing = sorted(f"{m} {p}" for m, p in documented if (m, p) not in covered)
    problems = [
        (what, found)
        for what, found in (
            ("documented admin operations in no ROUTES table of tests/admin", missing),
            ("ROUTES entries that are no documented operation", unknown),
            ("ROUTES scopes the OpenAPI summaries do not name", wrong_scope),
        )
        if found
    ]
    assert not problems, "\n".join(f"{what}:\n  " + "\n  ".join(found) for what, found in problems)


def _served(routes: list[BaseRoute], prefix: str = "") -> Iterator[Operation]:
    for route in routes:
        if isinstance(route, Mount):
            yield from _served(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            path = prefix + re.sub(r"\{(\w+):[^}]+\}", r"{\1}", route.path)  # {id:str} is {id}
            for method in sorted(route.methods or {"GET"}):
                if method != "HEAD":  # Starlette's companion of every GET
                    yield method, path


@pytest.mark.sqlite_only
def test_every_admin_route_the_app_serves_is_documented(site: Site) -> None:
    served = {op for op in _served(list(site.client.app.routes)) if op[1].startswith(PREFIX)}  # type: ignore[attr-defined]
    assert served, "the app serves no /v1/admin route"
    documented = set(_documented())
    missing = sorted(f"{m} {p}" for m, p in served - documented)
    assert not missing, "admin routes served but not in the OpenAPI document:\n" + "\n".join(missing)
    ghosts = sorted(f"{m} {p}" for m, p in documented - served)
    assert not ghosts, "admin operations documented but not served:\n" + "\n".join(ghosts)


def test_the_template_match_prefers_the_most_literal_path() -> None:
    documented: dict[Operation, Any] = {
        ("GET", "/v1/admin/audit/{id}"): {},
        ("GET", "/v1/admin/audit/export"): {},
        ("POST", "/v1/admin/audit/export"): {},
    }
    assert _operation("GET", "/v1/admin/audit/export?format=csv", documented) == (
        "GET",
        "/v1/admin/audit/export",
    )
    assert _operation("GET", "/v1/admin/audit/e1", documented) == ("GET", "/v1/admin/audit/{id}")
    assert _operation("GET", "/v1/admin/audit/e1/more", documented) is None
    assert _operation("DELETE", "/v1/admin/audit/export", documented) is None
