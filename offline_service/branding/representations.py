"""The JSON form of an account's branding, shared by the CLI (``--json``) and the API."""

from __future__ import annotations

from typing import Any

from offline_service.branding.models import Branding

__all__ = ["branding_json"]


def branding_json(alias: str, b: Branding | None) -> dict[str, Any]:
    return {
        "account": alias,
        "portalName": b.portal_name if b else None,
        "accentColor": b.accent_color if b else None,
        "logo": b.logo_file if b else None,
        "logoType": b.logo_type if b else None,
        "customDomain": b.custom_domain if b else None,
    }
