"""Machine states (OPC 40001 MachineryItemState refined by the ISO 22400 time model).

The one table that decides which OEE time bucket a state's time lands in is STATE_BUCKET.
"""

from __future__ import annotations

from enum import StrEnum


class MachineState(StrEnum):
    PRODUCING = "producing"
    SETUP = "setup"
    IDLE = "idle"
    FAULT = "fault"
    PLANNED_STOP = "planned_stop"
    NO_SHIFT = "no_shift"
    OFFLINE = "offline"


class TimeBucket(StrEnum):
    """Where a second of machine time goes in ISO 22400-2's time model."""

    ACTUAL_PRODUCTION = "apt"  # APT
    SETUP_LOSS = "setup"  # loss, counted apart so NEE can exclude it
    IDLE_LOSS = "idle"
    FAULT_LOSS = "fault"
    PLANNED_STOP = "planned_stop"  # excluded from planned busy time
    NO_SHIFT = "no_shift"  # excluded; counted for TEEP and standby energy
    OFFLINE = "offline"  # excluded; reported as data coverage


STATE_BUCKET: dict[MachineState, TimeBucket] = {
    MachineState.PRODUCING: TimeBucket.ACTUAL_PRODUCTION,
    MachineState.SETUP: TimeBucket.SETUP_LOSS,
    MachineState.IDLE: TimeBucket.IDLE_LOSS,
    MachineState.FAULT: TimeBucket.FAULT_LOSS,
    MachineState.PLANNED_STOP: TimeBucket.PLANNED_STOP,
    MachineState.NO_SHIFT: TimeBucket.NO_SHIFT,
    MachineState.OFFLINE: TimeBucket.OFFLINE,
}

# Buckets that make up planned busy time (PBT) when they fall inside a shift's working time.
PLANNED_BUSY_BUCKETS = frozenset(
    {
        TimeBucket.ACTUAL_PRODUCTION,
        TimeBucket.SETUP_LOSS,
        TimeBucket.IDLE_LOSS,
        TimeBucket.FAULT_LOSS,
    }
)

# States a device profile's rules may produce; the calendar and the link decide the others.
MACHINE_REPORTED_STATES = (
    MachineState.PRODUCING,
    MachineState.SETUP,
    MachineState.IDLE,
    MachineState.FAULT,
    MachineState.PLANNED_STOP,
)
