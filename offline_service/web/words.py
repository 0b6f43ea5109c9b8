"""What each error code means for a person, in plain words: the portal shows them beside the
engine's message and the code, and the accounts and releases pages use the same words."""

from __future__ import annotations

from collections.abc import Mapping

from offline_service.errors import Code

__all__ = ["PLAIN_WORDS"]

# What a code means, for a person; the engine's own message and the code are shown beside it.
PLAIN_WORDS: Mapping[Code, str] = {
    Code.MALFORMED_REQUEST: "This is not a request file this page can use.",
    Code.UNSUPPORTED_VERSION: "The request file was made by a version of the software this service does not support.",
    Code.BAD_SIGNATURE: "The request file is damaged or was changed after it was made.",
    Code.REQUEST_EXPIRED: "The request file is too old. Make a new one on the machine.",
    Code.REQUEST_FROM_FUTURE: "The request file is dated in the future. Check the clock of the machine.",
    Code.REQUEST_TOO_LARGE: "The file is too large to be a request file.",
    Code.REQUEST_REPLAYED: "This request file was already used for something else. Make a new one.",
    Code.PRODUCT_NOT_FOUND: "The request is for a product this service does not know.",
    Code.LICENSE_NOT_FOUND: "The request is for a license that does not exist or that you may not use.",
    Code.PRODUCT_MISMATCH: "The license key belongs to another product.",
    Code.LICENSE_SUSPENDED: "This license is suspended.",
    Code.LICENSE_REVOKED: "This license has been revoked.",
    Code.LICENSE_EXPIRED: "This license has expired.",
    Code.ACTIVATION_LIMIT: "This license has no activations left. Deactivate a machine first.",
    Code.DEACTIVATION_LIMIT: "This license has no deactivations left.",
    Code.ACTIVATION_NOT_FOUND: "No activation you may manage matches this request.",
    Code.MACHINE_KEY_MISMATCH: "The request was made by another machine than the one that was activated.",
    Code.TRIAL_NOT_ALLOWED: "Trials cannot be started here.",
    Code.INVALID_CREDENTIALS: "The account, email or password is not right.",
    Code.RATE_LIMITED: "Too many failed logins.",
    Code.INVALID_ARGUMENT: "Something in the form is missing or not valid.",
    Code.BAD_ARCHIVE: "The zip file cannot be processed.",
    Code.CSRF_FAILED: "The form is out of date. Reload the page and try again.",
    # people administration and profiles
    Code.FORBIDDEN: "Only an organization admin may do this.",
    Code.RELEASE_NOT_ALLOWED: "The vendor does not let customers release machines of this product. Ask the vendor.",
    Code.CONFLICT: "This clashes with what is already there.",
    Code.USER_LIMIT: "Your organization has all the users it may have. Disable one, or ask your vendor for more.",
    Code.SELF_LOCKOUT: "You cannot disable yourself or take the admin role from yourself. Ask another admin.",
    Code.INVALID_PASSWORD_LINK: "This link does not work any more. Ask your administrator to send a new one.",
    Code.WRONG_PASSWORD: "Your current password is not right.",
    Code.NOT_FOUND: "There is nothing here.",
    # downloads
    Code.LINK_EXPIRED: "This download link has expired. Open Downloads again for a fresh one.",
    Code.LINK_INVALID: "This download link is not valid for you. Open Downloads, logged in as yourself.",
    Code.RANGE_NOT_SATISFIABLE: "The part of the file asked for is beyond its end.",
}
