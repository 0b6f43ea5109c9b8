from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from offline_service import Code, OfflineServiceError
from offline_service.client import fingerprint, machine
from offline_service.client import machine_id as read_machine_id

# The request format's fingerprint pattern (docs/FORMAT.md).
FINGERPRINT = re.compile(r"\A[A-Za-z0-9+/=_.:-]{1,128}\Z")


def test_fingerprint_known_answer() -> None:
    expected = hashlib.sha256(b"offline-service fingerprint v1\0prod_1\0abc").hexdigest()
    assert fingerprint("prod_1", "abc") == expected


def test_fingerprint_is_stable_and_per_product() -> None:
    a = fingerprint("prod_a", "machine")
    assert a == fingerprint("prod_a", "machine")
    assert a != fingerprint("prod_b", "machine")
    assert a != fingerprint("prod_a", "other machine")
    assert FINGERPRINT.match(a) and a == a.lower() and len(a) == 64


def test_fingerprint_separates_product_from_machine() -> None:
    # The NUL separator keeps ("ab", "c") and ("a", "bc") apart.
    assert fingerprint("ab", "c") != fingerprint("a", "bc")


def test_fingerprint_reads_this_machine_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine, "machine_id", lambda: "from-os")
    assert fingerprint("prod_1") == fingerprint("prod_1", "from-os")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux machine-id files")
def test_linux_machine_id_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    first, second = tmp_path / "machine-id", tmp_path / "dbus-machine-id"
    monkeypatch.setattr(machine, "_LINUX_FILES", (str(first), str(second)))
    second.write_text("dbus-id\n")
    assert read_machine_id() == "dbus-id"
    first.write_text("  \n")  # empty files do not count
    assert read_machine_id() == "dbus-id"
    first.write_text("etc-id\n")
    assert read_machine_id() == "etc-id"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux machine-id files")
def test_no_machine_id(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(machine, "_LINUX_FILES", (str(tmp_path / "none"),))
    with pytest.raises(OfflineServiceError) as info:
        read_machine_id()
    assert info.value.code is Code.INVALID_ARGUMENT
    assert "--fingerprint" in info.value.message


def test_macos_ioreg_output(monkeypatch: pytest.MonkeyPatch) -> None:
    out = '+-o J314sAP  <class IOPlatformExpertDevice>\n    "IOPlatformUUID" = "1A2B3C4D-0000-1111-2222-333344445555"\n'

    def run(*args: Any, **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 0, stdout=out, stderr="")

    monkeypatch.setattr(subprocess, "run", run)
    assert machine._macos_uuid() == "1A2B3C4D-0000-1111-2222-333344445555"


def test_macos_without_ioreg(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(*args: Any, **kw: Any) -> subprocess.CompletedProcess[str]:
        raise FileNotFoundError("ioreg")

    monkeypatch.setattr(subprocess, "run", run)
    assert machine._macos_uuid() is None
