"""An HTTPS Microsoft identity platform + Graph stand-in for tests, with its own test CA.

The CA and certificates are generated with `cryptography` when a test asks for them, so nothing
secret lives in the repository and real msal talks TLS to the fake exactly as to Entra ID.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import time_machine
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from integrations.graph.auth import MsalCredential
from integrations.graph.client import GraphClient
from sandbox.graph_standin import GraphStandin

TENANT = "contoso-test"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
SECRET = "s3cr3t-Value~fake"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
    san: bool = False,
) -> x509.Certificate:
    # OpenSSL checks validity against the operating system's clock, never a test's time travel
    hatch = time_machine.escape_hatch
    now = hatch.datetime.datetime.now(dt.UTC) if hatch.is_travelling() else dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class FakePKI:
    ca_path: Path  # trust this (and only this) to reach the fake
    server_context: ssl.SSLContext
    unrelated_ca_path: Path  # a CA that did not sign the fake's certificate


def make_pki(directory: Path) -> FakePKI:
    ca_key = _key()
    ca = _cert("prescreen-bot test CA", ca_key, _name("prescreen-bot test CA"), ca_key, ca=True)
    server_key = _key()
    server = _cert("localhost", server_key, ca.subject, ca_key, ca=False, san=True)
    other_key = _key()
    other = _cert("unrelated CA", other_key, _name("unrelated CA"), other_key, ca=True)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.pem").write_bytes(_pem_cert(ca))
    (directory / "other-ca.pem").write_bytes(_pem_cert(other))
    (directory / "server.pem").write_bytes(_pem_cert(server) + _pem_key(server_key))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(directory / "server.pem")
    return FakePKI(directory / "ca.pem", ctx, directory / "other-ca.pem")


def make_client_certificate(directory: Path) -> tuple[Path, bytes]:
    """An app-registration certificate: (PEM file with key + certificate, certificate PEM)."""
    key = _key()
    cert = _cert("prescreen-bot app", key, _name("prescreen-bot app"), key, ca=False)
    path = directory / "app-cert.pem"
    path.write_bytes(_pem_key(key) + _pem_cert(cert))
    return path, _pem_cert(cert)


@contextmanager
def https_standin(pki: FakePKI, **kwargs: Any) -> Iterator[GraphStandin]:
    kwargs.setdefault("tenant_id", TENANT)
    kwargs.setdefault("client_id", CLIENT_ID)
    kwargs.setdefault("client_secret", SECRET)
    standin = GraphStandin(**kwargs).start(ssl_context=pki.server_context)
    try:
        yield standin
    finally:
        standin.stop()


def msal_client(
    standin: GraphStandin,
    pki: FakePKI,
    *,
    secret: str | None = SECRET,
    tenant: str = TENANT,
    client_id: str = CLIENT_ID,
    cert_path: Path | None = None,
    sleep: Callable[[float], None] | None = None,
    **options: Any,
) -> GraphClient:
    credential = MsalCredential(
        tenant_id=tenant,
        client_id=client_id,
        client_secret=secret,
        cert_path=str(cert_path) if cert_path else None,
        authority_host=standin.authority_host,
        verify=str(pki.ca_path),
    )
    if sleep is not None:
        options["sleep"] = sleep
    return GraphClient(credential, base_url=standin.graph_url, verify=str(pki.ca_path), **options)
