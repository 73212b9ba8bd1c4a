"""Peer gateways a plant would otherwise install, configured for the workload's exact job: the same
registers, a 1 s poll interval, every value published every cycle to the local Mosquitto.

Each peer is installed from PyPI into its own venv under bench/.peers/ (gitignored), never into
the project's environment: their pins clash with ours and with each other.

- modbus4mqtt 0.7.1: one process per device (its design: one YAML config per device),
  update_rate 1 s, every register published on its own topic every cycle
  (pub_only_on_change: false), its own 100-register read batching. It reads integers only, so
  float32 tags are read as uint32 and bit tags as uint16 (the same registers). Its payloads carry
  no timestamp, so it has no latency figure.
- thingsboard-gateway 3.8.5 with its Modbus connector (pymodbus 3.9.2, the version its connector
  requires, preinstalled so that it does not pip-install at start): one process for all devices,
  one `slaves` entry per device with pollPeriod 1000 ms and one `timeseries` entry per tag (same
  address, type and register count; bit tags as `bits` with bit 0), report strategy
  ON_RECEIVED (every value every cycle), QoS 1, in-memory storage, statistics, remote
  configuration and remote shell off, its log level WARNING (pymodbus's deprecation warning,
  which 3.9.2 logs for every value the connector decodes, at ERROR). It speaks the ThingsBoard
  gateway MQTT API to the local Mosquitto (any access token is accepted there). It sends nothing
  until the server has answered its `getSessionLimits` RPC, so `SessionLimits` answers as a
  ThingsBoard server with rate limits off would (maxInflightMessages 100, maxPayloadSize 64 KiB,
  ThingsBoard's defaults). Telemetry arrives on `v1/gateway/telemetry` with a millisecond `ts`,
  which gives its latency. It has no register batching: one read request per tag.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.workload import (
    WIDTH,
    BrokerProbe,
    Workload,
    device_addresses,
    measure_window,
    tag_layout,
)

PEERS = Path(__file__).resolve().parent / ".peers"
MODBUS4MQTT_BLOCK = 100  # its DEFAULT_SCAN_BATCHING: reads aligned blocks of this many registers
PACKAGES = {
    "modbus4mqtt": ["modbus4mqtt==0.7.1"],
    "thingsboard-gateway": [
        "thingsboard-gateway==3.8.5",
        "pymodbus==3.9.2",
        "pyserial",
        "pyserial-asyncio",
    ],
}


def venv(peer: str) -> Path:
    return PEERS / peer


def ensure(peer: str) -> bool:
    """Install the peer into its venv unless it is there; False if it cannot be installed."""
    marker = venv(peer) / ".installed"
    if marker.exists():
        return True
    shutil.rmtree(venv(peer), ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv(peer))], check=True)
        pip = [str(venv(peer) / "bin" / "pip"), "install", "--quiet"]
        subprocess.run([*pip, *PACKAGES[peer]], check=True)
    except subprocess.CalledProcessError:
        shutil.rmtree(venv(peer), ignore_errors=True)
        return False
    marker.touch()
    return True


def _run(
    commands: list[tuple[list[str], Path | None, dict[str, str] | None]],
    probe: BrokerProbe,
    warm_up_s: float,
    window_s: float,
) -> dict[str, Any]:
    processes = [
        subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for command, cwd, env in commands
    ]
    try:
        time.sleep(warm_up_s)
        return measure_window([p.pid for p in processes], probe, window_s)
    finally:
        probe.close()
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- modbus4mqtt ---------------------------------------------------------------------------------


def modbus4mqtt_configs(workshop: Path, workload: Workload) -> list[Path]:
    registers = []
    for name, address, kind in tag_layout(workload.tags):
        peer_type = {"float32": "uint32", "bit": "uint16"}.get(kind, kind)
        registers.append(
            f"  - {{pub_topic: {name}, address: {address}, table: holding, type: {peer_type}, "
            "pub_only_on_change: false}"
        )
    configs = []
    for n, (port, unit) in enumerate(device_addresses(workshop)):
        path = workshop.parent / f"modbus4mqtt-d{n:03d}.yaml"
        path.write_text(
            f"ip: 127.0.0.1\nport: {port}\nupdate_rate: 1\naddress_offset: 0\n"
            f"device_address: {unit}\nregisters:\n" + "\n".join(registers) + "\n",
            encoding="utf-8",
        )
        configs.append(path)
    return configs


def modbus4mqtt_requests(workload: Workload) -> int:
    """Its reads per cycle, from its algorithm: one per 100-register block a device touches."""
    blocks = set()
    for _, address, kind in tag_layout(workload.tags):
        for register in range(address, address + WIDTH[kind]):
            blocks.add(register - register % MODBUS4MQTT_BLOCK)
    return len(blocks) * workload.devices


def _one_value_per_message(_payload: bytes) -> Iterable[tuple[float | None, int]]:
    return [(None, 1)]


def run_modbus4mqtt(workshop: Path, workload: Workload, warm_up_s: float, window_s: float) -> dict[str, Any]:
    binary = str(venv("modbus4mqtt") / "bin" / "modbus4mqtt")
    commands: list[tuple[list[str], Path | None, dict[str, str] | None]] = [
        (
            [binary, "--hostname", "127.0.0.1", "--config", str(c), "--mqtt_topic_prefix", f"m4m/{c.stem}"],
            None,
            None,
        )
        for c in modbus4mqtt_configs(workshop, workload)
    ]
    probe = BrokerProbe("m4m/#", _one_value_per_message)
    # one interpreter per device: 50 of them take a while to start
    figures = _run(commands, probe, warm_up_s + workload.devices * 0.05, window_s)
    return {**figures, "requests_per_cycle": modbus4mqtt_requests(workload), "missed_cycles": None}


# -- thingsboard-gateway -------------------------------------------------------------------------

TB_TYPES = {
    "uint16": "16uint",
    "int16": "16int",
    "uint32": "32uint",
    "int32": "32int",
    "float32": "32float",
    "bit": "bits",
}


def thingsboard_config(workshop: Path, workload: Workload) -> Path:
    """A config directory for thingsboard-gateway: tb_gateway.json, modbus.json, logs.json."""
    directory = workshop.parent / "thingsboard"
    directory.mkdir(exist_ok=True)
    (directory / "logs").mkdir(exist_ok=True)
    timeseries = []
    for name, address, kind in tag_layout(workload.tags):
        entry: dict[str, Any] = {
            "tag": name,
            "type": TB_TYPES[kind],
            "functionCode": 3,
            "objectsCount": WIDTH[kind],
            "address": address,
        }
        if kind == "bit":
            entry |= {"bit": 0, "bitTargetType": "bool"}
        timeseries.append(entry)
    slaves = []
    for n, (port, unit) in enumerate(device_addresses(workshop)):
        slaves.append(
            {
                "host": "127.0.0.1",
                "port": port,
                "type": "tcp",
                "method": "socket",
                "unitId": unit,
                "deviceName": f"d{n:03d}",
                "deviceType": "bench",
                "timeout": 1,
                "byteOrder": "BIG",
                "wordOrder": "BIG",
                "retries": 1,
                "pollPeriod": 1000,
                "attributes": [],
                "timeseries": timeseries,
                "attributeUpdates": [],
                "rpc": [],
            }
        )
    (directory / "modbus.json").write_text(json.dumps({"master": {"slaves": slaves}}), encoding="utf-8")
    gateway = {
        "thingsboard": {
            "host": "127.0.0.1",
            "port": 1883,
            "remoteShell": False,
            "remoteConfiguration": False,
            "statistics": {"enable": False},
            "security": {"type": "accessToken", "accessToken": "bench"},
            "qos": 1,
            "reportStrategy": {"type": "ON_RECEIVED"},
            "checkingDeviceActivity": {"checkDeviceInactivity": False},
        },
        "storage": {"type": "memory", "read_records_count": 100, "max_records_count": 1_000_000},
        "grpc": {"enabled": False},
        "connectors": [{"type": "modbus", "name": "bench", "configuration": "modbus.json"}],
    }
    (directory / "tb_gateway.json").write_text(json.dumps(gateway), encoding="utf-8")
    logs = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "formatter": "plain",
                "filename": str(directory / "logs" / "gateway.log"),
            }
        },
        "root": {"level": "WARNING", "handlers": ["file"]},
        "loggers": {"pymodbus": {"level": "ERROR"}},
    }
    (directory / "logs.json").write_text(json.dumps(logs), encoding="utf-8")
    return directory


class SessionLimits:
    """Plays ThingsBoard's part in one RPC: the gateway's request for its session limits."""

    ANSWER = json.dumps({"maxInflightMessages": 100, "maxPayloadSize": 65536}).encode()

    def __init__(self) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._request
        self.client.connect("127.0.0.1", 1883)
        self.client.subscribe("v1/devices/me/rpc/request/+", qos=1)
        self.client.loop_start()

    def _request(self, client: Any, _userdata: Any, message: Any) -> None:
        if json.loads(message.payload).get("method") == "getSessionLimits":
            request_id = message.topic.rsplit("/", 1)[1]
            client.publish(f"v1/devices/me/rpc/response/{request_id}", self.ANSWER, qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _telemetry_stamps(payload: bytes) -> Iterable[tuple[float | None, int]]:
    """v1/gateway/telemetry: {"<device>": [{"ts": <ms>, "values": {...}}, ...], ...}"""
    for entries in json.loads(payload).values():
        for entry in entries:
            yield entry["ts"] / 1000.0, len(entry["values"])


def run_thingsboard(workshop: Path, workload: Workload, warm_up_s: float, window_s: float) -> dict[str, Any]:
    directory = thingsboard_config(workshop, workload)
    binary = str(venv("thingsboard-gateway") / "bin" / "thingsboard-gateway")
    environment = {"PATH": "/usr/bin:/bin", "TB_GW_CONFIG_DIR": str(directory)}
    probe = BrokerProbe("v1/gateway/telemetry", _telemetry_stamps)
    server = SessionLimits()
    try:
        figures = _run([([binary], directory, environment)], probe, warm_up_s, window_s)
    finally:
        server.close()
    return {**figures, "requests_per_cycle": workload.values_per_cycle, "missed_cycles": None}
