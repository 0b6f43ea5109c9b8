"""The records the engine and the store pass around."""

from __future__ import annotations

import dataclasses

from offline_service.licensing.models import License, LicenseStatus


def test_with_usage_changes_the_counts_and_expiry_and_keeps_every_other_field() -> None:
    lic = License(
        id="lic_1",
        account_id="acc_1",
        product_id="prod_1",
        key="AAAAA-BBBBB-CCCCC-DDDDD-EEEEE",
        allowed_activations=5,
        allowed_deactivations=7,
        status=LicenseStatus.SUSPENDED,
        created_at=11,
        expires_at=13,
        validity_days=17,
        owner="Owner",
        metadata={"k": "v"},
        used_activations=2,
        used_deactivations=3,
        owner_user_id="usr_1",
        owner_organization_id="org_1",
    )
    changed = lic.with_usage(used_activations=4, used_deactivations=5, expires_at=None)
    assert changed == dataclasses.replace(lic, used_activations=4, used_deactivations=5, expires_at=None)
    # Every field is either one of the three or carried over: a new field must be added to both.
    assert {
        f.name for f in dataclasses.fields(License) if getattr(changed, f.name) != getattr(lic, f.name)
    } == {
        "used_activations",
        "used_deactivations",
        "expires_at",
    }
