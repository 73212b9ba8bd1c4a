"""Device profiles: the tag map and state rules of one machine or meter model."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator

from agent.config.models import PositiveSeconds, StrictModel
from agent.kpi.states import MACHINE_REPORTED_STATES, MachineState

MODBUS_MAX_REGISTERS_PER_READ = 125  # Modbus Application Protocol v1.1b3, 6.3 / 6.4
MODBUS_MAX_BITS_PER_READ = 2000  # Modbus Application Protocol v1.1b3, 6.1 / 6.2
MODBUS_ADDRESS_SPACE = 65536
# How a profile addresses its values: Modbus registers (`tags`) or OPC UA variables (`nodes`).
ProfileProtocol = Literal["modbus", "opcua"]


class Table(StrEnum):
    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"
    HOLDING = "holding"
    INPUT = "input"

    @property
    def is_bit_table(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE_INPUT)


class DataType(StrEnum):
    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"  # `length` registers, two characters each
    BCD16 = "bcd16"  # 4 decimal digits, one per nibble (older meters)
    BCD32 = "bcd32"  # 8 decimal digits in two registers

    @property
    def registers(self) -> int:
        return REGISTERS_PER_TYPE[self]


REGISTERS_PER_TYPE = {
    DataType.BOOL: 1,
    DataType.INT16: 1,
    DataType.UINT16: 1,
    DataType.INT32: 2,
    DataType.UINT32: 2,
    DataType.INT64: 4,
    DataType.UINT64: 4,
    DataType.FLOAT32: 2,
    DataType.FLOAT64: 4,
    DataType.STRING: 1,  # per register; the tag's `length` says how many
    DataType.BCD16: 1,
    DataType.BCD32: 2,
}
BCD_MODULUS = {DataType.BCD16: 10**4, DataType.BCD32: 10**8}  # 4 and 8 decimal digits
INTEGER_TYPES = frozenset(
    {
        DataType.INT16,
        DataType.UINT16,
        DataType.INT32,
        DataType.UINT32,
        DataType.INT64,
        DataType.UINT64,
        DataType.BCD16,
        DataType.BCD32,
    }
)


class ByteOrder(StrEnum):
    """Order of the value's bytes on the wire, A being the most significant byte.

    ABCD is Modbus's big-endian default; CDAB swaps words (common on meters), BADC swaps the
    bytes inside each register, DCBA is fully little-endian. For 16-bit values only whether the
    bytes inside the register are swapped matters (ABCD = CDAB, BADC = DCBA).
    """

    ABCD = "ABCD"
    CDAB = "CDAB"
    BADC = "BADC"
    DCBA = "DCBA"

    @property
    def words_swapped(self) -> bool:
        return self in (ByteOrder.CDAB, ByteOrder.DCBA)

    @property
    def bytes_swapped(self) -> bool:
        return self in (ByteOrder.BADC, ByteOrder.DCBA)


class TagSpec(StrictModel):
    table: Table
    address: Annotated[int, Field(ge=0, le=MODBUS_ADDRESS_SPACE)]
    type: DataType = DataType.UINT16
    bit: Annotated[int, Field(ge=0, le=15)] | None = None
    order: ByteOrder = ByteOrder.ABCD
    scale: Annotated[float, Field(allow_inf_nan=False)] = 1.0
    offset: Annotated[float, Field(allow_inf_nan=False)] = 0.0
    unit: str | None = None
    description: str = ""
    length: Annotated[int, Field(ge=1, le=MODBUS_MAX_REGISTERS_PER_READ)] | None = Field(
        None, description="registers of a string tag"
    )
    values: dict[int, str] | None = Field(None, description="value map: register value -> name (enum)")
    interval_s: PositiveSeconds | None = Field(
        None, description="read this tag this often instead of every cycle (slow energy counters)"
    )

    @model_validator(mode="after")
    def _lengths_and_maps_fit(self) -> Self:
        if (self.type is DataType.STRING) != (self.length is not None):
            raise ValueError("'length' (registers) goes with type string, and only with it")
        if self.values is not None and self.type not in INTEGER_TYPES:
            raise ValueError("a value map ('values') needs an integer type")
        return self

    @model_validator(mode="after")
    def _bits_and_types_agree(self) -> Self:
        if self.table.is_bit_table and self.type is not DataType.BOOL:
            raise ValueError(f"a {self.table.value} holds single bits: type must be bool")
        if self.bit is not None and (self.table.is_bit_table or self.type is not DataType.BOOL):
            raise ValueError(
                "'bit' picks one bit out of a register: use it with type bool on a holding or input register"
            )
        if self.type is DataType.BOOL and not self.table.is_bit_table and self.bit is None:
            raise ValueError("a bool out of a register needs 'bit' (0-15)")
        return self

    @property
    def wraps_at(self) -> float | None:
        """Where a counter register wraps, in engineering units (after scale): an unsigned one at
        2^bits, a BCD one where its decimal digits run out (9999 -> 0 on a bcd16)."""
        if self.type in (DataType.UINT16, DataType.UINT32, DataType.UINT64):
            return float(2 ** (16 * self.type.registers)) * abs(self.scale)
        if self.type in BCD_MODULUS:
            return float(BCD_MODULUS[self.type]) * abs(self.scale)
        return None

    @property
    def width(self) -> int:
        """Registers (or bits, for coil/discrete tables) this tag occupies."""
        if self.table.is_bit_table:
            return 1
        return self.length if self.length is not None else self.type.registers


class NodeMode(StrEnum):
    SUBSCRIBE = "subscribe"  # the server reports changes (data change monitored items)
    POLL = "poll"  # read every cycle in one Read call with the device's other polled nodes


class NodeSpec(StrictModel):
    """An OPC UA variable. `node` is absolute (ns=2;s=..., i=2258, nsu=<uri>;s=...); `path` is a
    browse path from the device's object, segments `alias:Name` with aliases from `namespaces`
    (a bare name is namespace 0)."""

    node: str | None = None
    path: str | None = None
    mode: NodeMode | None = Field(None, description="default: the profile's opcua.mode")
    sampling_interval_s: Annotated[float, Field(ge=0, le=3600)] | None = None
    deadband: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = Field(
        None, description="absolute deadband for subscribed numbers"
    )
    scale: Annotated[float, Field(allow_inf_nan=False)] = 1.0
    offset: Annotated[float, Field(allow_inf_nan=False)] = 0.0
    unit: str | None = None
    description: str = ""
    values: dict[int, str] | None = Field(None, description="value map for enumerations")
    rollover: Annotated[float, Field(gt=0)] | None = Field(None, description="counter rollover value")

    @property
    def wraps_at(self) -> float | None:
        """Where a counter wraps: the server types its values, so whatever the profile says."""
        return self.rollover

    @model_validator(mode="after")
    def _one_address(self) -> Self:
        if (self.node is None) == (self.path is None):
            raise ValueError("give exactly one of 'node' (absolute node id) and 'path' (browse path)")
        return self


class OpcUaDefaults(StrictModel):
    mode: NodeMode = NodeMode.SUBSCRIBE
    publishing_interval_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    sampling_interval_s: Annotated[float, Field(ge=0, le=3600)] = 0.5
    queue_size: Annotated[int, Field(ge=1, le=10_000)] = 10
    namespaces: dict[str, str] = Field(
        default_factory=dict, description="alias -> namespace URI, for browse paths and nsu-free ids"
    )


AlarmText = str | dict[str, str]


class StateRuleSpec(StrictModel):
    when: str | None = Field(None, description="expression over tag names; omit for the default")
    state: MachineState
    reason: str | None = Field(None, description="text with {tag} placeholders")

    @model_validator(mode="after")
    def _machine_reported(self) -> Self:
        if self.state not in MACHINE_REPORTED_STATES:
            allowed = ", ".join(s.value for s in MACHINE_REPORTED_STATES)
            raise ValueError(
                f"state '{self.state.value}' comes from the shift calendar or the "
                f"link, not from a device; rules may set: {allowed}"
            )
        return self


class CounterRoles(StrictModel):
    """Tags holding cumulative counts. Where good/NG come from a sorter, the machine config says so."""

    produced: str
    good: str | None = None
    rejected: str | None = None
    max_parts_per_minute: Annotated[float, Field(gt=0)] = 600.0


class EnergyRoles(StrictModel):
    """A meter's registers, or a machine's own: its PLC's energy counter, read with its other tags
    and counted exactly as a meter that measures the machine."""

    kwh: str = Field(description="cumulative active energy import, kWh after scale")
    power_kw: str | None = Field(None, description="real power now, published as the energy records' kw")
    rated_kw: Annotated[float, Field(gt=0)] = Field(
        500.0, description="upper bound of real power; a larger jump is a bad read"
    )
    rollover_kwh: Annotated[float, Field(gt=0)] | None = Field(
        None, description="meter rollover value, when the meter wraps below the register's range"
    )


class ModbusLimits(StrictModel):
    max_registers_per_request: Annotated[int, Field(ge=1, le=MODBUS_MAX_REGISTERS_PER_READ)] = (
        MODBUS_MAX_REGISTERS_PER_READ
    )
    max_bits_per_request: Annotated[int, Field(ge=1, le=MODBUS_MAX_BITS_PER_READ)] = MODBUS_MAX_BITS_PER_READ
    max_gap: Annotated[int, Field(ge=0, le=MODBUS_MAX_REGISTERS_PER_READ)] | None = Field(
        None, description="registers of gap filled to merge reads; default from the connection"
    )


# The sections that make a machine (its state, its parts, its variant): a meter counts kWh only.
MACHINE_ONLY_SECTIONS = ("state", "counters", "variant")


class Profile(StrictModel):
    name: str
    kind: Literal["grinder", "superfinisher", "assembly", "sorter", "meter", "other"]
    description: str = ""
    source: str = Field("", description="where the register map comes from (manual, page)")
    addressing: Literal[0, 1] = Field(
        0, description="1 when the manual numbers registers from 1 (e.g. 40001 style)"
    )
    modbus: ModbusLimits = ModbusLimits()
    tags: dict[str, TagSpec] = Field(default_factory=dict, description="Modbus registers")
    opcua: OpcUaDefaults = OpcUaDefaults()
    nodes: dict[str, NodeSpec] = Field(default_factory=dict, description="OPC UA variables")
    state: tuple[StateRuleSpec, ...] = ()
    counters: CounterRoles | None = None
    energy: EnergyRoles | None = None
    variant: str | None = Field(None, description="tag holding the product variant / program")
    alarms: dict[str, AlarmText] = Field(
        default_factory=dict,
        description="alarm code -> its text (one text, or one per language: {en: ..., zh-CN: ...}); "
        "the reports name a stop 'alarm {alarm_code}' by it",
    )

    @field_validator("alarms", mode="before")
    @classmethod
    def _codes_as_text(cls, value: object) -> object:
        """`1203: text` in YAML is a number; a code is matched as the reason shows it."""
        if isinstance(value, dict):
            return {str(code): text for code, text in value.items()}
        return value

    @model_validator(mode="after")
    def _one_protocol(self) -> Self:
        if bool(self.tags) == bool(self.nodes):
            raise ValueError("a profile has either 'tags' (Modbus registers) or 'nodes' (OPC UA variables)")
        return self

    @property
    def protocol(self) -> ProfileProtocol:
        return "opcua" if self.nodes else "modbus"

    @property
    def sections_for_machines_only(self) -> list[str]:
        """Sections a meter's role never reads: set on a meter's profile they would be ignored."""
        return [name for name in MACHINE_ONLY_SECTIONS if getattr(self, name)]

    @property
    def tag_specs(self) -> Mapping[str, TagSpec | NodeSpec]:
        """The device's values by the names rules, counters and records call them, whatever the
        protocol: its `tags` (Modbus registers) or its `nodes` (OPC UA variables)."""
        return self.tags or self.nodes

    @property
    def tag_names(self) -> list[str]:
        return list(self.tag_specs)

    def wraps_at(self, tag: str) -> float | None:
        """Where a counter tag wraps, in engineering units; None: it does not."""
        return self.tag_specs[tag].wraps_at

    def unit_of(self, tag: str) -> str:
        """The engineering unit a value is in, as the profile says ('' if it says none)."""
        found = self.tag_specs.get(tag)
        return (found.unit or "") if found is not None else ""
