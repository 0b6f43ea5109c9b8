"""The admin API under ``/v1/admin/`` (admin tokens, JSON), one module per concept.

Thin: each route checks the admin token and its scope (``_kit.admin_token``), reads its input, and
calls the same services and queries as the CLI, scoped to the token's account; another account's
id answers as an unknown one. Audited as ``admin_token:<id>``. Every create takes an
``Idempotency-Key`` (``_kit.create_once``).
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from offline_service.admin.api import (
    activations,
    audit,
    customers,
    keys,
    licenses,
    products,
    releases,
    webhooks,
)

__all__ = ["routes"]

routes: tuple[BaseRoute, ...] = (  # constant: read once when the app is built
    *products.routes,
    *licenses.routes,
    *activations.routes,
    *audit.routes,
    *webhooks.routes,
    *customers.routes,
    *releases.routes,
    *keys.routes,
)
