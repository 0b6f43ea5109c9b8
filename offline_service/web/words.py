"""What each error code means for a person, in plain words: one sentence (or two short ones) that
says what happened and what to do next. The portal shows it with the code beneath; the engine's own
message is shown as a detail only for the codes in DETAILED, where it names what exactly is wrong."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from offline_service.errors import Code

__all__ = ["DETAILED", "LINKS", "PLAIN_WORDS", "VARIANTS", "Link", "wait_words"]

# A link within a sentence: where it goes, and the words of the sentence that link there.
Link = tuple[str, str]

# What a code means, for a person. Every code a portal page can show has its words here
# (tests/web/test_errors.py checks it); the client's codes for response files do not, no page shows them.
PLAIN_WORDS: Mapping[Code, str] = MappingProxyType(
    {
        # request files (Activate offline, Deactivate offline, Batch)
        Code.MALFORMED_REQUEST: "This is not a request file the portal can read. Make a new request on the machine and upload the file it saves, unchanged.",
        Code.UNSUPPORTED_VERSION: "This request was made by a version of the software that this service does not support. Update the software on the machine, or ask your vendor.",
        Code.BAD_SIGNATURE: "This request file was damaged or changed after the machine made it. Make a new request on the machine and upload the file unchanged.",
        Code.REQUEST_EXPIRED: "This request file is too old. Make a new request on the machine and upload it soon after.",
        Code.REQUEST_FROM_FUTURE: "This request file is dated in the future. Correct the clock of the machine, then make a new request.",
        Code.REQUEST_TOO_LARGE: "This file is larger than this page takes. Check that you chose the right file.",
        Code.REQUEST_REPLAYED: "This request file was already used. Make a new request on the machine.",
        Code.PRODUCT_NOT_FOUND: "This request is for a product this portal does not know. Check that the software comes from this vendor, or ask your vendor.",
        Code.LICENSE_NOT_FOUND: "This license does not exist, or you may not use it. Check the license key, or ask your administrator for access.",
        Code.PRODUCT_MISMATCH: "This license key is for another product than the software that made the request. Use a license key for this product.",
        Code.LICENSE_SUSPENDED: "This license is suspended, so it cannot be activated. Ask your vendor to lift the suspension.",
        Code.LICENSE_REVOKED: "This license has been revoked, so it cannot be activated. Contact your vendor.",
        Code.LICENSE_EXPIRED: "This license has expired. Ask your vendor to renew it.",
        Code.ACTIVATION_LIMIT: "This license has no activations left. Deactivate a machine you no longer use, or ask your vendor for more.",
        Code.DEACTIVATION_LIMIT: "This license has no deactivations left. Ask your vendor for more.",
        Code.ACTIVATION_NOT_FOUND: "This machine is not activated with a license you may manage. Check that the request comes from the right machine.",
        Code.MACHINE_KEY_MISMATCH: "This request comes from another installation than the one that was activated. Make the request on that installation, or ask your vendor to release the activation.",
        Code.TRIAL_NOT_ALLOWED: "This product offers no trial. Buy a license, or ask your vendor.",
        Code.KEY_ERROR: "The service cannot sign a response for this product right now. Try again later, and tell your vendor if it keeps happening.",
        Code.INSECURE_KEY_FILE: "The service cannot sign a response for this product right now. Try again later, and tell your vendor if it keeps happening.",
        Code.BAD_ARCHIVE: "This zip file cannot be processed. Make a plain zip of the request files only, then upload it again.",
        # logging in and forms
        Code.INVALID_CREDENTIALS: "The account, email or password is not right. Check them and try again.",
        Code.UNAUTHENTICATED: "You are not logged in, or your session has ended. Log in again.",
        Code.RATE_LIMITED: "Too many failed attempts. Wait a few minutes, then try again.",
        Code.TRIAL_DAILY_LIMIT: "Too many trials were started from this network today. Try again tomorrow.",
        Code.INVALID_ARGUMENT: "Something in the form is missing or not valid. Correct it as the details say, then send it again.",
        Code.CSRF_FAILED: "This form was out of date, so nothing was done. Reload the page, then send the form again.",
        # people administration and profiles
        Code.FORBIDDEN: "This page is for organization admins only. Ask an admin of your organization for help.",
        Code.RELEASE_NOT_ALLOWED: "Your vendor does not let customers release machines of this product. Ask your vendor to release the seat.",
        Code.CONFLICT: "This clashes with something that is already there, as the details say. Choose another value.",
        Code.IDEMPOTENCY_KEY_REUSED: "This retry key was already used for another request. Send a new key with a new request.",
        Code.USER_LIMIT: "Your organization has all the users it may have. Disable a user, or ask your vendor for more.",
        Code.SELF_LOCKOUT: "You cannot disable yourself or take the admin role from yourself. Ask another admin.",
        Code.INVALID_PASSWORD_LINK: "This link no longer works: it was already used, a newer one was sent, or it expired. To get a new one, use Forgot password?",
        Code.WRONG_PASSWORD: "Your current password is not right, so nothing was changed. Type it again.",
        Code.NOT_FOUND: "This page does not exist, or you may not see it. Check the address, or start again from the menu.",
        # downloads
        Code.LINK_EXPIRED: "This download link has expired. Open Downloads again for a fresh one.",
        Code.LINK_INVALID: "This download link is not valid for you. Open Downloads, logged in as yourself.",
        Code.RANGE_NOT_SATISFIABLE: "The part of the file asked for is beyond its end. Download the whole file again.",
        # the service itself
        Code.STORAGE_ERROR: "The service cannot reach its database right now, so nothing was done. Try again in a minute.",
        Code.INTERNAL_ERROR: "Something went wrong on our side. Try again, and tell your vendor if it keeps happening.",
    }
)

# The codes whose message names what exactly is wrong (a field, an entry of a zip, a size): the
# portal shows it beneath the sentence. Every other message is for the logs, not for a person.
DETAILED: frozenset[Code] = frozenset(
    {Code.INVALID_ARGUMENT, Code.CONFLICT, Code.BAD_ARCHIVE, Code.REQUEST_TOO_LARGE}
)

# The sentences that link to the page that helps.
LINKS: Mapping[Code, Link] = MappingProxyType(
    {Code.INVALID_PASSWORD_LINK: ("/forgot-password", "Forgot password?")}
)

# Sentences a page chooses instead of the code's own, by name: the name is what travels with a
# refused form to the page that shows it, so a name, its code and its sentence are fixed here.
VARIANTS: Mapping[str, tuple[Code, str, Link | None]] = MappingProxyType(
    {
        "activation-request": (
            Code.MALFORMED_REQUEST,
            "This is an activation request, which this page does not take. Upload it on Activate offline.",
            ("/activate", "Activate offline"),
        ),
        "deactivation-request": (
            Code.MALFORMED_REQUEST,
            "This is a deactivation request, which this page does not take. Upload it on Deactivate offline.",
            ("/deactivate", "Deactivate offline"),
        ),
        "trial-request": (
            Code.MALFORMED_REQUEST,
            "This is a trial request, and trials are not started in the portal. The software starts its trial itself.",
            None,
        ),
        "already-ended": (
            Code.NOT_FOUND,
            "This session or token has already ended, or it is not yours. The list below is up to date.",
            None,
        ),
        "wrong-method": (
            Code.INVALID_ARGUMENT,
            "This address cannot be used that way. Go back, or open the page from the menu.",
            None,
        ),
        "response-file": (
            Code.MALFORMED_REQUEST,
            "This is a response file, not a request. Apply it on the machine with the app; it is not uploaded here.",
            None,
        ),
    }
)


def wait_words(seconds: int) -> str:
    """RATE_LIMITED with the time to wait, rounded up to whole minutes beyond two minutes."""
    if seconds < 120:
        time = f"{seconds} second{'s' if seconds != 1 else ''}"
    else:
        time = f"{-(-seconds // 60)} minutes"
    return f"Too many failed attempts. Wait {time}, then try again."
