"""The vendor's admin API: account-level tokens with scopes (``tokens``), the ``/v1/admin/`` routes
(``api``, described in ``openapi``), idempotent creates (``idempotency``) and the
``offline-service token`` verbs (``cli``). The routes call the same domain services as the CLI."""
