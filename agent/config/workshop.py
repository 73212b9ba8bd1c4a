"""The workshop file: site, lines, machines, meters, connections, shifts, outputs."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from agent.config.grid import GridSetting
from agent.config.models import IDENTIFIER_PATTERN, DisplayName, Identifier, PositiveSeconds, StrictModel
from agent.i18n import DEFAULT_LANGUAGE, languages
from agent.kpi.energy import GBT_2589_KGCE_PER_KWH

WORKSHOP_SCOPE = "workshop"  # a meter that measures the whole workshop (the main meter)
HHMM_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"
URL_PATTERN = r"^https?://"
MAX_CHECKPOINT_S = 3600.0  # beyond an hour a crash would cost a large part of a shift
OPCUA_URL_PATTERN = r"^opc\.tcp://[^/:]+(:\d+)?(/.*)?$"
HHMM = Annotated[str, Field(pattern=HHMM_PATTERN, description="local time HH:MM")]


class AgentSection(StrictModel):
    id: Identifier
    state_dir: str = Field("var/edge-agent", description="outbox, sequence numbers, certificates")


GBT_2589_SOURCE = "GB/T 2589-2020, Appendix A: electricity, equivalent value (当量值), 0.1229 kgce/kWh"


class StandardCoal(StrictModel):
    """Standard coal equivalent of electricity (kgce), for 单位产品综合能耗 per GB/T 2589-2020."""

    kgce_per_kwh: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)] = GBT_2589_KGCE_PER_KWH
    source: str = Field(GBT_2589_SOURCE, min_length=1, description="where the coefficient comes from")

    @model_validator(mode="after")
    def _own_coefficient_has_a_source(self) -> Self:
        if "kgce_per_kwh" in self.model_fields_set and "source" not in self.model_fields_set:
            raise ValueError(
                "a coefficient of your own needs its source (e.g. the equal value (等价值) of the year's "
                f"coal consumption per kWh supplied, with the publication); the default is {GBT_2589_SOURCE}"
            )
        return self


class SiteSection(StrictModel):
    enterprise: Identifier
    site: Identifier
    area: Identifier
    timezone: str = "Asia/Shanghai"
    grid: GridSetting | None = Field(
        None, description="grid emission factor: a shipped factor's id, or your own with its provenance"
    )
    standard_coal: StandardCoal = StandardCoal()
    language: str = Field(
        DEFAULT_LANGUAGE,
        description="the language of the terminal view, the tables and the messages people read "
        "(en, zh-CN); never of what the agent publishes",
    )

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        known = languages()
        if value not in known:
            raise ValueError(f"'{value}' is not one of {', '.join(repr(k) for k in known)}")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (IANA name, e.g. Asia/Shanghai)") from None
        return value


class ConnectionBase(StrictModel):
    """What every connection has: an id, polling and timeouts."""

    id: Identifier
    interval_s: PositiveSeconds = 1.0
    timeout_s: PositiveSeconds = 1.0
    reconnect_max_s: PositiveSeconds = 30.0


class ModbusConnectionBase(ConnectionBase):
    """What every Modbus connection adds: request merging and pacing for quirky devices."""

    max_gap: Annotated[int, Field(ge=0, le=125)] = 8
    request_pause_s: Annotated[float, Field(ge=0, le=10)] | None = Field(
        None, description="silence between requests; default 0 on TCP, 3.5 characters on a serial bus"
    )
    connect_pause_s: Annotated[float, Field(ge=0, le=30)] = Field(
        0.0, description="wait after connecting before the first request (slow serial gateways)"
    )
    close_after_cycle: bool = Field(False, description="disconnect after every cycle (devices that need it)")


class TcpEndpoint(ModbusConnectionBase):
    host: str = Field(min_length=1)
    port: Annotated[int, Field(ge=1, le=65535)] = 502

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"


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
Connection = Annotated[ModbusConnection | OpcUaConnection, Field(discriminator="transport")]


class LineSpec(StrictModel):
    id: Identifier
    name: DisplayName = ""
    kind: Literal["cell", "serial"] = Field(
        "cell", description="serial: parts flow through every machine; the line's OEE is its constraint's"
    )
    constraint: Identifier | None = Field(
        None, description="the serial line's bottleneck machine; default: the longest ideal cycle"
    )


# Accuracy classes of active-energy meters: IEC 62053-21/22 (GB/T 17215.321/322) and the
# classes A to D of EN 50470-3 (GB/T 17215.211); GB 17167-2006 table 3 asks for class 1.0 or
# better on electricity supplied to a plant, 2.0 or better on its equipment.
AccuracyClass = Literal["0.2S", "0.5S", "0.2", "0.5", "1", "2", "3", "A", "B", "C", "D"]
CT_RATIO_PATTERN = r"^\d+(\.\d+)?/\d+(\.\d+)?$"


class MeterKeeping(StrictModel):
    """What GB 17167 asks a plant to keep for each energy meter; published with its figures.
    Record-keeping only: the kWh register's scale in the profile gives primary kWh."""

    accuracy_class: AccuracyClass | None = None
    ct_ratio: str | None = Field(
        None, pattern=CT_RATIO_PATTERN, description="current transformer, primary/secondary A, e.g. 200/5"
    )
    calibration_due: dt.date | None = Field(None, description="next calibration due; warned daily after it")

    @field_validator("accuracy_class", mode="before")
    @classmethod
    def _class_as_written(cls, value: object) -> object:
        """`accuracy_class: 1` or `0.5` in YAML is a number; the classes are names."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value
        return str(int(value)) if float(value).is_integer() else str(value)


class MachineSpec(StrictModel):
    id: Identifier
    line: Identifier
    kind: Literal["grinder", "superfinisher", "assembly", "sorter", "other"]
    profile: str
    connection: Identifier
    unit: Annotated[int, Field(ge=0, le=255)] = 1
    node: str | None = Field(
        None, description="OPC UA: the machine's object, e.g. nsu=urn:plant;s=Machines/grinder-07"
    )
    ideal_cycle_s: PositiveSeconds
    ideal_cycle_by_variant: dict[int | str, PositiveSeconds] = Field(
        default_factory=dict, description="ideal cycle per product variant (the profile's variant tag)"
    )
    name: DisplayName = ""
    quality_from: Identifier | None = Field(
        None, description="machine (e.g. a downstream sorter) whose good/NG counts are this one's"
    )
    publish_tags: bool = False
    energy_meter: MeterKeeping | None = Field(
        None, description="the machine's own energy measurement (its profile's energy section): class, CT"
    )


class MeterSpec(MeterKeeping):
    id: Identifier
    profile: str
    connection: Identifier
    unit: Annotated[int, Field(ge=0, le=255)] = 1
    node: str | None = Field(None, description="OPC UA: the meter's object node")
    measures: str = Field(description="a machine id, or 'workshop' for the main meter")


class BreakSpec(StrictModel):
    name: DisplayName = "break"
    start: HHMM
    end: HHMM


class ShiftSpec(StrictModel):
    """A shift: an ASCII `id` for records, topics and tags, and a `name` people read (any
    language). The older form, an ASCII `name` alone, is both: `{name: day}` is `{id: day, name: day}`."""

    id: Identifier | None = Field(None, description="in records and InfluxDB tags; default: the name")
    name: DisplayName | None = None
    start: HHMM
    end: HHMM = Field(description="may be earlier than start: the shift crosses midnight")
    breaks: tuple[BreakSpec, ...] = ()

    @model_validator(mode="after")
    def _has_an_id(self) -> Self:
        if self.id is None and self.name is None:
            raise ValueError("a shift needs an id (and may have a name)")
        if self.id is None and not re.fullmatch(IDENTIFIER_PATTERN, self.name or ""):
            raise ValueError(
                f"the shift name '{self.name}' is not an id: add an ASCII id for records and InfluxDB "
                "(lower-case letters, digits, '-', '_' or '.'), e.g. {id: early, name: 早班}"
            )
        return self

    @property
    def key(self) -> str:
        """The shift's id in records: `id`, or the name when it is one (the older form)."""
        return self.id or self.name or ""

    @property
    def display(self) -> str:
        return self.name or self.key


class CrewSpec(StrictModel):
    id: Identifier
    name: DisplayName = ""


class RotationSpec(StrictModel):
    """Which crew works which shift, repeating from `anchor`: one entry per calendar day of the
    cycle, mapping each shift's id to the crew on it (four crews on three shifts: an 8-day cycle)."""

    anchor: dt.date = Field(description="the date the first entry of the pattern applies to")
    pattern: tuple[dict[Identifier, Identifier], ...] = Field(min_length=1, max_length=366)


class MaintenanceWindow(StrictModel):
    name: str = "planned maintenance"
    start: dt.datetime = Field(description="local date and time, e.g. 2026-12-05 08:00")
    end: dt.datetime

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("give local times without an offset: the site's time zone applies")
        return self


class CalendarSection(StrictModel):
    shifts: tuple[ShiftSpec, ...] = Field(min_length=1)
    working_weekdays: tuple[Annotated[int, Field(ge=1, le=7)], ...] = (1, 2, 3, 4, 5, 6, 7)
    holidays: str | None = Field(
        None,
        description="statutory holidays and make-up working days shipped with the agent: cn (China, "
        "the State Council's yearly notice); days_off and working_days below override single dates",
    )
    days_off: tuple[dt.date, ...] = Field((), description="no shifts on these dates, whatever else applies")
    working_days: tuple[dt.date, ...] = Field(
        (), description="the normal shifts on these dates, whatever else applies (a holiday worked)"
    )
    crews: tuple[CrewSpec, ...] = ()
    rotation: RotationSpec | None = None
    maintenance: tuple[MaintenanceWindow, ...] = Field(
        (), description="planned maintenance: planned stops inside shifts, excluded from planned time"
    )


class KpiSection(StrictModel):
    publish_interval_s: PositiveSeconds = 60.0
    offline_after_s: PositiveSeconds = Field(
        10.0, description="no good sample for this long and the machine is offline"
    )
    micro_stop_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        0.0, description="idle/fault stops between production this short or shorter are micro-stops; 0: off"
    )
    checkpoint_s: Annotated[float, Field(gt=0, le=MAX_CHECKPOINT_S, allow_inf_nan=False)] = Field(
        5.0,
        description="the KPI state is saved with its records at most this often, and at every stop: "
        "after a crash the time since the last save is offline",
    )
    micro_stop_loss: Literal["availability", "performance"] = Field(
        "availability",
        description="availability: micro-stops stay downtime (ISO 22400); performance: counted as "
        "running time, so they lower performance (Nakajima's minor stops)",
    )


class HealthSection(StrictModel):
    """The local health endpoint: /health (JSON) and /metrics (Prometheus). Loopback by default."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 9470


class OutboxSection(StrictModel):
    path: str | None = Field(None, description="default: outbox.db in agent.state_dir")
    max_mb: Annotated[float, Field(gt=0)] = Field(256.0, description="bound on stored record bytes")
    max_age_h: Annotated[float, Field(gt=0)] = Field(168.0, description="records older than this are dropped")
    synchronous: Literal["full", "normal"] = Field(
        "full", description="full: every commit survives power loss; normal: survives a process crash"
    )


class FileOutput(StrictModel):
    path: str = Field(description="JSON Lines file the records are appended to; '-' for stdout")


class TlsSettings(StrictModel):
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @model_validator(mode="after")
    def _cert_needs_key(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (client certificate and its key)")
        return self


class MqttOutput(StrictModel):
    host: str = Field(min_length=1)
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    client_id: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    accept_loss: bool = Field(
        False, description="with qos 0 only: accept that records in flight are lost when the path breaks"
    )
    qos: Literal[0, 1, 2] = Field(
        1,
        description="1: the cursor moves on PUBACK (at-least-once); 2: on PUBCOMP; 0 needs accept_loss: "
        "the cursor moves once a record is written to the socket (at-most-once)",
    )
    protocol: Literal["3.1.1", "5"] = "5"
    tls: TlsSettings | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    max_inflight: Annotated[int, Field(ge=1, le=65535)] = Field(
        100, description="QoS 1/2 messages awaiting acknowledgement; what a reconnect may duplicate"
    )
    replay_per_s: Annotated[float, Field(gt=0)] = Field(
        1000.0, description="records per second when catching up on a backlog"
    )
    timeout_s: PositiveSeconds = 10.0
    reconnect_max_s: PositiveSeconds = 30.0

    @field_validator("qos")
    @classmethod
    def _qos_0_only_with_accept_loss(cls, qos: int, info: ValidationInfo) -> int:
        """QoS 0 has no acknowledgement: a record written to the socket would count as delivered,
        and an outage would lose it while the outbox cursor says delivered. Only said out loud."""
        accept_loss = info.data.get("accept_loss")
        if qos == 0 and accept_loss is False:
            raise ValueError(
                "qos 0 has no acknowledgement: records would count as delivered once written to the "
                "socket and be lost when the connection breaks; use qos 1 (at-least-once), or add "
                "accept_loss: true to accept losing them"
            )
        if qos != 0 and accept_loss is True:
            raise ValueError(
                f"accept_loss: true applies to qos 0 only; with qos {qos} every record waits for the "
                "broker's acknowledgement"
            )
        return qos


class InfluxOutput(StrictModel):
    """`api: v2` writes to /api/v2/write (org, bucket, token): InfluxDB 2.x, 3.x, VictoriaMetrics.
    `api: v1` writes to /write (database, retention policy, username/password or token): InfluxDB
    1.x, and the v1 compatibility API of 2.x (through a DBRP mapping) and 3.x."""

    url: str = Field(pattern=URL_PATTERN)
    api: Literal["v2", "v1"] = "v2"
    org: str | None = Field(None, min_length=1, description="api: v2")
    bucket: str | None = Field(None, min_length=1, description="api: v2")
    database: str | None = Field(None, min_length=1, description="api: v1")
    retention_policy: str | None = Field(None, min_length=1, description="api: v1; default: the database's")
    username: str | None = Field(None, min_length=1, description="api: v1, with password")
    password: SecretStr | None = None
    token: SecretStr | None = None
    timeout_s: PositiveSeconds = 10.0
    gzip: bool = True
    batch_size: Annotated[int, Field(ge=1, le=50_000)] = 5000
    replay_per_s: Annotated[float, Field(gt=0)] = 5000.0
    reconnect_max_s: PositiveSeconds = 30.0

    @model_validator(mode="after")
    def _settings_of_the_api(self) -> Self:
        v1_only = ("database", "retention_policy", "username", "password")
        given = [key for key in ("org", "bucket", *v1_only) if getattr(self, key) is not None]
        if self.api == "v2":
            missing = [key for key in ("org", "bucket") if getattr(self, key) is None]
            if missing:
                raise ValueError(f"api: v2 needs {' and '.join(missing)} (api: v1 writes to a database)")
            wrong = [key for key in given if key in v1_only]
            if wrong:
                raise ValueError(f"{', '.join(wrong)}: for api: v1 only; api: v2 takes org, bucket and token")
            return self
        if self.database is None:
            raise ValueError("api: v1 needs a database (on InfluxDB 2.x: the database of a DBRP mapping)")
        wrong = [key for key in given if key in ("org", "bucket")]
        if wrong:
            raise ValueError(
                f"{', '.join(wrong)}: for api: v2 only; api: v1 takes database and retention_policy"
            )
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if self.username is not None and self.token is not None:
            raise ValueError("one credential: username/password or token, not both")
        return self


class OutputsSection(StrictModel):
    file: FileOutput | None = None
    mqtt: MqttOutput | None = None
    influxdb: InfluxOutput | None = None


class Workshop(StrictModel):
    name: DisplayName = Field("", description="the workshop's name as people say it, e.g. 磨加工车间")
    agent: AgentSection
    site: SiteSection
    connections: tuple[Connection, ...] = Field(min_length=1)
    lines: tuple[LineSpec, ...] = Field(min_length=1)
    machines: tuple[MachineSpec, ...] = Field(min_length=1)
    meters: tuple[MeterSpec, ...] = ()
    calendar: CalendarSection
    kpi: KpiSection = KpiSection()
    outbox: OutboxSection = OutboxSection()
    health: HealthSection = HealthSection()
    outputs: OutputsSection = OutputsSection()
    profiles_dir: str | None = Field(
        None,
        description="a folder of device profiles, relative to this file, searched after the workshop's "
        "devices/ folder and before the profiles shipped with the agent",
    )
