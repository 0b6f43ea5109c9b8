"""Branding records: an account's look in the portal. No behaviour, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Branding"]


@dataclass(frozen=True, slots=True)
class Branding:
    """How an account's portal looks: name, accent colour (#rrggbb), logo, and custom domain."""

    account_id: str
    updated_at: int
    portal_name: str | None = None
    accent_color: str | None = None
    logo_file: str | None = None  # file name under the branding directory
    logo_type: str | None = None  # image/png, image/jpeg or image/webp
    custom_domain: str | None = None
