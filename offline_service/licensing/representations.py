"""The JSON form of licenses and activations, shared by the CLI (``--json``) and the API."""

from __future__ import annotations

from typing import Any

from offline_service.licensing.models import Activation, License, Product

__all__ = ["activation_json", "license_json", "product_json"]


def license_json(license: License) -> dict[str, Any]:
    return {
        "id": license.id,
        "key": license.key,
        "name": license.name,
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


def product_json(p: Product) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "trialsEnabled": p.trials_enabled,
        "trialDays": p.trial_days,
        "maxResponseValidity": p.max_response_validity,
        "customerRelease": p.customer_release,
        "createdAt": p.created_at,
    }
