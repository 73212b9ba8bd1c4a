"""What the comparison runs on and how it measures a contender, whoever it is.

A workload is N simulated Modbus TCP devices x M holding-register tags of mixed types with a
3-register gap after every 10 tags, served by `edge-agent simulate` (10 devices per gateway
port). Its workshop.yaml is the agent's configuration; the other contenders are configured from
the same tag layout. CPU and memory come from /proc for the contender's processes only, and a
`BrokerProbe` on the local Mosquitto measures what arrives: values per second and the age of each
payload's timestamp on arrival.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.config.connections import ModbusTcpConnection
from agent.config.loader import load_config
from tests.conftest import free_port

DEVICES_PER_GATEWAY = 10
TYPES = ("uint16", "int16", "uint32", "int32", "float32", "bit")
WIDTH = {"uint16": 1, "int16": 1, "uint32": 2, "int32": 2, "float32": 2, "bit": 1}
TICKS = os.sysconf("SC_CLK_TCK")

# What a probe takes from one message: (timestamp in seconds since the epoch if the payload
# carries one, number of tag values carried)
Stamps = Callable[[bytes], Iterable[tuple[float | None, int]]]


@dataclass(frozen=True)
class Workload:
    devices: int
    tags: int

    @property
    def name(self) -> str:
        return f"{self.devices}x{self.tags}"

    @property
    def values_per_cycle(self) -> int:
        return self.devices * self.tags


def tag_layout(count: int) -> list[tuple[str, int, str]]:
    """(name, address, type): mixed types, and a gap of 3 registers after every 10 tags."""
    layout = []
    address = 0
    for index in range(count):
        kind = TYPES[index % len(TYPES)]
        layout.append((f"t{index:03d}", address, kind))
        address += WIDTH[kind] + (3 if index % 10 == 9 else 0)
    return layout


def register_span(tags: int) -> int:
    """Registers from 0 to the end of the last tag: the map the profile describes."""
    _, address, kind = tag_layout(tags)[-1]
    return address + WIDTH[kind]


def simulator_workshop(workshop: Path, workload: Workload, block: int) -> Path:
    """The workshop as the simulator serves it: each device's register map padded to a whole
    number of `block`-register blocks, as a real device with a larger map answers. Peers that
    read fixed aligned blocks (modbus4mqtt: 100 registers) get an exception otherwise; the agent
    and the bare loop read only what the profile lists, so the padding does not change their work."""
    directory = workshop.parent / "simulator"
    (directory / "devices").mkdir(parents=True, exist_ok=True)
    profile = (workshop.parent / "devices" / "bench-device.yaml").read_text(encoding="utf-8")
    end = -(-register_span(workload.tags) // block) * block
    padded = profile + f"  pad: {{table: holding, address: {end - 1}, type: uint16}}\n"
    (directory / "devices" / "bench-device.yaml").write_text(padded, encoding="utf-8")
    served = directory / "workshop.yaml"
    shutil.copyfile(workshop, served)
    return served


def device_addresses(workshop: Path) -> list[tuple[int, int]]:
    """(TCP port, unit id) of every device of the workload, in device order."""
    config = load_config(workshop)
    ports = [c.port for c in config.workshop.connections if isinstance(c, ModbusTcpConnection)]
    devices = len(config.workshop.machines)
    return [(ports[n // DEVICES_PER_GATEWAY], n % DEVICES_PER_GATEWAY + 1) for n in range(devices)]


def write_workload(directory: Path, workload: Workload) -> Path:
    devices = directory / "devices"
    devices.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, address, kind in tag_layout(workload.tags):
        if kind == "bit":
            lines.append(f"  {name}: {{table: holding, address: {address}, type: bool, bit: 0}}")
        else:
            lines.append(f"  {name}: {{table: holding, address: {address}, type: {kind}}}")
    (devices / "bench-device.yaml").write_text(
        "name: bench-device\nkind: other\nsource: bench/workload.py\ntags:\n" + "\n".join(lines) + "\n",
        encoding="utf-8",
    )
    gateways = math.ceil(workload.devices / DEVICES_PER_GATEWAY)
    ports = [free_port() for _ in range(gateways)]
    connections = "\n".join(
        f"  - {{id: gw{g:02d}, transport: modbus-tcp, host: 127.0.0.1, port: {port}, "
        "interval_s: 1.0, timeout_s: 1.0}"
        for g, port in enumerate(ports)
    )
    machines = "\n".join(
        f"  - {{id: d{n:03d}, line: l1, kind: other, profile: bench-device, "
        f"connection: gw{n // DEVICES_PER_GATEWAY:02d}, unit: {n % DEVICES_PER_GATEWAY + 1}, "
        "ideal_cycle_s: 5, publish_tags: true}"
        for n in range(workload.devices)
    )
    path = directory / "workshop.yaml"
    path.write_text(
        f"""agent: {{id: bench, state_dir: {directory / "state"}}}
site: {{enterprise: bench-e, site: bench-s, area: bench-a}}
connections:
{connections}
lines: [{{id: l1}}]
machines:
{machines}
calendar: {{shifts: [{{name: all, start: "00:00", end: "23:59"}}]}}
outbox: {{synchronous: normal}}
outputs:
  mqtt: {{host: 127.0.0.1, port: 1883}}
health: {{port: {free_port()}}}
""",
        encoding="utf-8",
    )
    return path


def variant(workshop: Path, name: str, *, publish_tags: bool = True, extra: str = "") -> Path:
    """The workload's workshop under another name, with its own state directory (its outbox and
    checkpoint), every machine's publish_tags as given, and extra top-level YAML appended."""
    text = workshop.read_text(encoding="utf-8")
    text = text.replace(f"state_dir: {workshop.parent / 'state'}", f"state_dir: {workshop.parent / name}")
    if not publish_tags:
        text = text.replace("publish_tags: true", "publish_tags: false")
    path = workshop.with_name(f"{name}.yaml")
    path.write_text(text + extra, encoding="utf-8")
    return path


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def peak_rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return round(total / 1024, 1)


ARRIVAL_FIGURES = ("values_per_s", "latency_p50_ms", "latency_p99_ms")


class BrokerProbe:
    """Subscribes to a contender's output on the local Mosquitto while `recording`: how many tag
    values arrive, and each payload timestamp's age on arrival."""

    def __init__(self, topic: str, stamps: Stamps) -> None:
        self.stamps = stamps
        self.ages: list[float] = []
        self.values = 0
        self.recording = False
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", 1883)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()

    def _message(self, _client: Any, _userdata: Any, message: Any) -> None:
        if not self.recording:
            return
        arrived = time.time()
        for ts, values in self.stamps(message.payload):
            if ts is not None:
                self.ages.append(arrived - ts)
            self.values += values

    def figures(self, window_s: float) -> dict[str, Any]:
        ages = sorted(self.ages)
        return {
            "values_per_s": round(self.values / window_s, 1),
            "latency_p50_ms": round(1000 * statistics.median(ages), 1) if ages else None,
            "latency_p99_ms": round(1000 * ages[int(0.99 * (len(ages) - 1))], 1) if ages else None,
        }

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def measure_window(pids: list[int], probe: BrokerProbe | None, window_s: float) -> dict[str, Any]:
    """CPU seconds and peak RSS of `pids` over the window, and what the probe saw arrive (no
    probe: the contender publishes nothing)."""
    start = cpu_seconds(pids)
    if probe is not None:
        probe.recording = True
    time.sleep(window_s)
    if probe is not None:
        probe.recording = False
    used = cpu_seconds(pids) - start
    arrived = probe.figures(window_s) if probe is not None else dict.fromkeys(ARRIVAL_FIGURES)
    return {"cpu_s": used, "rss_mb": peak_rss_mb(pids), **arrived}
