"""The workshop's outputs, one model per sink (its key under `outputs:`), on the settings every
output shares (OutputBase: replay pace, retries)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from agent.config.hosts import HostName
from agent.config.models import PositiveSeconds, StrictModel

URL_PATTERN = r"^https?://"
DEFAULT_RETRY_MAX_S = 30.0  # a failing output is tried again at least this often
# An output on this machine (a file, the demo's view) takes large batches, quickly: one fsync per
# thousand records, a week's backlog of a workshop in seconds.
LOCAL_BATCH_RECORDS = 1000
LOCAL_REPLAY_PER_S = 10_000.0
ReplayRate = Annotated[
    float, Field(gt=0, allow_inf_nan=False, description="records per second when catching up on a backlog")
]


class OutputBase(StrictModel):
    """What every output has: how fast it catches up on a backlog, and how long a failing output
    waits at most between tries (capped, jittered backoff: agent/backoff.py)."""

    replay_per_s: ReplayRate = 1000.0
    reconnect_max_s: PositiveSeconds = DEFAULT_RETRY_MAX_S

    @property
    def batch_records(self) -> int:
        """Records handed to one write: what a failed write sends again."""
        raise NotImplementedError

    @property
    def at_most_once(self) -> bool:
        """Delivered once written, not once acknowledged: records in flight may be lost."""
        return False


class FileOutput(OutputBase):
    path_fields: ClassVar[tuple[str, ...]] = ("path",)

    path: str = Field(description="JSON Lines file the records are appended to; '-' for stdout")
    replay_per_s: ReplayRate = LOCAL_REPLAY_PER_S

    @property
    def batch_records(self) -> int:
        return LOCAL_BATCH_RECORDS


class TlsSettings(StrictModel):
    path_fields: ClassVar[tuple[str, ...]] = ("ca_file", "cert_file", "key_file")

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @model_validator(mode="after")
    def _cert_needs_key(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (client certificate and its key)")
        return self


class RetainSettings(StrictModel):
    """Which records the broker keeps as the current figure of their topic (MQTT retained
    messages), so a dashboard or SCADA that subscribes sees the present at once. Only a current
    figure is ever retained: the open shift so far and a closed shift's final; a day's totals
    share the shift's topic in the isa95 style and are never retained there (README: "Retained
    current figures")."""

    state: bool = Field(True, description="each machine's state")
    oee: bool = Field(True, description="the current shift's OEE of each machine, line and the workshop")
    energy: bool = Field(True, description="the current shift's energy of each machine, line, workshop")
    tags: bool = Field(False, description="raw tag values (publish_tags)")
    crew: bool = Field(False, description="each crew's totals of its last production day")
    delivery: bool = Field(False, description="the agent's delivery record")


class BrokerOutput(OutputBase):
    """An MQTT broker as every MQTT-speaking output reaches it: address, credentials, TLS."""

    host: HostName
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    client_id: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    protocol: Literal["3.1.1", "5"] = "5"
    tls: TlsSettings | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    timeout_s: PositiveSeconds = 10.0


class MqttOutput(BrokerOutput):
    accept_loss: bool = Field(
        False, description="with qos 0 only: accept that records in flight are lost when the path breaks"
    )
    qos: Literal[0, 1, 2] = Field(
        1,
        description="1: the cursor moves on PUBACK (at-least-once); 2: on PUBCOMP; 0 needs accept_loss: "
        "the cursor moves once a record is written to the socket (at-most-once)",
    )
    max_inflight: Annotated[int, Field(ge=1, le=65535)] = Field(
        100, description="QoS 1/2 messages awaiting acknowledgement; what a reconnect may duplicate"
    )
    topic_style: Literal["isa95", "umh"] = Field(
        "isa95",
        description="isa95: <enterprise>/<site>/<area>/<line>/<machine>/<figure> with our JSON; umh: "
        "umh/v1/.../_historian/... with United Manufacturing Hub historian payloads (timestamp_ms)",
    )
    retain: RetainSettings = Field(default_factory=RetainSettings)

    @property
    def batch_records(self) -> int:
        return self.max_inflight  # one write never has more in flight than the broker allows

    @property
    def at_most_once(self) -> bool:
        return self.accept_loss

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


class InfluxOutput(OutputBase):
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
    replay_per_s: ReplayRate = 5000.0

    @property
    def batch_records(self) -> int:
        return self.batch_size

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


# Sparkplug 3.0 (section 4.1.1): group, edge node and host ids are valid UTF-8 without the
# MQTT wildcards and the topic separator; we also refuse white space, which SCADA tag paths mangle.
SPARKPLUG_ID_PATTERN = r"^[^/+#\s]{1,64}$"
SparkplugId = Annotated[str, Field(pattern=SPARKPLUG_ID_PATTERN, description="no '/', '+', '#' or spaces")]


class SparkplugOutput(BrokerOutput):
    """Sparkplug B 3.0: the agent is an edge node, its machines, lines and workshop are devices."""

    group_id: SparkplugId
    edge_node_id: SparkplugId | None = Field(None, description="default: agent.id")
    primary_host_id: SparkplugId | None = Field(
        None, description="births wait until this host application's STATE says online"
    )
    publish_tags: bool = Field(
        False, description="raw tag values as metrics, of the machines whose publish_tags is on"
    )
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = Field(
        100, description="records per acknowledged write: what a broken connection may send twice"
    )

    @property
    def batch_records(self) -> int:
        return self.batch_size


class OutputsSection(StrictModel):
    """One key per output, as SINKS names them (agent/sinks/registry.py; a test holds the two equal)."""

    file: FileOutput | None = None
    mqtt: MqttOutput | None = None
    influxdb: InfluxOutput | None = None
    sparkplug: SparkplugOutput | None = None
