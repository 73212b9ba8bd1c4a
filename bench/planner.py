"""Requests per poll cycle: this planner against one request per tag and contiguous-only batching,
on the shipped device profiles, and what each costs on a 9600 baud RS-485 bus (bytes on the wire,
agent.drivers.timing). Run: `make bench ARGS=planner`."""

from __future__ import annotations

from agent.config.compiled import DeviceProfile
from agent.config.connections import ModbusRtuConnection
from agent.config.loader import load_profile
from agent.config.shipped import shipped_profiles_dir
from agent.drivers.planner import ReadRequest, plan_reads
from agent.drivers.timing import RTU_PAUSE_DEFAULT, cycle_seconds

PROFILES = shipped_profiles_dir()
LINE = ModbusRtuConnection(id="bus", transport="modbus-rtu", serial_port="/dev/null", baudrate=9600)


def strategies(profile: DeviceProfile) -> dict[str, tuple[ReadRequest, ...]]:
    spec = profile.spec
    plan = {
        "max_registers": spec.modbus.max_registers_per_request,
        "max_bits": spec.modbus.max_bits_per_request,
        "addressing": spec.addressing,
    }
    one_per_tag = tuple(
        r for name, tag in spec.tags.items() for r in plan_reads({name: tag}, max_gap=0, **plan)
    )
    return {
        "one_per_tag": one_per_tag,
        "contiguous": plan_reads(spec.tags, max_gap=0, **plan),
        "planner_gap8": plan_reads(spec.tags, max_gap=spec.modbus.max_gap or 8, **plan),
    }


def main() -> dict[str, object]:
    results: dict[str, object] = {}
    for path in sorted(PROFILES.glob("*.yaml")):
        profile, issues = load_profile(path)
        assert profile is not None, issues
        row: dict[str, float] = {}
        for name, requests in strategies(profile).items():
            row[f"{name}_requests"] = len(requests)
            row[f"{name}_ms_at_9600"] = round(
                cycle_seconds(list(requests), LINE, RTU_PAUSE_DEFAULT) * 1000, 1
            )
        results[profile.name] = {"tags": len(profile.spec.tags), **row}
        print(
            f"{profile.name:18s} tags={len(profile.spec.tags):3d} "
            + " ".join(f"{k}={v}" for k, v in row.items())
        )
    return results
