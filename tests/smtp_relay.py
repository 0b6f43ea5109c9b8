"""A real SMTP server for the mail tests: aiosmtpd on 127.0.0.1, plain, STARTTLS or implicit TLS
with a certificate signed by a test CA (``certificates``), optionally requiring a login, and a
handler that can refuse mails first (``Relay``). The fixtures are registered in tests/conftest.py."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from offline_service.accounts.mail import Security, SmtpConfig

__all__ = [
    "LOGIN",
    "PASSWORD",
    "Certificates",
    "Relay",
    "Server",
    "certificates",
    "free_port",
    "relay_config",
    "smtp_server",
]

LOGIN, PASSWORD = "portal", "relay password 42"


@dataclass
class Relay:
    """What the server received, and how many DATA commands it should refuse first."""

    received: list[EmailMessage] = field(default_factory=list)
    refuse: int = 0  # refuse this many mails with a 4xx first
    always: str | None = None  # refuse every mail with this answer
    tried: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.tried += 1
        if self.always is not None:
            return self.always
        if self.refuse > 0:
            self.refuse -= 1
            return "451 4.3.0 try again later"
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(parsed)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Certificates:
    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A test CA and a server certificate it signed, for localhost and 127.0.0.1."""
    root = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "offline-service test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    found = Certificates(root / "ca.pem", root / "cert.pem", root / "key.pem")
    found.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    found.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    found.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return found


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        LOGIN.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


Server = Callable[..., tuple[Relay, int]]


@pytest.fixture
def smtp_server() -> Iterator[Server]:
    """Starts aiosmtpd servers on 127.0.0.1: ``tls`` "starttls" (required before anything else),
    "tls" (implicit) or None; ``auth``: a login is required."""
    started: list[Controller] = []

    def start(
        relay: Relay | None = None,
        *,
        tls: str | None = None,
        certs: Certificates | None = None,
        auth: bool = False,
    ) -> tuple[Relay, int]:
        relay = relay or Relay()
        port = free_port()
        kwargs: dict[str, Any] = {}
        if tls == "starttls":
            assert certs is not None
            kwargs.update(tls_context=certs.server_context(), require_starttls=True)
        if tls == "tls":
            assert certs is not None
            kwargs.update(ssl_context=certs.server_context())
        if auth:
            kwargs.update(authenticator=_authenticator, auth_required=True, auth_require_tls=tls is not None)
        controller = Controller(relay, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        started.append(controller)
        return relay, port

    yield start
    for controller in started:
        controller.stop()


def relay_config(port: int, **kw: Any) -> SmtpConfig:
    kw.setdefault("security", Security.NONE)
    return SmtpConfig(host="127.0.0.1", port=port, connect_timeout=5, timeout=5, **kw)
