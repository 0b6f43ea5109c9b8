"""The ``offline-service`` command: every verb in-process through ``main()``, a handful as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from offline_service.cli import main
from offline_service.errors import Code
from offline_service.fileformat.keyring import Keyring
from offline_service.fileformat.messages import Kind, Response, parse_response
from offline_service.next_steps import next_step
from tests.factories import Machine, database_for, wall_now

TIMEOUT = 60


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Cli:
    """``offline-service`` run in-process on one data and keys directory, and the test's database
    (``database_url``; None: SQLite in the data directory)."""

    def __init__(
        self, root: Path, capsys: pytest.CaptureFixture[str], *, database_url: str | None = None
    ) -> None:
        self.root = root
        self.data = root / "data"
        self.keys = root / "keys"
        self.database_url = database_url
        self._capsys = capsys

    @property
    def where(self) -> list[str | Path]:
        """The options naming the data, keys and database."""
        database = ["--database-url", self.database_url] if self.database_url else []
        return ["--data", self.data, "--keys", self.keys, *database]

    def raw(self, *argv: str | Path) -> Run:
        self._capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse exits on usage errors and --help
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = self._capsys.readouterr()
        assert "Traceback" not in err
        return Run(code, out, err)

    def __call__(self, *args: str | Path, account: str | None = None) -> Run:
        return self.raw(*args, *self.where, *(["--account", account] if account else []))

    def ok(self, *args: str | Path, account: str | None = None) -> Any:
        """Run with ``--json``; expect exit status 0 and return the parsed output."""
        run = self(*args, "--json", account=account)
        assert run.code == 0, run
        assert run.err == ""
        return run.json()

    def fails(self, code: Code, *args: str | Path, account: str | None = None) -> Run:
        """Expect exit status 1 with ``error: CODE: message`` and ``next: STEP`` on stderr and
        nothing on stdout."""
        run = self(*args, account=account)
        assert run.code == 1, run
        assert run.out == ""
        assert run.err.startswith(f"error: {code.value}: "), run.err
        assert run.err.count("\n") == 2 and run.err.endswith(f"\nnext: {next_step(code)}\n"), run.err
        return run


@pytest.fixture(autouse=True)
def _no_service_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OFFLINE_SERVICE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], backend: str) -> Cli:
    return Cli(tmp_path, capsys, database_url=database_for(tmp_path, backend))


@pytest.fixture
def product(cli: Cli) -> str:
    cli.ok("init")
    product_id: str = cli.ok("product", "create", "--name", "App")["id"]
    return product_id


def new_license(cli: Cli, product: str, *extra: str, activations: int = 2, deactivations: int = 1) -> Any:
    return cli.ok(
        "license", "create", "--product", product,
        "--allowed-activations", str(activations), "--allowed-deactivations", str(deactivations), *extra,
    )  # fmt: skip


def write_request(path: Path, machine: Machine, kind: Kind, product: str, **kw: Any) -> Path:
    path.write_bytes(machine.request(kind, product, issued_at=wall_now(), **kw))
    return path


def activate(cli: Cli, product: str, key: str, name: str = "m1") -> tuple[Machine, dict[str, Any]]:
    machine = Machine(fingerprint=f"fp-{name}")
    req = write_request(cli.root / f"{name}.req", machine, Kind.ACTIVATION, product, license_key=key)
    [result] = cli.ok("process", req, "--out", cli.root / "out")
    assert result["ok"], result
    return machine, result


def verify(cli: Cli, response_file: str) -> Response:
    return parse_response(Path(response_file).read_bytes(), Keyring(cli.keys).public_keys())


def used(cli: Cli, key: str) -> tuple[int, int]:
    shown = cli.ok("license", "show", key)
    return shown["usedActivations"], shown["usedDeactivations"]


# -- init, products, licenses -----------------------------------------------------------------


def test_init_creates_the_account_and_a_second_run_says_it_exists(cli: Cli) -> None:
    first = cli("init")
    assert first.code == 0
    assert first.out.startswith("account created default (acc_")
    assert cli.data.is_dir() and cli.keys.is_dir()  # on PostgreSQL too: releases and mail go there
    assert (cli.data / "offline-service.sqlite3").is_file() == (cli.database_url is None)

    second = cli("init")
    assert second.code == 0
    assert "already exists: default" in second.out

    data = cli.ok("init")
    assert data["account"]["alias"] == "default"
    assert data["account"]["created"] is False
    assert data["schemaVersion"] >= 1


def test_product_create_and_list(cli: Cli) -> None:
    cli.ok("init")
    created = cli.ok(
        "product", "create", "--name", "App", "--trial-days", "7", "--max-response-validity", "2d"
    )
    assert created["id"].startswith("prod_")
    assert created["trialDays"] == 7
    assert created["kid"]
    assert created["customerRelease"] is False  # off unless the vendor says so
    listed = cli.ok("product", "list")
    assert listed == [
        {
            "id": created["id"],
            "name": "App",
            "trialDays": 7,
            "maxResponseValidity": 2 * 86400,
            "customerRelease": False,
        }
    ]
    assert created["id"] in cli("product", "list").out


def test_product_customer_release_is_set_at_creation_and_by_update(cli: Cli) -> None:
    cli.ok("init")
    created = cli.ok("product", "create", "--name", "App", "--customer-release", "on")
    assert created["customerRelease"] is True
    pid = created["id"]
    assert cli.ok("product", "update", pid, "--customer-release", "off") == {
        "id": pid,
        "customerRelease": False,
    }
    assert [p["customerRelease"] for p in cli.ok("product", "list")] == [False]
    assert f"{pid}: customer release off" in cli("product", "update", pid, "--customer-release", "off").out
    cli.ok("product", "update", pid, "--customer-release", "on")
    assert "customer-release=on" in cli("product", "list").out
    entries = [e for e in cli.ok("audit") if e["action"] == "product.update"]
    assert [e["detail"]["customerRelease"] for e in entries] == ["on", "off", "off"]  # newest first
    # Only "on" or "off", and the option is required: usage errors, nothing changed.
    for bad in (["--customer-release", "yes"], []):
        assert cli("product", "update", pid, *bad).code == 2
    cli.fails(Code.PRODUCT_NOT_FOUND, "product", "update", "prod_" + "0" * 32, "--customer-release", "on")
    assert [p["customerRelease"] for p in cli.ok("product", "list")] == [True]


def test_product_update_changes_the_trial_and_the_response_validity_cap(cli: Cli) -> None:
    cli.ok("init")
    pid = cli.ok("product", "create", "--name", "App", "--trial-days", "7")["id"]
    assert cli.ok("product", "update", pid, "--trial-days", "0", "--max-response-validity", "2d") == {
        "id": pid,
        "trialDays": 0,
        "maxResponseValidity": 2 * 86400,
    }
    (listed,) = cli.ok("product", "list")
    assert (listed["trialDays"], listed["maxResponseValidity"], listed["customerRelease"]) == (
        0,
        172800,
        False,
    )
    assert "trials 30 days" in cli("product", "update", pid, "--trial-days", "30").out
    (entry, *_) = [e for e in cli.ok("audit") if e["action"] == "product.update"]
    assert entry["detail"] == {"trialDays": "30"}
    cli.fails(Code.INVALID_ARGUMENT, "product", "update", pid, "--trial-days", "-1")
    cli.fails(Code.INVALID_ARGUMENT, "product", "update", pid, "--max-response-validity", "4000d")
    assert cli.ok("product", "list")[0]["trialDays"] == 30


def test_product_create_refuses_a_bad_name(cli: Cli) -> None:
    cli.ok("init")
    cli.fails(Code.INVALID_ARGUMENT, "product", "create", "--name", " ")


def test_license_create_gives_id_and_key(cli: Cli, product: str) -> None:
    created = new_license(cli, product)
    assert set(created) >= {"id", "key"}
    assert created["id"].startswith("lic_")
    assert created["productId"] == product
    assert created["expiresAt"] is None
    text = cli(
        "license",
        "create",
        "--product",
        product,
        "--allowed-activations",
        "-1",
        "--allowed-deactivations",
        "0",
    )
    assert text.code == 0
    assert text.out.startswith("license lic_") and "\nkey " in text.out


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2030-01-02T03:04:05Z", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2030-01-02T03:04:05", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2030-01-02", datetime(2030, 1, 2, tzinfo=UTC)),
        ("2030-01-02T05:04:05+02:00", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
def test_license_create_with_a_fixed_expiry(cli: Cli, product: str, given: str, expected: datetime) -> None:
    created = new_license(cli, product, "--expires-at", given)
    assert created["expiresAt"] == int(expected.timestamp())
    shown = cli.ok("license", "show", created["key"])
    assert shown["expiresAt"] == int(expected.timestamp())
    assert shown["validityDays"] is None


def test_license_create_with_validity_days(cli: Cli, product: str) -> None:
    created = new_license(cli, product, "--validity-days", "30")
    assert created["expiresAt"] is None  # counted from the first activation
    shown = cli.ok("license", "show", created["key"])
    assert shown["validityDays"] == 30
    _, result = activate(cli, product, created["key"])
    expires = verify(cli, result["response"]).expires_at
    assert expires is not None
    assert abs(expires - (wall_now() + 30 * 86400)) < 60
    assert cli.ok("license", "show", created["key"])["expiresAt"] == expires


def test_expiry_options_are_mutually_exclusive(cli: Cli, product: str) -> None:
    run = cli(
        "license",
        "create",
        "--product",
        product,
        "--allowed-activations",
        "1",
        "--allowed-deactivations",
        "1",
        "--expires-at",
        "2030-01-01",
        "--validity-days",
        "3",
    )
    assert run.code == 2
    assert "not allowed with argument" in run.err
    assert cli.ok("license", "list") == []


def test_license_create_refuses_an_expiry_in_the_past(cli: Cli, product: str) -> None:
    run = cli.fails(
        Code.INVALID_ARGUMENT, "license", "create", "--product", product,
        "--allowed-activations", "1", "--allowed-deactivations", "1", "--expires-at", "2020-01-02",
    )  # fmt: skip
    assert "the expiry date 2020-01-02T00:00:00Z is not in the future" in run.err
    assert cli.ok("license", "list") == []


@pytest.mark.parametrize(
    "bad",
    [
        ["--expires-at", "next tuesday"],
        ["--allowed-activations", "-2"],
        ["--allowed-activations", "many"],
    ],
)
def test_bad_option_values_are_usage_errors(cli: Cli, product: str, bad: list[str]) -> None:
    args = {"--allowed-activations": "1", "--allowed-deactivations": "1"}
    args.update(zip(bad[::2], bad[1::2], strict=True))
    run = cli("license", "create", "--product", product, *(x for kv in args.items() for x in kv))
    assert run.code == 2
    assert run.err.startswith("usage: ")


def test_license_name_at_creation_and_update(cli: Cli, product: str) -> None:
    created = new_license(cli, product, "--name", "Line 3 readers", "--owner", "Plant")
    assert created["name"] == "Line 3 readers"
    shown = cli.ok("license", "show", created["key"])
    assert (shown["name"], shown["owner"]) == ("Line 3 readers", "Plant")
    assert "name Line 3 readers" in cli("license", "show", created["key"]).out
    changed = cli.ok("license", "update", created["key"], "--name", "Line 4")
    assert (changed["name"], changed["owner"]) == ("Line 4", "Plant")  # the owner note is kept
    cleared = cli.ok("license", "update", created["key"], "--name", "", "--owner", "Night shift")
    assert (cleared["name"], cleared["owner"]) == (None, "Night shift")
    [listed] = cli.ok("license", "list")
    assert listed["name"] is None and listed["id"] == created["id"]
    cli.fails(Code.INVALID_ARGUMENT, "license", "update", created["key"])  # nothing to change
    cli.fails(Code.INVALID_ARGUMENT, "license", "update", created["key"], "--name", "x" * 201)
    cli.fails(Code.LICENSE_NOT_FOUND, "license", "update", "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE", "--name", "x")
    assert cli.ok("license", "show", created["key"])["name"] is None  # the refusals changed nothing
    update = [e for e in cli.ok("audit") if e["action"] == "license.update"]
    assert len(update) == 2


def test_license_metadata(cli: Cli, product: str) -> None:
    created = new_license(cli, product, "--metadata", "tier=gold", "--metadata", "seats=5", "--owner", "a@b")
    shown = cli.ok("license", "show", created["key"])
    assert shown["metadata"] == {"tier": "gold", "seats": "5"}
    assert shown["owner"] == "a@b"
    cli.fails(
        Code.INVALID_ARGUMENT,
        "license",
        "create",
        "--product",
        product,
        "--allowed-activations",
        "1",
        "--allowed-deactivations",
        "1",
        "--metadata",
        "novalue",
    )


def test_license_suspend_revoke_reinstate_show_list(cli: Cli, product: str) -> None:
    lic = new_license(cli, product)
    key = lic["key"]
    assert cli.ok("license", "suspend", key) == {"id": lic["id"], "status": "suspended"}
    assert cli.ok("license", "show", key)["status"] == "suspended"
    machine = Machine(fingerprint="fp-m1")
    req = write_request(cli.root / "a.req", machine, Kind.ACTIVATION, product, license_key=key)
    run = cli("process", req, "--out", cli.root / "out", "--json")
    assert run.code == 3
    assert run.json()[0]["code"] == "LICENSE_SUSPENDED"

    assert cli.ok("license", "reinstate", key)["status"] == "active"
    assert cli("process", req, "--out", cli.root / "out").code == 0

    assert cli.ok("license", "revoke", key)["status"] == "revoked"
    assert "is revoked" in cli("license", "revoke", key).out
    shown = cli.ok("license", "show", key)
    assert shown["status"] == "revoked"
    assert shown["key"] == key
    assert [a["fingerprint"] for a in shown["activations"]] == ["fp-m1"]
    text = cli("license", "show", key).out
    assert f"license {lic['id']} (revoked) for product {product}" in text
    assert "activations 1/2, deactivations 0/1" in text

    listed = cli.ok("license", "list")
    assert [(x["id"], x["status"], x["usedActivations"]) for x in listed] == [(lic["id"], "revoked", 1)]
    cli.fails(Code.LICENSE_NOT_FOUND, "license", "suspend", "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE")


def test_license_list_filters_by_product(cli: Cli, product: str) -> None:
    other = cli.ok("product", "create", "--name", "Other")["id"]
    a = new_license(cli, product)
    b = new_license(cli, other)
    assert {x["id"] for x in cli.ok("license", "list")} == {a["id"], b["id"]}
    assert [x["id"] for x in cli.ok("license", "list", "--product", other)] == [b["id"]]
    assert cli("license", "list", "--product", "prod_000000000000000000000000").out.strip() == "no licenses"


# -- keys -------------------------------------------------------------------------------------


def test_keys_jwks_of_all_products_and_of_one(cli: Cli, product: str) -> None:
    other = cli.ok("product", "create", "--name", "Other")
    everything = cli.ok("keys", "jwks")
    assert sorted(k["product"] for k in everything["keys"]) == sorted([product, other["id"]])
    assert all(k["kty"] == "OKP" and k["status"] == "active" and "d" not in k for k in everything["keys"])
    one = cli.ok("keys", "jwks", "--product", other["id"])
    assert [k["kid"] for k in one["keys"]] == [other["kid"]]
    # jwks is always JSON, with or without --json
    assert json.loads(cli("keys", "jwks", "--product", other["id"]).out) == one


def test_keys_rotate_then_remove_the_retired_key(cli: Cli, product: str) -> None:
    [old] = cli.ok("keys", "jwks", "--product", product)["keys"]
    lic = new_license(cli, product)
    _, before = activate(cli, product, lic["key"])

    rotated = cli.ok("keys", "rotate", "--product", product)
    assert rotated["productId"] == product
    assert rotated["kid"] != old["kid"]
    keys = cli.ok("keys", "jwks", "--product", product)["keys"]
    assert {k["kid"]: k["status"] for k in keys} == {old["kid"]: "retired", rotated["kid"]: "active"}
    assert verify(cli, before["response"]).kid == old["kid"]  # earlier responses still verify

    run = cli.fails(Code.CONFLICT, "keys", "remove", "--product", product, f"--kid={rotated['kid']}")
    assert "rotate first" in run.err
    assert cli.ok("keys", "remove", "--product", product, f"--kid={old['kid']}") == {"removed": old["kid"]}
    assert [k["kid"] for k in cli.ok("keys", "jwks", "--product", product)["keys"]] == [rotated["kid"]]
    cli.fails(Code.NOT_FOUND, "keys", "remove", "--product", product, f"--kid={old['kid']}")

    # new responses are signed with the new key
    _, after = activate(cli, product, lic["key"], name="m2")
    assert verify(cli, after["response"]).kid == rotated["kid"]


def test_keys_of_an_unknown_product(cli: Cli, product: str) -> None:
    cli.fails(Code.PRODUCT_NOT_FOUND, "keys", "jwks", "--product", "prod_000000000000000000000000")
    cli.fails(Code.PRODUCT_NOT_FOUND, "keys", "rotate", "--product", "prod_000000000000000000000000")
    cli.fails(
        Code.PRODUCT_NOT_FOUND,
        "keys",
        "remove",
        "--product",
        "prod_000000000000000000000000",
        "--kid",
        "A" * 43,
    )


@pytest.mark.parametrize("value", ["../../etc", "/etc", "..", "", "prod_\x00", "x" * 10_240, "prödüct"])
@pytest.mark.parametrize(
    "args",
    [
        ["keys", "jwks", "--product", "{v}"],
        ["keys", "rotate", "--product", "{v}"],
        ["keys", "remove", "--product", "{v}", "--kid", "A" * 43],
        ["license", "list", "--product", "{v}"],
        ["activation", "release", "{v}"],
        ["product", "update", "{v}", "--customer-release", "on"],
        ["release", "list", "--product", "{v}"],
        ["product", "list", "--account", "{v}"],
    ],
)
def test_identifiers_on_the_command_line_are_checked_by_shape(
    cli: Cli, product: str, args: list[str], value: str
) -> None:
    keys_before = sorted(cli.keys.rglob("*"))
    run = cli.fails(Code.INVALID_ARGUMENT, *(value if a == "{v}" else a for a in args))
    assert str(cli.root) not in run.err
    assert sorted(cli.keys.rglob("*")) == keys_before


def test_a_kid_that_is_not_a_thumbprint_is_refused(cli: Cli, product: str) -> None:
    cli.fails(Code.INVALID_ARGUMENT, "keys", "remove", "--product", product, "--kid", "../x")


# -- process ----------------------------------------------------------------------------------


def test_process_one_good_and_one_garbage_file(cli: Cli, product: str) -> None:
    lic = new_license(cli, product)
    good = write_request(
        cli.root / "good.req", Machine("fp-m1"), Kind.ACTIVATION, product, license_key=lic["key"]
    )
    garbage = cli.root / "garbage.req"
    garbage.write_bytes(b"this is not a request file")
    out = cli.root / "out"

    run = cli("process", good, garbage, "--out", out, "--json")
    assert run.code == 3
    results = run.json()
    assert [r["file"] for r in results] == [str(good), str(garbage)]
    ok, bad = results
    assert ok["ok"] is True and ok["code"] == "OK" and ok["kind"] == "activation"
    assert ok["reissued"] is False and ok["nextStep"] is None
    assert ok["response"] == str(out / "good.response")
    assert bad["ok"] is False and bad["code"] == "MALFORMED_REQUEST" and bad["response"] is None
    assert bad["message"] and bad["nextStep"] == next_step(Code.MALFORMED_REQUEST)
    assert sorted(p.name for p in out.iterdir()) == ["good.response"]  # no temp files left

    response = verify(cli, ok["response"])
    assert response.kind is Kind.ACTIVATION
    assert response.product_id == product
    assert response.license_id == lic["id"]
    assert response.activation_id == ok["activationId"]
    assert response.fingerprint == "fp-m1"
    assert response.used_activations == 1

    text = cli("process", good, garbage, "--out", out)
    assert text.code == 3
    assert f"{good}: OK activation {ok['activationId']} (reissued) -> {out / 'good.response'}" in text.out
    assert f"{garbage}: MALFORMED_REQUEST: " in text.out
    assert f"\n  next: {next_step(Code.MALFORMED_REQUEST)}\n" in text.out


def test_process_refuses_files_answered_in_names_that_differ_only_in_case(cli: Cli, product: str) -> None:
    lic = new_license(cli, product)
    (cli.root / "a").mkdir()
    (cli.root / "b").mkdir()
    upper = write_request(
        cli.root / "a" / "X.req", Machine("fp-1"), Kind.ACTIVATION, product, license_key=lic["key"]
    )
    lower = write_request(
        cli.root / "b" / "x.req", Machine("fp-2"), Kind.ACTIVATION, product, license_key=lic["key"]
    )
    run = cli.fails(Code.INVALID_ARGUMENT, "process", upper, lower, "--out", cli.root / "out")
    assert "x.response" in run.err  # the same file where case is folded (Windows, macOS)
    assert used(cli, lic["key"]) == (0, 0)


def test_process_the_same_file_again_reissues_without_taking_a_seat(cli: Cli, product: str) -> None:
    lic = new_license(cli, product)
    req = write_request(
        cli.root / "a.req", Machine("fp-m1"), Kind.ACTIVATION, product, license_key=lic["key"]
    )
    [first] = cli.ok("process", req, "--out", cli.root / "out")
    assert used(cli, lic["key"]) == (1, 0)
    [again] = cli.ok("process", req, "--out", cli.root / "out")
    assert again["reissued"] is True
    assert again["activationId"] == first["activationId"]
    assert used(cli, lic["key"]) == (1, 0)
    assert len(cli.ok("license", "show", lic["key"])["activations"]) == 1


def test_process_with_response_validity(cli: Cli, product: str) -> None:
    lic = new_license(cli, product)
    req = write_request(
        cli.root / "a.req", Machine("fp-m1"), Kind.ACTIVATION, product, license_key=lic["key"]
    )
    [result] = cli.ok("process", req, "--out", cli.root / "out", "--response-validity", "12h")
    response = verify(cli, result["response"])
    assert response.apply_before - response.issued_at == 43200
    [default] = cli.ok("process", req, "--out", cli.root / "out")
    response = verify(cli, default["response"])
    assert response.apply_before - response.issued_at == 3 * 86400


@pytest.mark.parametrize("bad", ["0", "12x", "-1h", "h"])
def test_process_refuses_a_bad_response_validity(cli: Cli, product: str, bad: str) -> None:
    req = cli.root / "a.req"
    req.write_bytes(b"x")
    run = cli("process", req, "--out", cli.root / "out", f"--response-validity={bad}")
    assert run.code == 2
    assert not (cli.root / "out").exists()


def test_process_an_unreadable_file_is_an_error(cli: Cli, product: str) -> None:
    run = cli.fails(Code.INVALID_ARGUMENT, "process", cli.root / "missing.req", "--out", cli.root / "out")
    assert "missing.req" in run.err


def test_process_refuses_two_files_that_would_share_a_response(cli: Cli, product: str) -> None:
    lic = new_license(cli, product)
    a = write_request(cli.root / "x.req", Machine("fp-a"), Kind.ACTIVATION, product, license_key=lic["key"])
    (cli.root / "sub").mkdir()
    b = write_request(
        cli.root / "sub" / "x.req", Machine("fp-b"), Kind.ACTIVATION, product, license_key=lic["key"]
    )
    run = cli.fails(Code.INVALID_ARGUMENT, "process", a, b, "--out", cli.root / "out")
    assert "x.response" in run.err
    assert not (cli.root / "out").exists()
    assert used(cli, lic["key"]) == (0, 0)
    assert cli("process", a, "--out", cli.root / "out").code == 0
    assert cli("process", b, "--out", cli.root / "out2").code == 0
    assert used(cli, lic["key"]) == (2, 0)


def test_process_deactivation_counts_once(cli: Cli, product: str) -> None:
    lic = new_license(cli, product)
    machine, result = activate(cli, product, lic["key"])
    deact = write_request(
        cli.root / "off.req", machine, Kind.DEACTIVATION, product, activation_id=result["activationId"]
    )
    [done] = cli.ok("process", deact, "--out", cli.root / "out")
    assert done["kind"] == "deactivation"
    assert verify(cli, done["response"]).deactivated_at is not None
    assert used(cli, lic["key"]) == (0, 1)
    [again] = cli.ok("process", deact, "--out", cli.root / "out")
    assert again["reissued"] is True
    assert used(cli, lic["key"]) == (0, 1)


def test_activation_release_frees_a_seat(cli: Cli, product: str) -> None:
    lic = new_license(cli, product, activations=1)
    _, result = activate(cli, product, lic["key"])
    activation_id = result["activationId"]
    assert used(cli, lic["key"]) == (1, 0)

    assert cli.ok("activation", "release", activation_id) == {"released": activation_id}
    assert used(cli, lic["key"]) == (0, 0)  # not counted as a deactivation
    [shown] = cli.ok("license", "show", lic["key"])["activations"]
    assert shown["deactivatedAt"] is not None

    cli.fails(Code.CONFLICT, "activation", "release", activation_id)
    cli.fails(Code.ACTIVATION_NOT_FOUND, "activation", "release", "act_000000000000000000000000")
    # the freed seat can be taken by another machine
    activate(cli, product, lic["key"], name="m2")
    assert used(cli, lic["key"]) == (1, 0)


# -- audit ------------------------------------------------------------------------------------


def test_audit_lists_decisions_without_license_keys(cli: Cli, product: str) -> None:
    lic = new_license(cli, product)
    _, result = activate(cli, product, lic["key"])
    wrong_key = "ZZZZZ-YYYYY-XXXXX-WWWWW-VVVVV"
    bad = write_request(
        cli.root / "bad.req", Machine("fp-m2"), Kind.ACTIVATION, product, license_key=wrong_key
    )
    garbage = cli.root / "garbage.req"
    garbage.write_bytes(b"garbage")
    assert cli("process", bad, garbage, "--out", cli.root / "out").code == 3
    cli.ok("license", "suspend", lic["key"])

    run = cli("audit", "--json")
    assert run.code == 0
    entries = run.json()
    decisions = [(e["actor"], e["action"], e["code"]) for e in entries]
    assert ("cli", "activation", "OK") in decisions
    assert ("cli", "activation", "LICENSE_NOT_FOUND") in decisions
    assert ("cli", "unknown", "MALFORMED_REQUEST") in decisions
    assert ("cli", "license.create", "OK") in decisions
    assert ("cli", "license.suspended", "OK") in decisions
    assert entries[0]["action"] == "license.suspended"  # newest first
    granted = next(e for e in entries if e["code"] == "OK" and e["action"] == "activation")
    assert granted["activationId"] == result["activationId"]
    assert granted["licenseId"] == lic["id"]
    assert granted["detail"] == {"fingerprint": "fp-m1"}

    text = cli("audit").out
    for output in (run.out, text):
        for key in (lic["key"], wrong_key):
            assert key not in output
            assert key.replace("-", "") not in output
    assert len(cli.ok("audit", "--limit", "2")) == 2


# -- accounts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["product", "list"],
        ["product", "create", "--name", "X"],
        ["license", "list"],
        ["license", "show", "AAAAA"],
        ["keys", "jwks"],
        ["audit"],
        ["activation", "release", "act_000000000000000000000000"],
    ],
)
def test_an_unknown_account_is_not_found(cli: Cli, product: str, args: list[str]) -> None:
    run = cli.fails(Code.NOT_FOUND, *args, account="nobody")
    assert "'nobody'" in run.err and "offline-service init" in run.err


def test_an_unknown_account_with_json_prints_the_error_as_json(cli: Cli) -> None:
    run = cli("product", "list", "--json", account="nobody")
    assert run.code == 1
    assert run.json()["ok"] is False
    assert run.json()["code"] == "NOT_FOUND"
    assert run.json()["nextStep"] == next_step(Code.NOT_FOUND)
    assert run.err.startswith("error: NOT_FOUND: ")
    assert run.err.endswith(f"\nnext: {next_step(Code.NOT_FOUND)}\n")


def test_another_account_cannot_see_the_first_accounts_records(cli: Cli, product: str) -> None:
    lic = new_license(cli, product)
    _, result = activate(cli, product, lic["key"])
    assert cli.ok("init", account="other")["account"]["created"] is True
    other = {"account": "other"}

    cli.fails(
        Code.PRODUCT_NOT_FOUND,
        "license",
        "create",
        "--product",
        product,
        "--allowed-activations",
        "1",
        "--allowed-deactivations",
        "1",
        **other,
    )
    cli.fails(Code.PRODUCT_NOT_FOUND, "keys", "jwks", "--product", product, **other)
    cli.fails(Code.PRODUCT_NOT_FOUND, "keys", "rotate", "--product", product, **other)
    cli.fails(Code.LICENSE_NOT_FOUND, "license", "show", lic["key"], **other)
    cli.fails(Code.LICENSE_NOT_FOUND, "license", "suspend", lic["key"], **other)
    cli.fails(Code.ACTIVATION_NOT_FOUND, "activation", "release", result["activationId"], **other)
    assert cli.ok("product", "list", **other) == []
    assert cli.ok("license", "list", **other) == []
    assert cli.ok("keys", "jwks", **other) == {"keys": []}
    assert all(e["action"] != "activation" for e in cli.ok("audit", **other))

    req = write_request(
        cli.root / "b.req", Machine("fp-m2"), Kind.ACTIVATION, product, license_key=lic["key"]
    )
    run = cli("process", req, "--out", cli.root / "out", "--json", **other)
    assert run.code == 3
    assert run.json()[0]["code"] == "PRODUCT_NOT_FOUND"

    # and nothing changed for the first account
    assert cli.ok("license", "show", lic["key"])["status"] == "active"
    assert used(cli, lic["key"]) == (1, 0)
    assert len(cli.ok("keys", "jwks", "--product", product)["keys"]) == 1


# -- usage, help and errors -------------------------------------------------------------------

COMMANDS = [
    [],
    ["init"],
    ["product"],
    ["product", "create"],
    ["product", "list"],
    ["license"],
    *(["license", verb] for verb in ("create", "change", "suspend", "revoke", "reinstate", "show", "list")),
    ["activation"],
    ["activation", "release"],
    ["keys"],
    *(["keys", verb] for verb in ("jwks", "rotate", "remove")),
    ["process"],
    ["batch"],
    ["audit"],
    ["demo"],
    ["token"],
    *(["token", verb] for verb in ("create", "list", "revoke")),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_help_of_every_command(cli: Cli, command: list[str]) -> None:
    run = cli.raw(*command, "--help")
    assert run.code == 0
    assert run.out.startswith(f"usage: offline-service {' '.join(command)}".rstrip())
    assert run.err == ""


def test_a_missing_command_is_a_usage_error(cli: Cli) -> None:
    for argv in ([], ["license"], ["keys", "nonsense"], ["init", "--bogus"]):
        run = cli.raw(*argv)
        assert run.code == 2, argv
        assert run.err.startswith("usage: offline-service")


def test_unusable_paths_are_errors_not_crashes(cli: Cli, product: str) -> None:
    a_file = cli.root / "a-file"
    a_file.write_text("x")
    req = write_request(cli.root / "a.req", Machine("fp-m1"), Kind.TRIAL, product)
    cli.fails(Code.STORAGE_ERROR, "process", req, "--out", a_file)
    assert cli.raw("init", "--data", a_file, "--keys", cli.keys).code == 1
    assert cli.raw("init", "--data", cli.data, "--keys", a_file).code == 1
    assert cli.ok("audit") != []  # the store still works


# -- real processes ---------------------------------------------------------------------------


def run_process(*args: str | Path, module: str = "offline_service.cli") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFLINE_SERVICE_")}
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env=env,
    )


@pytest.mark.slow
def test_end_to_end_in_real_processes(cli: Cli, tmp_path: Path) -> None:
    where = cli.where

    def ok(*args: str | Path) -> Any:
        done = run_process(*args, *where, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    ok("init")
    product = ok("product", "create", "--name", "App")["id"]
    lic = ok(
        "license",
        "create",
        "--product",
        product,
        "--allowed-activations",
        "1",
        "--allowed-deactivations",
        "1",
        "--expires-at",
        "2099-01-01",
    )
    good = write_request(
        tmp_path / "good.req", Machine("fp-m1"), Kind.ACTIVATION, product, license_key=lic["key"]
    )
    garbage = tmp_path / "garbage.req"
    garbage.write_bytes(b"\x00\xff garbage")

    done = run_process("process", good, garbage, "--out", tmp_path / "out", *where)
    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    assert "good.req: OK activation act_" in done.stdout
    assert "garbage.req: MALFORMED_REQUEST: " in done.stdout
    response = parse_response(
        (tmp_path / "out" / "good.response").read_bytes(), Keyring(tmp_path / "keys").public_keys()
    )
    assert response.license_id == lic["id"]
    assert response.expires_at == int(datetime(2099, 1, 1, tzinfo=UTC).timestamp())


@pytest.mark.slow
def test_errors_in_real_processes_print_no_traceback(cli: Cli, tmp_path: Path) -> None:
    where = cli.where
    database = where[4:]
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for args, status, code in [
        (["license", "list", *where], 1, "NOT_FOUND"),  # no database yet: only init creates it
        (["init", *where], 0, None),
        (["license", "list", *where, "--account", "nobody"], 1, "NOT_FOUND"),
        (["init", "--data", a_file, "--keys", tmp_path / "keys", *database], 1, "STORAGE_ERROR"),
        (["process", tmp_path / "missing.req", "--out", tmp_path / "out", *where], 1, "INVALID_ARGUMENT"),
        (["license", "create", *where], 2, None),
    ]:
        done = run_process(*args)
        assert done.returncode == status, (args, done.stderr)
        assert "Traceback" not in done.stderr
        if code:
            assert done.stderr.startswith(f"error: {code}: "), done.stderr


@pytest.mark.slow
def test_help_in_a_real_process(tmp_path: Path) -> None:
    done = run_process("--help")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: offline-service")
    for verb in ("init", "product", "license", "activation", "keys", "process", "batch", "audit", "demo"):
        assert verb in done.stdout
    assert "exit status: 0 success" in done.stdout


@pytest.mark.slow
def test_demo_runs_twice(cli: Cli) -> None:
    where = cli.where
    if cli.database_url:  # the steps run on that database; the commands shown hide its password
        parts = urlsplit(cli.database_url)
        netloc = f"{parts.username}:demo-secret@{parts.netloc.rpartition('@')[2]}"
        where = [*where[:-1], urlunsplit(parts._replace(netloc=netloc))]  # trust auth ignores it
    first = run_process("demo", *where)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "demo-secret" not in first.stdout + first.stderr
    assert ("OFFLINE_SERVICE_DATABASE_URL" in first.stdout) == (cli.database_url is not None)
    assert "--database-url" not in first.stdout  # never on a step's command line
    assert first.stdout.startswith("Created the demo account 'default', product 'Demo App'")
    for n in range(1, 9):
        assert f"\n{n}. " in first.stdout
    for step in (
        "offline-client request",
        "offline-service process",
        "offline-service keys jwks",
        "offline-client activate",
        "offline-client status",
        "offline-client deactivate",
        "offline-service license show",
    ):
        assert step in first.stdout
    assert "activations 0/3, deactivations 1/unlimited" in first.stdout
    assert "Done." in first.stdout
    assert "Traceback" not in first.stderr

    second = run_process("demo", *where)
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.startswith("Using the demo account 'default', product 'Demo App'")
    assert "Done." in second.stdout
    assert "activations 0/3, deactivations 2/unlimited" in second.stdout
    products = json.loads(run_process("product", "list", *where, "--json").stdout)
    assert [p["name"] for p in products] == ["Demo App"]
    assert len(json.loads(run_process("license", "list", *where, "--json").stdout)) == 1


@pytest.mark.slow
def test_demo_runs_after_the_portal_walkthrough_activated_this_computer(cli: Cli) -> None:
    assert run_process("demo", *cli.where).returncode == 0
    [product] = json.loads(run_process("product", "list", *cli.where, "--json").stdout)
    [lic] = json.loads(run_process("license", "list", *cli.where, "--json").stdout)
    # The README's portal walkthrough: this computer (its own fingerprint) takes a seat of the demo
    # license with an installation of its own.
    req = cli.root / "activation.req"
    wrote = run_process(
        "request", "--product", product["id"], "--key", lic["key"], "--state", cli.root / "machine-a",
        "--witness-dir", cli.root / "witness-a", "--out", req, module="offline_service.client.cli",
    )  # fmt: skip
    assert wrote.returncode == 0, wrote.stderr
    [result] = cli.ok("process", req, "--out", cli.root / "portal")
    assert result["ok"], result

    again = run_process("demo", *cli.where)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "MACHINE_KEY_MISMATCH" not in again.stdout
    assert "activations 1/3, deactivations 2/unlimited" in again.stdout  # the walkthrough's seat stays


def test_license_create_and_list_print_the_license_json_of_the_api(cli: Cli, product: str) -> None:
    """`license create` and `license list` --json are licensing.representations.license_json: the
    fields they printed before (id, key, productId, expiresAt, maxVersion; status, used and allowed
    activations) and the rest of the API's license object."""
    created = new_license(cli, product, "--metadata", "seat=1", "--max-version", "2.0")
    api_fields = {
        "id", "key", "productId", "status", "expiresAt", "validityDays", "allowedActivations",
        "usedActivations", "allowedDeactivations", "usedDeactivations", "metadata", "createdAt",
        "maxVersion", "name",
    }  # fmt: skip
    assert set(created) == api_fields
    assert (created["productId"], created["maxVersion"], created["metadata"]) == (
        product,
        "2.0",
        {"seat": "1"},
    )
    [listed] = cli.ok("license", "list")
    assert listed == created
    shown = cli.ok("license", "show", created["key"])
    assert {k: shown[k] for k in api_fields} == created
