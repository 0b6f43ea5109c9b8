"""Outgoing mail behind one small interface, so that nothing needs an SMTP server.

A ``Mailer`` sends an ``email.message.EmailMessage``. The default, ``FileMailer``, writes each mail
as an RFC 5322 ``.eml`` file (mode 0600, in a directory of mode 0700) and logs one line saying so.
Another sender (SMTP, an HTTP mail service) only has to implement ``send``.

Mails can carry secrets, such as a set-password link: the log line names the recipient, the subject
and the file, never the body.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import logging
import os
import secrets
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from offline_service._files import write_atomic
from offline_service.errors import Code, OfflineServiceError

__all__ = ["MAIL_DIR", "FileMailer", "Mailer"]

MAIL_DIR = "mail"  # the default FileMailer's directory, in the data directory

log = logging.getLogger("offline_service.accounts.mail")


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` or raise ``OfflineServiceError``; never log its body."""
        ...


class FileMailer:
    """Writes every mail to ``directory`` as ``<UTC time>-<random>.eml`` with CRLF line ends, as an
    SMTP server would receive it. Open one with any mail program, or read it with ``email``."""

    def __init__(self, directory: str | os.PathLike[str], *, clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self._clock = clock

    @classmethod
    def in_data_dir(
        cls, data_dir: str | os.PathLike[str], *, clock: Callable[[], float] = time.time
    ) -> FileMailer:
        """The default sender: mails in ``<data_dir>/mail``."""
        return cls(Path(data_dir) / MAIL_DIR, clock=clock)

    def send(self, message: EmailMessage) -> None:
        for header in ("To", "From", "Subject"):
            if not message[header]:
                raise OfflineServiceError(Code.INVALID_ARGUMENT, f"a mail needs a {header} header")
        stamp = dt.datetime.fromtimestamp(self._clock(), dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        path = self.directory / f"{stamp}-{secrets.token_hex(6)}.eml"
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.directory, 0o700)  # also when it existed: mails may hold secrets
        except OSError as exc:
            raise OfflineServiceError(
                Code.STORAGE_ERROR, f"cannot use the mail directory {self.directory}: {exc.strerror or exc}"
            ) from None
        write_atomic(path, message.as_bytes(policy=email.policy.SMTP), mode=0o600)
        log.info("mail to %s, subject %r, written to %s", message["To"], message["Subject"], path)
