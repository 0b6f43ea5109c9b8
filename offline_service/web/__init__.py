"""The customer portal and the JSON API: a thin Starlette adapter over the engine and the store."""

from offline_service.web.app import create_app

__all__ = ["create_app"]
