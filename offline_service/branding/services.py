"""Customization per account: the portal's name, accent colour, logo and custom domain.

The vendor sets them with ``offline-service account customize``; the portal's people (the vendor's
customers) only see them. Every value is validated here, so the web layer can put them into pages
and a generated stylesheet as they are. Logos are PNG, JPEG or WebP, recognised by their first bytes
(never by the file name), at most 512 KiB and 2048 x 2048 pixels, and stored under
``<data>/branding/`` named by their SHA-256.

Shared by the CLI and the web layer; nothing here knows about HTTP.
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
import stat
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Literal

from offline_service import audit
from offline_service._files import write_atomic
from offline_service.accounts.models import Account
from offline_service.branding.models import Branding
from offline_service.errors import Code, OfflineServiceError
from offline_service.store import Store

__all__ = [
    "DEFAULT_PORTAL_NAME",
    "KEEP",
    "LOGO_TYPES",
    "MAX_LOGO_BYTES",
    "MAX_LOGO_SIDE",
    "MAX_PORTAL_NAME",
    "Theme",
    "branding_of",
    "check_color",
    "check_domain",
    "check_portal_name",
    "contrast",
    "customize",
    "image_info",
    "logo_path",
    "logo_version",
    "page_account",
    "theme",
    "theme_css",
]

DEFAULT_PORTAL_NAME = "License portal"
MAX_PORTAL_NAME = 80
MAX_LOGO_BYTES = 512 * 1024
MAX_LOGO_SIDE = 2048
LOGO_TYPES: Final = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
BRANDING_DIR = "branding"

_COLOR = re.compile(r"\A#[0-9a-fA-F]{6}\Z")
_LABEL = re.compile(r"\A[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_LOGO_FILE = re.compile(r"\A[a-z0-9_]+-[0-9a-f]{64}\.(?:png|jpg|webp)\Z")


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP: Final = _Keep.KEEP  # "leave as it is", where None means "remove"


# -- checks ----------------------------------------------------------------------------------------


def check_color(text: str) -> str:
    """``#RRGGBB``, returned in lower case."""
    if not _COLOR.match(text.strip()):
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"{text[:20]!r} is not a colour like #0b5cad")
    return text.strip().lower()


def check_portal_name(text: str) -> str:
    name = " ".join(text.split())
    if not 0 < len(name) <= MAX_PORTAL_NAME or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, f"a portal name is 1-{MAX_PORTAL_NAME} printable characters"
        )
    return name


def check_domain(text: str) -> str:
    """A host name in its ASCII form (IDNA), lower case, without a trailing dot: what browsers send
    in ``Host``. IP addresses, ports, paths and single labels are refused."""
    host = text.strip().rstrip(".")
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        ascii_host = ""
    labels = ascii_host.split(".")
    if (
        not ascii_host
        or len(ascii_host) > 253
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise OfflineServiceError(
            Code.INVALID_ARGUMENT, f"{text[:100]!r} is not a host name like portal.customer.example"
        )
    return ascii_host


def image_info(data: bytes) -> tuple[str, int, int]:
    """(media type, width, height) of a PNG, JPEG or WebP image, read from its header only.
    BAD_IMAGE for anything else, or a header this cannot read."""
    if len(data) > MAX_LOGO_BYTES:
        raise OfflineServiceError(Code.BAD_IMAGE, f"a logo is at most {MAX_LOGO_BYTES // 1024} KiB")
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            kind, (width, height) = "image/png", struct.unpack(">II", data[16:24])
        elif data.startswith(b"\xff\xd8\xff"):
            kind, (width, height) = "image/jpeg", _jpeg_size(data)
        elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            kind, (width, height) = "image/webp", _webp_size(data)
        else:
            raise OfflineServiceError(Code.BAD_IMAGE, "a logo must be a PNG, JPEG or WebP image")
    except (struct.error, IndexError):
        raise OfflineServiceError(Code.BAD_IMAGE, "the image's header is damaged") from None
    if not (0 < width <= MAX_LOGO_SIDE and 0 < height <= MAX_LOGO_SIDE):
        raise OfflineServiceError(
            Code.BAD_IMAGE,
            f"a logo is at most {MAX_LOGO_SIDE} x {MAX_LOGO_SIDE} pixels (this is {width} x {height})",
        )
    return kind, width, height


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Walk the JPEG's marker segments up to the start of frame, which holds the size."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if length < 2:
            break
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    raise OfflineServiceError(Code.BAD_IMAGE, "the JPEG has no readable size")


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if len(data) < (25 if chunk == b"VP8L" else 30):
        raise OfflineServiceError(Code.BAD_IMAGE, "the WebP is cut short")
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    raise OfflineServiceError(Code.BAD_IMAGE, "the WebP has no readable size")


# -- colours ---------------------------------------------------------------------------------------


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _luminance(color: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in _rgb(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """The WCAG 2 contrast ratio of two #rrggbb colours (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _darker(color: str, factor: float) -> str:
    return "#" + "".join(f"{round(c * factor):02x}" for c in _rgb(color))


WHITE, INK = "#ffffff", "#1b1f24"  # the portal's paper and text colours


@dataclass(frozen=True, slots=True)
class Theme:
    """The colours a stylesheet uses for an accent: the brand colour itself (the header's bar), and
    the accent for links and buttons, darkened where needed to read on white (WCAG AA, 4.5:1), with
    the text colour that reads best on it."""

    brand: str
    accent: str
    accent_ink: str
    accent_hover: str


def _ink_on(color: str) -> str:
    return WHITE if contrast(color, WHITE) >= contrast(color, INK) else INK


def theme(color: str) -> Theme:
    color = check_color(color)
    accent, factor = color, 1.0
    while contrast(accent, WHITE) < 4.5:
        factor -= 0.05
        accent = _darker(color, factor)
    return Theme(
        brand=color,
        accent=accent,
        accent_ink=_ink_on(accent),
        accent_hover=_darker(accent, 0.8),
    )


def theme_css(color: str) -> str:
    """The stylesheet of an accent colour (only validated hex colours go into it)."""
    t = theme(color)
    return (
        "/* The account's accent colour, generated from its customization. */\n"
        f":root {{\n  --brand: {t.brand};\n"
        f"  --accent: {t.accent};\n  --accent-ink: {t.accent_ink};\n}}\n\n"
        f"button:hover {{\n  background: {t.accent_hover};\n}}\n"
    )


# -- storing ---------------------------------------------------------------------------------------


def logo_path(data_dir: Path, branding: Branding) -> Path | None:
    """Where the account's logo is, if it has one (the name is checked, never trusted)."""
    if branding.logo_file is None or not _LOGO_FILE.match(branding.logo_file):
        return None
    return data_dir / BRANDING_DIR / branding.logo_file


def _read_logo(path: Path) -> bytes:
    try:
        # O_NONBLOCK: a FIFO cannot hang the command; it is refused below like any non-file.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise OfflineServiceError(Code.NOT_FOUND, f"file {path} does not exist") from None
    except OSError as exc:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, f"cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OfflineServiceError(Code.BAD_IMAGE, f"{path} is not a regular file")
    with os.fdopen(fd, "rb") as f:
        return f.read(MAX_LOGO_BYTES + 1)


Change = Literal[_Keep.KEEP] | None


def customize(
    store: Store,
    account: Account,
    *,
    data_dir: Path,
    now: int,
    portal_name: str | Change = KEEP,
    accent_color: str | Change = KEEP,
    logo: Path | Change = KEEP,
    custom_domain: str | Change = KEEP,
    actor: str = "cli",
) -> Branding:
    """Change the account's customization: each argument is a new value, None to remove it, or
    KEEP. Everything is checked before anything is written; a refused change changes nothing."""
    name = check_portal_name(portal_name) if isinstance(portal_name, str) else portal_name
    color = check_color(accent_color) if isinstance(accent_color, str) else accent_color
    domain = check_domain(custom_domain) if isinstance(custom_domain, str) else custom_domain
    new_logo: tuple[bytes, str] | None = None
    if isinstance(logo, Path):
        data = _read_logo(logo)
        kind, _, _ = image_info(data)
        new_logo = data, kind
    written: Path | None = None
    if new_logo is not None:
        data, kind = new_logo
        file_name = f"{account.id}-{hashlib.sha256(data).hexdigest()}.{LOGO_TYPES[kind]}"
        written = data_dir / BRANDING_DIR / file_name
        written.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(written, data, mode=0o600)
    try:
        with store.write() as tx:
            current = tx.branding(account.id) or Branding(account_id=account.id, updated_at=now)
            if isinstance(domain, str):
                holder = tx.branding_by_domain(domain)
                if holder is not None and holder.account_id != account.id:
                    raise OfflineServiceError(
                        Code.CONFLICT, f"{domain} is the custom domain of another account"
                    )
            updated = replace(
                current,
                updated_at=now,
                portal_name=current.portal_name if name is KEEP else name,
                accent_color=current.accent_color if color is KEEP else color,
                custom_domain=current.custom_domain if domain is KEEP else domain,
                logo_file=(
                    current.logo_file if logo is KEEP else written.name if written is not None else None
                ),
                logo_type=current.logo_type
                if logo is KEEP
                else new_logo[1]
                if new_logo is not None
                else None,
            )
            tx.save_branding(updated)
            audit.record(
                tx,
                account_id=account.id,
                actor=actor,
                action="account.customize",
                now=now,
                **{
                    k: "changed" if v is None or isinstance(v, str | Path) else "kept"
                    for k, v in (
                        ("portalName", portal_name),
                        ("accentColor", accent_color),
                        ("logo", logo),
                        ("customDomain", custom_domain),
                    )
                },
            )
    except BaseException:
        if written is not None and written.name != (_current_logo(store, account) or ""):
            written.unlink(missing_ok=True)
        raise
    old = logo_path(data_dir, current)
    if old is not None and current.logo_file != updated.logo_file:
        old.unlink(missing_ok=True)  # no page names it any more
    return updated


def _current_logo(store: Store, account: Account) -> str | None:
    with store.read() as tx:
        found = tx.branding(account.id)
    return found.logo_file if found else None


def branding_of(store: Store, account_id: str) -> Branding | None:
    """The account's customization, or None while it has none."""
    with store.read() as tx:
        return tx.branding(account_id)


def logo_version(found: Branding) -> str:
    """What changes when the logo does: the file is named <account>-<sha256>.<ext>, so its hash."""
    return (found.logo_file or "").rsplit("-", 1)[-1][:16]


def page_account(
    store: Store, *, account_id: str | None, host: str | None, alias: str | None
) -> tuple[Account, Branding | None, str] | None:
    """The account a portal page is for, its customization and how it was found: ``account_id``
    (the logged-in person's, "session") first, else the account whose custom domain is ``host``
    ("host"), else the one whose alias is ``alias`` ("query"); None when none is known."""
    source = "session" if account_id else ""
    with store.read() as tx:
        if account_id is None and host:
            by_domain = tx.branding_by_domain(host)
            if by_domain is not None:
                account_id, source = by_domain.account_id, "host"
        if account_id is None and alias:
            named = tx.account_by_alias(alias)
            if named is not None:
                account_id, source = named.id, "query"
        account = tx.account_by_id(account_id) if account_id else None
        found = tx.branding(account.id) if account else None
    return None if account is None else (account, found, source)
