"""The JSON form of records, one definition shared by the CLI (``--json``) and the API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from offline_service.models import Activation, Branding, License, Release, ReleaseFile

__all__ = ["activation_json", "branding_json", "license_json", "release_file_json", "release_json"]


def license_json(license: License) -> dict[str, Any]:
    return {
        "id": license.id,
        "key": license.key,
        "productId": license.product_id,
        "status": license.status.value,
        "expiresAt": license.expires_at,
        "validityDays": license.validity_days,
        "allowedActivations": license.allowed_activations,
        "usedActivations": license.used_activations,
        "allowedDeactivations": license.allowed_deactivations,
        "usedDeactivations": license.used_deactivations,
        "metadata": dict(license.metadata),
        "createdAt": license.created_at,
        "maxVersion": license.max_version,
    }


def activation_json(a: Activation) -> dict[str, Any]:
    return {
        "id": a.id,
        "licenseId": a.license_id,
        "fingerprint": a.fingerprint,
        "machineKeyThumbprint": a.machine_key_thumbprint,
        "hostname": a.hostname,
        "os": a.os,
        "appVersion": a.app_version,
        "createdAt": a.created_at,
        "deactivatedAt": a.deactivated_at,
    }


def release_file_json(f: ReleaseFile) -> dict[str, Any]:
    return {"id": f.id, "name": f.name, "size": f.size, "sha256": f.sha256}


def release_json(release: Release, files: Sequence[ReleaseFile]) -> dict[str, Any]:
    return {
        "id": release.id,
        "productId": release.product_id,
        "version": release.version,
        "channel": release.channel,
        "notes": release.notes,
        "publishedAt": release.published_at,
        "files": [release_file_json(f) for f in files],
    }


def branding_json(alias: str, b: Branding | None) -> dict[str, Any]:
    return {
        "account": alias,
        "portalName": b.portal_name if b else None,
        "accentColor": b.accent_color if b else None,
        "logo": b.logo_file if b else None,
        "logoType": b.logo_type if b else None,
        "customDomain": b.custom_domain if b else None,
    }
