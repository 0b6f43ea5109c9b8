"""``offline-client``: make request files, apply response files, and check this machine's activation."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from offline_service._files import read_limited, write_atomic
from offline_service.client._text import utc as _utc
from offline_service.client.machine import fingerprint
from offline_service.client.sdk import Client
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat import jws
from offline_service.fileformat.messages import Kind, Response
from offline_service.next_steps import next_step

__all__ = ["main"]


def _read_jwks(path: str) -> dict[str, Any]:
    data = read_limited(path, jws.MAX_FILE_BYTES, what="JWKS file")
    try:
        return jws.strict_json(data)
    except ValueError as exc:
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, f"JWKS file {path} is not valid JSON: {exc}"
        ) from None


def _write_token(path: str, token: str) -> None:
    write_atomic(path, (token + "\n").encode("ascii"), mode=0o644)


def _license_key(value: str) -> str:
    if value != "-":
        return value
    # "-" reads the key from stdin, keeping it out of the process list and shell history.
    return sys.stdin.readline(256).strip()


def _print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2, ensure_ascii=False))


def _describe(resp: Response) -> str:
    if resp.kind is Kind.TRIAL:
        return f"trial, activation {resp.activation_id}, ends {_utc(resp.trial_ends_at or 0)}"
    expires = _utc(resp.expires_at) if resp.expires_at is not None else "never"
    return f"license {resp.license_id}, activation {resp.activation_id}, expires {expires}"


def _client(args: argparse.Namespace, *, jwks: dict[str, Any] | None = None) -> Client:
    return Client(args.state, jwks=jwks, witness_dir=args.witness_dir)


# -- commands ------------------------------------------------------------------------------------


def _cmd_request(args: argparse.Namespace) -> int:
    token = _client(args).activation_request(
        product_id=args.product,
        license_key=_license_key(args.key),
        fingerprint=args.fingerprint,
        app_version=args.app_version,
    )
    _write_token(args.out, token)
    print(f"wrote activation request to {args.out}")
    return 0


def _cmd_trial_request(args: argparse.Namespace) -> int:
    token = _client(args).trial_request(
        product_id=args.product, fingerprint=args.fingerprint, app_version=args.app_version
    )
    _write_token(args.out, token)
    print(f"wrote trial request to {args.out}")
    return 0


def _cmd_activate(args: argparse.Namespace) -> int:
    client = _client(args)
    data = read_limited(args.response, jws.MAX_FILE_BYTES, what="response file")
    resp = client.activate(data, jwks=_read_jwks(args.jwks))
    if args.json:
        _print_json(client.status())
    else:
        print(f"activated: {_describe(resp)}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    jwks = _read_jwks(args.jwks) if args.jwks else None
    doc = _client(args, jwks=jwks).status()
    if args.json:
        _print_json(doc)
    elif doc["valid"]:
        expires = _utc(doc["expiresAt"]) if doc["expiresAt"] is not None else "never"
        if doc["kind"] == Kind.TRIAL.value:
            print(f"valid: trial, activation {doc['activationId']}, ends {_utc(doc['trialEndsAt'])}")
        else:
            print(
                f"valid: license {doc['licenseId']} ({doc['status']}), activation {doc['activationId']},"
                f" expires {expires}"
            )
    else:
        print(f"not valid: {doc['code']}: {doc['message']}")
    return 0 if doc["valid"] else 1


def _cmd_deactivate(args: argparse.Namespace) -> int:
    jwks = _read_jwks(args.jwks) if args.jwks else None
    _client(args, jwks=jwks).deactivate(args.out)
    print(f"wrote deactivation request to {args.out}; the activation was removed from this machine")
    return 0


def _cmd_receipt(args: argparse.Namespace) -> int:
    jwks = _read_jwks(args.jwks) if args.jwks else None
    data = read_limited(args.response, jws.MAX_FILE_BYTES, what="response file")
    resp = _client(args).verify_receipt(data, jwks=jwks)
    if args.json:
        _print_json(
            {
                "productId": resp.product_id,
                "licenseId": resp.license_id,
                "activationId": resp.activation_id,
                "deactivatedAt": resp.deactivated_at,
                "usedActivations": resp.used_activations,
                "usedDeactivations": resp.used_deactivations,
            }
        )
    else:
        print(
            f"deactivation confirmed: license {resp.license_id}, activation {resp.activation_id},"
            f" deactivated {_utc(resp.deactivated_at or 0)}"
        )
    return 0


def _cmd_fingerprint(args: argparse.Namespace) -> int:
    print(fingerprint(args.product))
    return 0


# -- parser --------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="offline-client",
        description="Activate this machine offline: write a request file, carry it to the vendor, apply the response.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--state", required=True, metavar="DIR", help="this installation's state directory")
        p.add_argument(
            "--witness-dir",
            metavar="DIR",
            help="where the second copy of the clock mark and the activation counts is kept"
            " (default: offline-service-client in the user's configuration folder)",
        )
        return p

    p = command("request", "write an activation request for a license key")
    p.add_argument("--product", required=True, metavar="ID", help="product id")
    p.add_argument("--key", required=True, metavar="KEY", help="license key, or - to read it from stdin")
    p.add_argument("--out", required=True, metavar="FILE", help="request file to write")
    p.add_argument("--fingerprint", metavar="F", help="use F instead of the fingerprint of this machine")
    p.add_argument("--app-version", default="", metavar="V", help="application version to report")
    p.set_defaults(func=_cmd_request)

    p = command("trial-request", "write a trial request")
    p.add_argument("--product", required=True, metavar="ID", help="product id")
    p.add_argument("--out", required=True, metavar="FILE", help="request file to write")
    p.add_argument("--fingerprint", metavar="F", help="use F instead of the fingerprint of this machine")
    p.add_argument("--app-version", default="", metavar="V", help="application version to report")
    p.set_defaults(func=_cmd_trial_request)

    p = command("activate", "verify an activation or trial response and store it")
    p.add_argument("response", metavar="RESPONSE", help="response file from the vendor")
    p.add_argument("--jwks", required=True, metavar="FILE", help="the vendor's public keys (JWKS)")
    p.add_argument("--json", action="store_true", help="print the resulting status as JSON")
    p.set_defaults(func=_cmd_activate)

    p = command("status", "re-verify the stored activation; exit 1 unless it is valid")
    p.add_argument("--jwks", metavar="FILE", help="verify with these keys instead of the pinned ones")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_status)

    p = command("deactivate", "write a deactivation request and remove the activation from this machine")
    p.add_argument("--out", required=True, metavar="FILE", help="request file to write")
    p.add_argument("--jwks", metavar="FILE", help="verify the stored activation with these keys")
    p.set_defaults(func=_cmd_deactivate)

    p = command("receipt", "verify a deactivation receipt from the vendor")
    p.add_argument("response", metavar="RESPONSE", help="receipt file from the vendor")
    p.add_argument("--jwks", metavar="FILE", help="the vendor's public keys (default: the pinned ones)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_receipt)

    p = sub.add_parser("fingerprint", help="print this machine's fingerprint for a product")
    p.add_argument("--product", required=True, metavar="ID", help="product id")
    p.set_defaults(func=_cmd_fingerprint)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (argparse exits 2 on usage errors)."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except OfflineServiceError as exc:
        print(f"error: {exc.code.value}: {exc.message}\nnext: {next_step(exc.code)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    raise SystemExit(main())
