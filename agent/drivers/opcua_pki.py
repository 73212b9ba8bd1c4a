"""The agent's OPC UA certificates: its own application certificate, and which servers it trusts.

    <pki_dir>/own/cert.der, own/key.pem    created on first start (key 0600), renewed when the
                                           application URI or host name no longer match
    <pki_dir>/trusted/                     server (or CA) certificates the plant has approved
    <pki_dir>/rejected/                    servers refused so far, one file per certificate

asyncua does not check a server's certificate unless told to; ServerTrust is the check it is
given: validity period, the application URI against the certificate, and trust (the
certificate itself or its issuer in trusted/). A refused certificate is copied to rejected/
with a message saying how to trust it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto import cert_gen
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from agent.config.connections import OpcUaConnection
from agent.config.workshop import AgentSection
from agent.exceptions import AgentError

log = logging.getLogger(__name__)

SERVER_CHECKS = (
    CertificateValidatorOptions.TIME_RANGE
    | CertificateValidatorOptions.URI
    | CertificateValidatorOptions.TRUSTED
    | CertificateValidatorOptions.REVOKED
    | CertificateValidatorOptions.PEER_SERVER
)


class UntrustedServerError(AgentError):
    """The server's certificate is not trusted (or not valid); the message says what to do."""


def thumbprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA1()).hex()  # noqa: S303 - OPC UA names certificates by SHA-1 thumbprint


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """Files created inside are readable by their owner only (the key, from its first byte)."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


class Pki:
    def __init__(self, directory: Path, application_uri: str) -> None:
        self.directory = directory
        self.application_uri = application_uri
        self.certificate = directory / "own" / "cert.der"
        self.private_key = directory / "own" / "key.pem"
        self.trusted = directory / "trusted"
        self.rejected = directory / "rejected"

    async def ensure_own_certificate(self) -> None:
        for folder in (self.certificate.parent, self.trusted, self.rejected):
            folder.mkdir(parents=True, exist_ok=True)
        self.certificate.parent.chmod(0o700)
        with private_files():
            await cert_gen.setup_self_signed_certificate(
                self.private_key,
                self.certificate,
                self.application_uri,
                socket.gethostname(),
                [ExtendedKeyUsageOID.CLIENT_AUTH],
                {"commonName": f"edge-agent {self.application_uri}"},
            )
        self.private_key.chmod(0o600)

    def server_check(self, url: str) -> ServerTrust:
        return ServerTrust(self, url)


class ServerTrust:
    """The certificate validator asyncua calls when it creates a session."""

    def __init__(self, pki: Pki, url: str) -> None:
        self.pki = pki
        self.url = url

    async def __call__(self, certificate: x509.Certificate, server: ua.ApplicationDescription) -> None:
        store = TrustStore([self.pki.trusted], [])
        try:
            await store.load()
        except ValueError:  # nothing trusted yet: cryptography refuses an empty store
            raise self._refused(
                certificate, server, ServiceError(ua.StatusCodes.BadCertificateUntrusted)
            ) from None
        try:
            await CertificateValidator(SERVER_CHECKS, store).validate(certificate, server)
        except ServiceError as error:
            raise self._refused(certificate, server, error) from error

    def _refused(
        self, certificate: x509.Certificate, server: ua.ApplicationDescription, error: ServiceError
    ) -> UntrustedServerError:
        code = ua.StatusCode(error.code)
        subject = certificate.subject.rfc4514_string()
        if code.value == ua.StatusCodes.BadCertificateUntrusted:
            name = f"{thumbprint(certificate)}.der"
            rejected = self.pki.rejected / name
            rejected.write_bytes(certificate.public_bytes(Encoding.DER))
            return UntrustedServerError(
                f"{self.url}: the server's certificate ({subject}, SHA-1 {thumbprint(certificate)}) is not "
                f"trusted. It was saved as {rejected}. If it is the server's, trust it with: "
                f"mv {rejected} {self.pki.trusted / name}"
            )
        reasons = {
            ua.StatusCodes.BadCertificateTimeInvalid: "is expired or not yet valid",
            ua.StatusCodes.BadCertificateUriInvalid: (
                f"does not name the server's application URI {server.ApplicationUri}"
            ),
            ua.StatusCodes.BadCertificateRevoked: "is revoked",
            ua.StatusCodes.BadCertificateUseNotAllowed: "is not meant for a server",
        }
        reason = reasons.get(code.value, f"was refused ({code.name})")
        return UntrustedServerError(f"{self.url}: the server's certificate ({subject}) {reason}")


def agent_pki(connection: OpcUaConnection, agent: AgentSection) -> Pki:
    """The agent's certificates and trust store for a connection: its `pki_dir`, by default
    <state_dir>/pki, under the application URI urn:<host name>:edge-agent:<agent id>."""
    directory = Path(connection.pki_dir) if connection.pki_dir else Path(agent.state_dir) / "pki"
    uri = connection.application_uri or f"urn:{socket.gethostname()}:edge-agent:{agent.id}"
    return Pki(directory, uri)
