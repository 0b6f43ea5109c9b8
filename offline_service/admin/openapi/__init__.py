"""The admin API's part of ``/openapi.json``: ``/v1/admin/...``, authenticated with an admin token
(the ``adminToken`` security scheme), each operation naming the scope it needs; one module per
concept, as the routes (``admin/api``).

The bounds are the handlers' own (imported from them). An admin route answers 401 for a person's
token and 403 for an admin token without the scope.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from offline_service.admin.openapi import (
    _kit,
    activations,
    audit,
    customers,
    keys,
    licenses,
    products,
    releases,
    webhooks,
)
from offline_service.web.openapi_kit import Section

__all__ = ["SECTION"]

_PARTS = (_kit, products, licenses, activations, audit, webhooks, customers, releases, keys)


def _merged(name: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in _PARTS:
        found: Mapping[str, Any] = getattr(part, name, {})
        twice = merged.keys() & found.keys()
        if twice:
            raise AssertionError(f"admin OpenAPI {name} given twice: {sorted(twice)}")
        merged.update(found)
    return merged


SECTION = Section(tags=("admin",), paths=_merged("PATHS"), schemas=_merged("SCHEMAS"))
