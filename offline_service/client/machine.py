"""Machine fingerprints: the OS machine id, hashed with the product id so vendors cannot correlate."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys

from offline_service.errors import Code, OfflineServiceError

__all__ = ["fingerprint", "machine_id"]

_DOMAIN = b"offline-service fingerprint v1\0"
_LINUX_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")
_FREEBSD_FILES = ("/etc/hostid",)
_IOREG_UUID = re.compile(r'"IOPlatformUUID"\s*=\s*"([^"]+)"')
_MAX_ID = 256


def _first_file(paths: tuple[str, ...]) -> str | None:
    for name in paths:
        try:
            with open(name, "rb") as f:
                text = f.read(_MAX_ID).decode("ascii", "replace").strip()
        except OSError:
            continue
        if text:
            return text
    return None


def _windows_guid() -> str | None:
    if sys.platform == "win32":
        import winreg

        try:
            with winreg.OpenKey(
                winreg.HKEY_LOCAL_MACHINE,
                r"SOFTWARE\Microsoft\Cryptography",
                0,
                winreg.KEY_READ | winreg.KEY_WOW64_64KEY,
            ) as key:
                value, _ = winreg.QueryValueEx(key, "MachineGuid")
        except OSError:
            return None
        return str(value).strip() or None
    return None


def _macos_uuid() -> str | None:
    try:
        out = subprocess.run(
            ["ioreg", "-rd1", "-c", "IOPlatformExpertDevice"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _IOREG_UUID.search(out)
    return match.group(1) if match else None


def machine_id() -> str:
    """The operating system's stable machine id. Raises INVALID_ARGUMENT when there is none."""
    if sys.platform == "win32":
        found = _windows_guid()
    elif sys.platform == "darwin":
        found = _macos_uuid()
    elif sys.platform.startswith("freebsd"):
        found = _first_file(_FREEBSD_FILES)
    else:
        found = _first_file(_LINUX_FILES)
    if not found:
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT,
            "this machine has no readable machine id; pass --fingerprint with a stable identifier",
        )
    return found


def fingerprint(product_id: str, machine_id: str | None = None) -> str:
    """Lowercase hex SHA-256 of the machine id, salted per product. Reads the machine id if not given."""
    mid = _this_machine() if machine_id is None else machine_id
    digest = hashlib.sha256(_DOMAIN + product_id.encode() + b"\0" + mid.encode())
    return digest.hexdigest()


def _this_machine() -> str:
    # ``fingerprint``'s parameter shadows ``machine_id`` there; looked up at call time, so it can be patched.
    return machine_id()
