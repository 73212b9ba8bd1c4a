"""The values that flow from drivers to the KPI engine."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from operator import attrgetter

# What a tag holds once decoded, whatever the protocol: a flag, a number, a text or an enumeration's
# name. The one definition: drivers, the KPI engine's rules and the simulators use it.
TagValue = bool | int | float | str


class Quality(StrEnum):
    GOOD = "good"
    BAD = "bad"


# Python 3.11 looks an enum member up through a descriptor (about 0.1 us each time): the loops that
# run once per tag value, 10,000 times a second, use these instead.
GOOD, BAD = Quality.GOOD, Quality.BAD


# Not frozen: ten thousand samples a second are made, and a frozen dataclass's __init__ costs four
# times as much (object.__setattr__ per field). Nothing mutates a sample after the driver made it.
@dataclass(slots=True)
class Sample:
    device: str
    tag: str
    value: TagValue | None  # None: no value (the read failed: quality bad)
    ts: float  # seconds since the epoch (UTC), when the value was read
    quality: Quality = Quality.GOOD


SAMPLE_DEVICE = attrgetter("device")  # a key function in C, for grouping samples by device


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    device: str
    connected: bool
    ts: float
    error: str | None = None
