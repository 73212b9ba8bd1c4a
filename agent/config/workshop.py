"""The workshop file: site, lines, machines, meters, shifts, and its sections for the connections
(agent/config/connections.py) and the outputs (agent/config/outputs.py)."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, field_validator, model_validator

from agent.config.connections import Connection
from agent.config.grid import GridSetting
from agent.config.hosts import HostName
from agent.config.models import IDENTIFIER_PATTERN, DisplayName, Identifier, PositiveSeconds, StrictModel
from agent.config.outputs import OutputsSection
from agent.i18n import DEFAULT_LANGUAGE, languages
from agent.kpi.energy import GBT_2589_KGCE_PER_KWH

WORKSHOP_SCOPE = "workshop"  # a meter that measures the whole workshop (the main meter)
HHMM_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"
MAX_CHECKPOINT_S = 3600.0  # beyond an hour a crash would cost a large part of a shift
HHMM = Annotated[str, Field(pattern=HHMM_PATTERN, description="local time HH:MM")]


class AgentSection(StrictModel):
    path_fields: ClassVar[tuple[str, ...]] = ("state_dir",)

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


MIN_TOKEN_CHARS = 12  # guessed over a plant network at a few hundred tries a second: never


class HealthSection(StrictModel):
    """The local web server: /health (JSON), /metrics (Prometheus), the workshop board (/board) and
    the shift and day reports (/reports). Loopback by default."""

    enabled: bool = True
    host: HostName = Field(
        "127.0.0.1", description="127.0.0.1: this gateway only; 0.0.0.0 or an address: the plant network"
    )
    port: Annotated[int, Field(ge=0, le=65535)] = 9470
    token: Annotated[str, Field(min_length=MIN_TOKEN_CHARS)] | None = Field(
        None,
        description="when set, the board and the reports ask for it: HTTP basic auth (any user name, "
        f"the token as password) or 'Authorization: Bearer <token>'; also as token_file; at least "
        f"{MIN_TOKEN_CHARS} characters",
    )
    board_refresh_s: Annotated[float, Field(ge=1, le=300)] = Field(
        5.0, description="how often the board asks for new figures"
    )


class HistorySection(StrictModel):
    """The records the board and the reports are made of (agent/history/store.py)."""

    path_fields: ClassVar[tuple[str, ...]] = ("path",)

    enabled: bool = True
    path: str | None = Field(None, description="default: history.db in agent.state_dir")
    days: Annotated[float, Field(gt=0, le=3660)] = Field(
        62.0, description="records older than this are deleted (62: this month and the last)"
    )
    max_mb: Annotated[float, Field(gt=0)] = Field(
        256.0, description="bound on the file's data; over it the oldest records go first"
    )


class OutboxSection(StrictModel):
    path_fields: ClassVar[tuple[str, ...]] = ("path",)

    path: str | None = Field(None, description="default: outbox.db in agent.state_dir")
    max_mb: Annotated[float, Field(gt=0)] = Field(256.0, description="bound on stored record bytes")
    max_age_h: Annotated[float, Field(gt=0)] = Field(168.0, description="records older than this are dropped")
    synchronous: Literal["full", "normal"] = Field(
        "full", description="full: every commit survives power loss; normal: survives a process crash"
    )


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
    history: HistorySection = HistorySection()
    outputs: OutputsSection = OutputsSection()
    profiles_dir: str | None = Field(
        None,
        description="a folder of device profiles, relative to this file, searched after the workshop's "
        "devices/ folder and before the profiles shipped with the agent",
    )
