"""The vendor's verbs for people: org, user and group (through ``accounts.cli``)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from offline_service.cli import main
from tests.factories import database_options

PASSWORD = "correct horse battery"

# -- CLI ----------------------------------------------------------------------------------------


def test_people_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    monkeypatch.setenv("OFFLINE_SERVICE_PASSWORD_COST", "minimum")
    where = [
        "--data",
        str(tmp_path / "d"),
        "--keys",
        str(tmp_path / "k"),
        *database_options(tmp_path, backend),
    ]

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main([*argv, *where])
        out = capsys.readouterr()
        return code, out.out, out.err

    assert run("init")[0] == 0
    product = json.loads(run("product", "create", "--name", "App", "--json")[1])["id"]
    assert run("org", "create", "--name", "Org A")[0] == 0
    code, out, err = run(
        "user",
        "create",
        "--email",
        "ann@example.com",
        "--role",
        "organization-admin",
        "--organization",
        "Org A",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert code == 0 and PASSWORD not in out + err
    assert (
        run("user", "create", "--email", "bob@example.com", "--role", "user", "--organization", "Org A")[0]
        == 0
    )
    license = json.loads(
        run(
            "license",
            "create",
            "--product",
            product,
            "--allowed-activations",
            "2",
            "--allowed-deactivations",
            "1",
            "--organization",
            "Org A",
            "--json",
        )[1]
    )
    assert run("group", "create", "--organization", "Org A", "--name", "Ops")[0] == 0
    assert run("group", "add-user", "Ops", "bob@example.com")[0] == 0
    assert run("group", "link", "Ops", license["key"])[0] == 0

    code, _, err = run("user", "create", "--email", "ann@example.com", "--role", "user")
    assert code == 1 and "CONFLICT" in err
    code, _, err = run("group", "add-user", "Ops", "nobody@example.com")
    assert code == 1 and "NOT_FOUND" in err
    with pytest.raises(SystemExit) as usage:  # a license belongs to a user or an organization
        run(
            "license",
            "create",
            "--product",
            product,
            "--allowed-activations",
            "1",
            "--allowed-deactivations",
            "1",
            "--user",
            "bob@example.com",
            "--organization",
            "Org A",
        )
    assert usage.value.code == 2


def test_people_admin_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    """user disable / enable / password-link and group remove-user / unlink: the organization
    admin's operations for the vendor, with the same rules (cap, mails, audit under "cli")."""
    monkeypatch.setenv("OFFLINE_SERVICE_PASSWORD_COST", "minimum")
    monkeypatch.delenv("OFFLINE_SERVICE_PUBLIC_URL", raising=False)
    data = tmp_path / "d"
    where = ["--data", str(data), "--keys", str(tmp_path / "k"), *database_options(tmp_path, backend)]

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main([*argv, *where])
        out = capsys.readouterr()
        return code, out.out, out.err

    assert run("init")[0] == 0
    product = json.loads(run("product", "create", "--name", "App", "--json")[1])["id"]
    assert run("org", "create", "--name", "Org A", "--allowed-users", "2")[0] == 0
    for email in ("ann@example.com", "bob@example.com"):
        assert run("user", "create", "--email", email, "--role", "user", "--organization", "Org A")[0] == 0
    code, _, err = run(
        "user", "create", "--email", "cat@example.com", "--role", "user", "--organization", "Org A"
    )
    assert code == 1 and "USER_LIMIT" in err
    assert run("org", "create", "--name", "Bad", "--allowed-users", "-1")[0] == 1

    # Disabling frees a place; enabling again is held to the cap.
    code, out, _ = run("user", "disable", "bob@example.com", "--json")
    assert code == 0 and json.loads(out)["disabled"] is True
    assert (
        run("user", "create", "--email", "cat@example.com", "--role", "user", "--organization", "Org A")[0]
        == 0
    )
    code, _, err = run("user", "enable", "bob@example.com")
    assert code == 1 and "USER_LIMIT" in err
    code, _, err = run("user", "disable", "nobody@example.com")
    assert code == 1 and "NOT_FOUND" in err

    # A set-password link goes into a mail file, never to the terminal.
    code, _, err = run("user", "password-link", "ann@example.com")
    assert code == 1 and "INVALID_ARGUMENT" in err and "--base-url" in err
    code, out, err = run("user", "password-link", "ann@example.com", "--base-url", "https://portal.example")
    assert code == 0 and "mailed" in out
    [mail] = list((data / "mail").glob("*.eml"))
    found = re.search(r"https://portal\.example/set-password\?token=(\S+)", mail.read_text())
    assert found and found.group(1) not in out + err
    code, _, err = run("user", "password-link", "bob@example.com", "--base-url", "https://portal.example")
    assert code == 1 and "CONFLICT" in err  # disabled
    # An account with a custom domain: its links are on that domain, unless --base-url says otherwise.
    assert run("account", "customize", "--custom-domain", "licenses.acme.example")[0] == 0
    for args, base in (
        ([], "https://licenses.acme.example"),
        (["--base-url", "https://x.example"], "https://x.example"),
    ):
        for old in (data / "mail").glob("*.eml"):
            old.unlink()
        assert run("user", "password-link", "ann@example.com", *args)[0] == 0
        [mail] = list((data / "mail").glob("*.eml"))
        assert f"{base}/set-password?token=" in mail.read_text()

    # Groups: remove a member, unlink a license.
    key = json.loads(
        run(
            "license",
            "create",
            "--product",
            product,
            "--allowed-activations",
            "1",
            "--allowed-deactivations",
            "1",
            "--organization",
            "Org A",
            "--json",
        )[1]
    )["key"]
    assert run("group", "create", "--organization", "Org A", "--name", "Ops")[0] == 0
    assert run("group", "add-user", "Ops", "ann@example.com")[0] == 0
    assert run("group", "link", "Ops", key)[0] == 0
    assert run("group", "remove-user", "Ops", "ann@example.com")[0] == 0
    code, _, err = run("group", "remove-user", "Ops", "ann@example.com")
    assert code == 1 and "NOT_FOUND" in err
    assert run("group", "unlink", "Ops", key)[0] == 0
    code, _, err = run("group", "unlink", "Ops", key)
    assert code == 1 and "NOT_FOUND" in err
    code, _, err = run("group", "unlink", "Nope", key)
    assert code == 1 and "NOT_FOUND" in err
    code, out, _ = run("audit", "--json")
    actions = [(e["actor"], e["action"]) for e in json.loads(out)]
    for action in ("user.disable", "user.password_link", "group.remove_user", "group.unlink_license"):
        assert ("cli", action) in actions
    # The help of each new verb.
    for verb in (
        ["user", "disable"],
        ["user", "enable"],
        ["user", "password-link"],
        ["group", "remove-user"],
        ["group", "unlink"],
    ):
        with pytest.raises(SystemExit) as shown:
            main([*verb, "--help"])
        assert shown.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: offline-service {' '.join(verb)}")


def test_the_cli_gives_the_portals_codes_for_the_same_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    """Changed in issue 10: names are refused rather than cut; another organization's user is
    NOT_FOUND and its license LICENSE_NOT_FOUND (both were FORBIDDEN); each is exit status 1."""
    monkeypatch.setenv("OFFLINE_SERVICE_PASSWORD_COST", "minimum")
    where = [
        "--data",
        str(tmp_path / "d"),
        "--keys",
        str(tmp_path / "k"),
        *database_options(tmp_path, backend),
    ]

    def run(*argv: str) -> tuple[int, str]:
        code = main([*argv, *where])
        return code, capsys.readouterr().err

    assert run("init")[0] == 0
    main(["product", "create", "--name", "App", "--json", *where])
    product = json.loads(capsys.readouterr().out)["id"]
    for org in ("Org A", "Org B"):
        assert run("org", "create", "--name", org)[0] == 0
    assert (
        run("user", "create", "--email", "zed@b.example", "--role", "user", "--organization", "Org B")[0] == 0
    )
    assert run("group", "create", "--organization", "Org A", "--name", "Ops")[0] == 0
    main(
        [
            "license",
            "create",
            "--product",
            product,
            "--allowed-activations",
            "1",
            "--allowed-deactivations",
            "1",
            "--organization",
            "Org B",
            "--json",
            *where,
        ]
    )
    theirs = json.loads(capsys.readouterr().out)["key"]
    for argv, code in (
        (
            ["user", "create", "--email", "x@a.example", "--role", "user", "--first-name", "x" * 150],
            "INVALID_ARGUMENT",
        ),
        (
            ["user", "create", "--email", "x@a.example", "--role", "user", "--last-name", "a\x1bb"],
            "INVALID_ARGUMENT",
        ),
        (["group", "create", "--organization", "Org A", "--name", "Dev\x00Ops"], "INVALID_ARGUMENT"),
        (["group", "create", "--organization", "Org A", "--name", "x" * 201], "INVALID_ARGUMENT"),
        (["org", "create", "--name", "Org\nC"], "INVALID_ARGUMENT"),
        (["group", "add-user", "Ops", "zed@b.example"], "NOT_FOUND"),
        (["group", "link", "Ops", theirs], "LICENSE_NOT_FOUND"),
    ):
        status, err = run(*argv)
        assert status == 1 and err.startswith(f"error: {code}:"), (argv, err)


def test_group_rename_and_delete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    """``group rename`` and ``group delete`` find the group by name, in ``--organization`` when two
    organizations have one; a delete takes the memberships and links, never the users or licenses."""
    monkeypatch.setenv("OFFLINE_SERVICE_PASSWORD_COST", "minimum")
    where = [
        "--data",
        str(tmp_path / "d"),
        "--keys",
        str(tmp_path / "k"),
        *database_options(tmp_path, backend),
    ]

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([*argv, *where])
        out = capsys.readouterr()
        return code, out.out, out.err

    assert run("init")[0] == 0
    product = json.loads(run("product", "create", "--name", "App", "--json")[1])["id"]
    for org in ("Org A", "Org B"):
        assert run("org", "create", "--name", org)[0] == 0
        assert run("group", "create", "--organization", org, "--name", "Ops")[0] == 0
    assert run("group", "create", "--organization", "Org A", "--name", "QA")[0] == 0
    assert (
        run("user", "create", "--email", "bob@a.example", "--role", "user", "--organization", "Org A")[0] == 0
    )
    key = json.loads(
        run(
            "license",
            "create",
            "--product",
            product,
            "--allowed-activations",
            "1",
            "--allowed-deactivations",
            "1",
            "--organization",
            "Org A",
            "--json",
        )[1]
    )["key"]

    code, _, err = run("group", "rename", "Ops", "Dev")
    assert code == 1 and err.startswith("error: CONFLICT:") and "name the organization" in err
    code, out, _ = run("group", "rename", "Ops", " Dev ", "--organization", "Org A", "--json")
    assert code == 0 and json.loads(out)["name"] == "Dev"
    assert run("group", "add-user", "Dev", "bob@a.example")[0] == 0
    assert run("group", "link", "Dev", key)[0] == 0
    for argv, failure in (
        (["group", "rename", "Dev", "QA"], "CONFLICT"),
        (["group", "rename", "Dev", "x" * 201], "INVALID_ARGUMENT"),
        (["group", "rename", "Dev", "A\x1bB"], "INVALID_ARGUMENT"),
        (["group", "rename", "Nope", "Other"], "NOT_FOUND"),
        (["group", "rename", "Dev", "Other", "--organization", "Org B"], "NOT_FOUND"),
        (["group", "delete", "Nope"], "NOT_FOUND"),
        (["group", "delete", "Ops", "--organization", "Org A"], "NOT_FOUND"),  # Org A's is Dev now
    ):
        code, _, err = run(*argv)
        assert code == 1 and err.startswith(f"error: {failure}:"), (argv, err)

    code, out, _ = run("group", "delete", "Dev", "--json")
    assert code == 0 and json.loads(out)["removed"].startswith("grp_")
    code, _, err = run("group", "add-user", "Dev", "bob@a.example")
    assert code == 1 and "NOT_FOUND" in err
    # The user and the license stay: both can go into another group.
    assert run("group", "add-user", "QA", "bob@a.example")[0] == 0
    assert run("group", "link", "QA", key)[0] == 0
    code, out, _ = run("group", "rename", "Ops", "Dev")  # only Org B has an Ops now
    assert code == 0
    actions = [(e["actor"], e["action"]) for e in json.loads(run("audit", "--json")[1])]
    assert ("cli", "group.rename") in actions and ("cli", "group.delete") in actions
    for verb in (["group", "rename"], ["group", "delete"]):
        with pytest.raises(SystemExit) as shown:
            main([*verb, "--help"])
        assert shown.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: offline-service {' '.join(verb)}")
