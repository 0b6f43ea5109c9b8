"""What to do next about each error code, in one line, for the people who read the CLI and the JSON
API: the vendor's operators and the integrators of the client SDK. One source: the CLI prints it
after the message, the API's error body carries it as ``nextStep``, and docs/ERRORS.md lists the
same lines (tests/test_docs.py checks it). The portal speaks to customers in its own words
(``web/words.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from offline_service.errors import Code

__all__ = ["NEXT_STEPS", "markdown_table", "next_step"]

NEXT_STEPS: Mapping[Code, str] = MappingProxyType(
    {
        # request files (engine)
        Code.MALFORMED_REQUEST: "Make a new request on the machine and send the file it saves, unchanged; a custom writer must follow docs/FORMAT.md.",
        Code.UNSUPPORTED_VERSION: "Use an app version that writes request format 1, or update the service.",
        Code.BAD_SIGNATURE: "The file was changed after it was signed: make a new request on the machine and send it unchanged.",
        Code.REQUEST_EXPIRED: "Make a new request on the machine and process it sooner; if it is recent, correct the machine's clock.",
        Code.REQUEST_FROM_FUTURE: "Correct the machine's clock (or the service's), then make a new request.",
        Code.REQUEST_TOO_LARGE: "Send the request file the app wrote, unchanged; check that the right file was picked.",
        Code.REQUEST_REPLAYED: "This request was already used: make a new request on the machine.",
        Code.PRODUCT_NOT_FOUND: "Check the product id (`offline-service product list`); a request file goes to the account that owns its product.",
        Code.LICENSE_NOT_FOUND: "Check the license key as issued; `offline-service license list` shows the account's licenses.",
        Code.PRODUCT_MISMATCH: "Use a license key of the product the app is for.",
        Code.LICENSE_SUSPENDED: "Lift the suspension with `offline-service license reinstate KEY`, then process the request again.",
        Code.LICENSE_REVOKED: "A revoked license cannot be activated: issue a new license with `offline-service license create`.",
        Code.LICENSE_EXPIRED: "Issue a license with a later expiry (`offline-service license create --expires-at`), then make a new request.",
        Code.ACTIVATION_LIMIT: "Deactivate a machine no longer used (a lost one: `offline-service activation release ACTIVATION_ID`), or issue a license with more activations.",
        Code.DEACTIVATION_LIMIT: "No deactivations are left: free the seat with `offline-service activation release ACTIVATION_ID` instead (not counted).",
        Code.ACTIVATION_NOT_FOUND: "Process the request in the account and product that issued the activation; `offline-service license show KEY` lists them.",
        Code.MACHINE_KEY_MISMATCH: "Deactivate from the installation that holds the activation; if it is lost, run `offline-service activation release ACTIVATION_ID`.",
        Code.TRIAL_NOT_ALLOWED: "This product offers no trial (or the machine had one): issue a license; trials are set by `product create --trial-days`.",
        # response files (client SDK)
        Code.MALFORMED_RESPONSE: "Apply the response file unchanged, and of the right kind for the operation; ask for it again if it was damaged.",
        Code.UNKNOWN_SIGNING_KEY: "Pin the vendor's current keys (`offline-service keys jwks`) in the app; if the response is old, make a new request.",
        Code.WRONG_PRODUCT: "Apply the response made for this app's own request.",
        Code.WRONG_MACHINE: "Apply the response on the installation that wrote the request; after a reinstall, make a new request.",
        Code.RESPONSE_EXPIRED: "Make a new request and apply its response before its apply-before time.",
        Code.CLOCK_ROLLBACK: "Correct the machine's clock, then try again.",
        Code.TRIAL_EXPIRED: "Trials are never extended: activate with a license.",
        Code.NOT_ACTIVATED: "Activate first: make an activation request and apply its response.",
        Code.UNEXPECTED_RESPONSE: "This response answers no open request here: make a new request on this machine and process that one.",
        # people and access (portal, API)
        Code.INVALID_CREDENTIALS: "Check the account alias, email and password.",
        Code.UNAUTHENTICATED: "Log in again, or send a valid bearer token (`Authorization: Bearer ...`).",
        Code.FORBIDDEN: "Ask an organization admin, or the vendor, to do this.",
        Code.CSRF_FAILED: "Reload the page and send the form again.",
        Code.USER_LIMIT: "Disable a user who no longer needs access (`offline-service user disable`), or ask the vendor for a higher cap.",
        Code.SELF_LOCKOUT: "Ask another admin of the organization, or the vendor, to do it.",
        Code.INVALID_PASSWORD_LINK: "Ask for a new link (Forgot password?, or `offline-service user password-link EMAIL`).",
        Code.WRONG_PASSWORD: "Give the current password again; if it is lost, ask for a set-password link.",
        Code.RATE_LIMITED: "Wait for the time given in `Retry-After`, then try again.",
        Code.TRIAL_DAILY_LIMIT: "Wait for the time given in `Retry-After`, or raise `OFFLINE_SERVICE_TRIAL_DAILY_CAP`.",
        Code.RELEASE_NOT_ALLOWED: "Release the seat with `offline-service activation release ACTIVATION_ID`, or allow releases with `product update PRODUCT_ID --customer-release on`.",
        # operations (CLI, keyring, storage, archives)
        Code.INVALID_ARGUMENT: "Correct the value the message names, then run the command or request again.",
        Code.NOT_FOUND: "Check the name or id; the `list` commands (or the API's list routes) show what exists.",
        Code.CONFLICT: "Do the step it waits for first (rotate, deactivate, make a new request), or choose another value.",
        Code.IDEMPOTENCY_KEY_REUSED: "Send a new Idempotency-Key for a new request; reuse a key only to retry the very same request.",
        Code.BAD_ARCHIVE: "Make a plain zip of the request files only, or process the directory.",
        Code.BAD_BACKUP: "Use another backup, or take a new one with `offline-service backup DEST`; a backup must be restored unchanged.",
        Code.WEBHOOK_URL_REFUSED: "Give an https URL whose host resolves to public addresses only, or allow private targets (docs/WEBHOOKS.md, URL rules).",
        Code.KEY_ERROR: "Fix the keys directory or the passphrase (see keys/README.md), then try again.",
        Code.INSECURE_KEY_FILE: "`chmod 600` the key file and `chmod 700` its directory, then try again.",
        Code.STORAGE_ERROR: "Check disk space, permissions and other processes holding the database, then retry; reprocessing is safe.",
        Code.INTERNAL_ERROR: "Try again; if it keeps happening, send the service's log to the operator.",
        # downloads and customization
        Code.LINK_EXPIRED: "Ask for a fresh link (the Downloads page, or `GET /v1/releases`).",
        Code.LINK_INVALID: "Ask for a fresh link (the Downloads page, or `GET /v1/releases`), logged in as yourself.",
        Code.RANGE_NOT_SATISFIABLE: "Ask for a range within the file's size, or download the whole file.",
        Code.BAD_IMAGE: "Export the logo as PNG, JPEG or WebP, at most 512 KiB and 2048 x 2048 pixels.",
    }
)


def next_step(code: Code | str) -> str:
    """The one-line next step for ``code`` (every code but ``OK`` has one)."""
    return NEXT_STEPS[Code(code)]


def markdown_table() -> str:
    """The "Next steps" table of docs/ERRORS.md, one row per code in the order of ``Code``."""
    rows = ["| Code | Next step |", "|---|---|"]
    rows += [f"| `{code.value}` | {NEXT_STEPS[code]} |" for code in Code if code is not Code.OK]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # python -m offline_service.next_steps > the table for docs/ERRORS.md
    print(markdown_table(), end="")
