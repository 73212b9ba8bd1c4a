"""Real servers for integration tests, each on a free loopback port in a temporary directory:
a private Mosquitto (for outages, TLS, passwords), VictoriaMetrics (InfluxDB v2 write API) and
InfluxDB 1.x (Debian's influxd: the v1 /write API and InfluxQL, with users and privileges)."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.conftest import free_port


def wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")


@dataclass
class Mosquitto:
    """`mosquitto -c` with a generated config; stop() and start() simulate an outage."""

    directory: Path
    port: int = field(default_factory=free_port)
    extra: str = ""
    process: subprocess.Popen[bytes] | None = None

    def config(self) -> Path:
        path = self.directory / "mosquitto.conf"
        path.write_text(
            # started as root, mosquitto would switch to its own user, who cannot read this test's
            # temporary files; `user` only applies when started as root
            "user root\n"
            f"listener {self.port} 127.0.0.1\n"
            f"persistence true\npersistence_location {self.directory}/\n"
            f"log_dest file {self.directory}/mosquitto.log\nlog_type all\n"
            + (self.extra or "allow_anonymous true\n"),
            encoding="utf-8",
        )
        return path

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config())], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # saves its persistence file
            self.process.wait(timeout=10)
        self.process = None

    def log(self) -> str:
        path = self.directory / "mosquitto.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


@dataclass
class VictoriaMetrics:
    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("victoria-metrics")
        if binary is None:
            raise RuntimeError("victoria-metrics is not installed: `make test` installs it (Debian package)")
        self.process = subprocess.Popen(
            [
                binary,
                f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.directory}",
                "-retentionPeriod=100y",
                "-search.latencyOffset=0s",
                "-search.disableCache",  # tests query again and again: never answer from a stale cache
                "-loggerLevel=ERROR",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def export_when(self, match: str, samples: int, timeout_s: float = 15.0) -> list[dict[str, Any]]:
        """Export once `samples` distinct samples are searchable (fresh writes take about a second)."""
        deadline = time.monotonic() + timeout_s
        series = self.export(match)
        while _count_samples(series) < samples and time.monotonic() < deadline:
            time.sleep(0.2)
            series = self.export(match)
        return series

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=15)
        self.process = None

    def export(self, match: str) -> list[dict[str, Any]]:
        """Every stored sample of the series matching `match`, through VictoriaMetrics' export API."""
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10).read()  # noqa: S310 - loopback
        query = urllib.parse.urlencode({"match[]": match, "start": "0"})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=10) as answer:  # noqa: S310
            return [json.loads(line) for line in answer.read().decode().splitlines() if line]


class InfluxQueryError(Exception):
    """InfluxDB answered a query with an error (the text is InfluxDB's own)."""


@dataclass
class InfluxDB1:
    """`influxd run` with its meta, data and WAL directories in `directory` and authentication
    on: the first user (`admin`) is created without credentials, as InfluxDB allows."""

    directory: Path
    port: int = field(default_factory=free_port)
    rpc_port: int = field(default_factory=free_port)  # backup/restore service; influxd always binds it
    admin: tuple[str, str] = ("admin", "admin-secret")
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> Path:
        path = self.directory / "influxdb.conf"
        path.write_text(
            "reporting-disabled = true\n"
            f'bind-address = "127.0.0.1:{self.rpc_port}"\n'
            f'[meta]\n  dir = "{self.directory}/meta"\n'
            f'[data]\n  dir = "{self.directory}/data"\n  wal-dir = "{self.directory}/wal"\n'
            "  query-log-enabled = false\n"
            "[monitor]\n  store-enabled = false\n"
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  auth-enabled = true\n'
            "  log-enabled = false\n  pprof-enabled = false\n"
            "[continuous_queries]\n  enabled = false\n"
            '[logging]\n  level = "warn"\n  suppress-logo = true\n',
            encoding="utf-8",
        )
        return path

    def start(self) -> None:
        binary = shutil.which("influxd")
        if binary is None:
            raise RuntimeError("influxd is not installed: `make test` installs it (Debian package influxdb)")
        first_start = not (self.directory / "meta").exists()
        with (self.directory / "influxd.log").open("ab") as log:
            self.process = subprocess.Popen(
                [binary, "run", "-config", str(self.config())], stdout=log, stderr=log
            )
        wait_for_port(self.port, timeout_s=30.0)
        if first_start:
            name, password = self.admin
            self.execute(f"CREATE USER \"{name}\" WITH PASSWORD '{password}' WITH ALL PRIVILEGES", auth=None)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=15)
        self.process = None

    def execute(
        self,
        statement: str,
        *,
        database: str | None = None,
        auth: tuple[str, str] | Literal["admin"] | None = "admin",
    ) -> list[dict[str, Any]]:
        """One InfluxQL statement through /query (POST, as statements that change things need);
        its results, or InfluxQueryError with InfluxDB's message. `auth`: a (user, password) pair,
        the admin's, or None for no credentials."""
        params = {"q": statement, "epoch": "ms"}
        if database is not None:
            params["db"] = database
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{self.url}/query", data=urllib.parse.urlencode(params).encode(), method="POST"
        )
        credentials = self.admin if auth == "admin" else auth
        if credentials is not None:
            basic = base64.b64encode(":".join(credentials).encode()).decode()
            request.add_header("Authorization", f"Basic {basic}")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
                body = json.loads(answer.read())
        except urllib.error.HTTPError as error:
            raise InfluxQueryError(f"HTTP {error.code}: {error.read().decode(errors='replace')}") from error
        results: list[dict[str, Any]] = body.get("results", [])
        errors = [r["error"] for r in results if "error" in r]
        if "error" in body or errors:
            raise InfluxQueryError(body.get("error") or errors[0])
        return results

    def write(self, lines: str, database: str) -> None:
        """Line protocol (from influxdb-client's Point) written as the admin, precision ms."""
        query = urllib.parse.urlencode({"db": database, "precision": "ms"})
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{self.url}/write?{query}", data=lines.encode(), method="POST"
        )
        basic = base64.b64encode(":".join(self.admin).encode()).decode()
        request.add_header("Authorization", f"Basic {basic}")
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
            assert answer.status == 204

    def query(
        self, statement: str, database: str, auth: tuple[str, str] | Literal["admin"] = "admin"
    ) -> list[dict[str, Any]]:
        """The series of one query's answer (an empty list when nothing matched)."""
        [result] = self.execute(statement, database=database, auth=auth)
        series: list[dict[str, Any]] = result.get("series", [])
        return series


@dataclass(frozen=True)
class Credential:
    cert: Path
    key: Path


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write(directory: Path, name: str, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> Credential:
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Credential(cert_path, key_path)


def _count_samples(series: list[dict[str, Any]]) -> int:
    """Distinct (series, timestamp) pairs: a batch sent twice (at-least-once) is stored twice."""
    return len({(json.dumps(s["metric"], sort_keys=True), ts) for s in series for ts in s["timestamps"]})


def certificate_authority(directory: Path, name: str) -> Credential:
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
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
        .sign(key, hashes.SHA256())
    )
    return _write(directory, name, cert, key)


def signed_certificate(
    directory: Path,
    name: str,
    ca: Credential,
    *,
    dns: str = "localhost",
    expired: bool = False,
    client: bool = False,
) -> Credential:
    """A leaf certificate signed by `ca`, for `dns` (and 127.0.0.1 when dns is localhost)."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    key = _key()
    now = dt.datetime.now(dt.UTC)
    valid = (
        (now - dt.timedelta(days=60), now - dt.timedelta(days=30))
        if expired
        else (now - dt.timedelta(days=1), now + dt.timedelta(days=30))
    )
    names: list[x509.GeneralName] = [x509.DNSName(dns)]
    if dns == "localhost":
        names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return _write(directory, name, cert, key)
