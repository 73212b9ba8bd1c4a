"""The workshop's connections, one model per transport (the YAML `transport:` value): what a
driver connects to, and how often and how patiently it polls."""

from __future__ import annotations

import urllib.parse
from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, SecretStr, model_validator

from agent.config.hosts import HostName
from agent.config.models import Identifier, PositiveSeconds, StrictModel
from agent.config.profile import ProfileProtocol

OPCUA_URL_PATTERN = r"^opc\.tcp://[^/:]+(:\d+)?(/.*)?$"


class ConnectionBase(StrictModel):
    """What every connection has: an id, polling and timeouts. A transport's model says, besides its
    fields, what the checks of a workshop need to know of it (class variables)."""

    # the profiles its devices need: a profile has `tags` (modbus) or `nodes` (opcua)
    protocol: ClassVar[ProfileProtocol]
    # devices on it are told apart by unit id (Modbus); else by their own address (an OPC UA node)
    units_addressed: ClassVar[bool] = True

    id: Identifier
    interval_s: PositiveSeconds = 1.0
    timeout_s: PositiveSeconds = 1.0
    reconnect_max_s: PositiveSeconds = 30.0

    @property
    def endpoint(self) -> str:
        """Where the connection goes, for people: host:port, a serial port, a URL."""
        raise NotImplementedError

    def moved_to(self, host: str, port: int) -> Self:
        """The same connection at another network address (the demo's free loopback ports); a
        connection that has none (a local serial port) stays as it is."""
        del host, port
        return self


class ModbusConnectionBase(ConnectionBase):
    """What every Modbus connection adds: request merging and pacing for quirky devices."""

    protocol: ClassVar[ProfileProtocol] = "modbus"

    max_gap: Annotated[int, Field(ge=0, le=125)] = 8
    request_pause_s: Annotated[float, Field(ge=0, le=10)] | None = Field(
        None, description="silence between requests; default 0 on TCP, 3.5 characters on a serial bus"
    )
    connect_pause_s: Annotated[float, Field(ge=0, le=30)] = Field(
        0.0, description="wait after connecting before the first request (slow serial gateways)"
    )
    close_after_cycle: bool = Field(False, description="disconnect after every cycle (devices that need it)")


class TcpEndpoint(ModbusConnectionBase):
    host: HostName
    port: Annotated[int, Field(ge=1, le=65535)] = 502

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def moved_to(self, host: str, port: int) -> Self:
        return self.model_copy(update={"host": host, "port": port})


class ModbusTcpConnection(TcpEndpoint):
    transport: Literal["modbus-tcp"]


class ModbusRtuOverTcpConnection(TcpEndpoint):
    """A serial-to-Ethernet converter passing RTU frames (with CRC) over a TCP socket."""

    transport: Literal["modbus-rtu-over-tcp"]

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port} (RTU)"


class ModbusRtuConnection(ModbusConnectionBase):
    """An RS-485 bus on a local serial port: one request at a time, shared by every unit on it."""

    transport: Literal["modbus-rtu"]
    serial_port: str = Field(min_length=1, description="e.g. /dev/ttyUSB0 or /dev/serial/by-id/...")
    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8

    @property
    def endpoint(self) -> str:
        return f"{self.serial_port}@{self.baudrate}{self.parity}{self.bytesize}{self.stopbits}"

    @property
    def character_s(self) -> float:
        """One character on the wire: start bit, data bits, parity bit, stop bits."""
        return (1 + self.bytesize + (0 if self.parity == "N" else 1) + self.stopbits) / self.baudrate


SecurityPolicy = Literal["None", "Basic256Sha256", "Aes128Sha256RsaOaep", "Aes256Sha256RsaPss"]
SecurityMode = Literal["None", "Sign", "SignAndEncrypt"]


class OpcUaConnection(ConnectionBase):
    """An OPC UA server. Secure by default: an unencrypted session needs policy and mode None
    written out, and is logged as a warning."""

    protocol: ClassVar[ProfileProtocol] = "opcua"
    units_addressed: ClassVar[bool] = False
    path_fields: ClassVar[tuple[str, ...]] = ("pki_dir", "user_certificate", "user_private_key")

    transport: Literal["opcua"]
    url: str = Field(pattern=OPCUA_URL_PATTERN, description="opc.tcp://host:4840/path")
    timeout_s: PositiveSeconds = 5.0
    security_policy: SecurityPolicy = "Basic256Sha256"
    security_mode: SecurityMode = "SignAndEncrypt"
    username: str | None = None
    password: SecretStr | None = None
    user_certificate: str | None = Field(None, description="X.509 user identity: certificate file (PEM/DER)")
    user_private_key: str | None = Field(None, description="X.509 user identity: its private key file")
    pki_dir: str | None = Field(
        None, description="own/, trusted/, rejected/ certificates; default <agent.state_dir>/pki"
    )
    application_uri: str | None = Field(
        None, description="the agent's OPC UA application URI; default urn:<hostname>:edge-agent:<agent id>"
    )
    keepalive_s: PositiveSeconds = Field(
        5.0, description="a server silent for two of these is taken as gone and the session re-created"
    )
    max_nodes_per_read: Annotated[int, Field(ge=1, le=100_000)] = 1000

    @property
    def endpoint(self) -> str:
        return self.url

    def moved_to(self, host: str, port: int) -> Self:
        path = urllib.parse.urlsplit(self.url).path
        return self.model_copy(update={"url": f"opc.tcp://{host}:{port}{path}"})

    @model_validator(mode="after")
    def _security_is_consistent(self) -> Self:
        if (self.security_policy == "None") != (self.security_mode == "None"):
            raise ValueError(
                "security_policy and security_mode are None together or not at all "
                f"(got policy {self.security_policy}, mode {self.security_mode})"
            )
        if (self.user_certificate is None) != (self.user_private_key is None):
            raise ValueError("user_certificate and user_private_key go together")
        if self.user_certificate is not None and self.username is not None:
            raise ValueError("one user identity: username/password or user_certificate, not both")
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        return self


ModbusConnection = ModbusTcpConnection | ModbusRtuOverTcpConnection | ModbusRtuConnection
# Every transport's model, told apart by `transport:`; each has its driver in DRIVERS
# (agent/drivers/registry.py), and a test holds the two lists equal.
Connection = Annotated[ModbusConnection | OpcUaConnection, Field(discriminator="transport")]
