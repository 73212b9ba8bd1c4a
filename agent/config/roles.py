"""Machines and meters against their profiles: every profile section a device has is used.

A machine uses its profile's state rules, counters, variant and, when its own PLC counts its
energy, the `energy` section: those registers are read in the same requests as its other tags and
counted exactly as a meter that measures the machine would be. A meter uses `energy` only. What a
device's role would not use is an error here, never something that validates and is then ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from agent.config.issues import ConfigIssue
from agent.config.workshop import WORKSHOP_SCOPE
from agent.config.yamlsource import LoadedYaml

if TYPE_CHECKING:
    from agent.config.compiled import DeviceProfile
    from agent.config.salvage import WorkshopParts


def own_energy_hint(machine: str, unit: int, connection: str) -> str:
    """How to declare a machine whose PLC also counts its kWh (said where a meter is refused)."""
    return (
        f"if this meter is the PLC of machine '{machine}' itself (unit {unit} on '{connection}'), declare "
        "its kWh register in that machine's profile instead (energy: {kwh: <tag>}) and remove this meter: "
        "the register is then read in the same requests as the machine's other tags"
    )


def check_roles(
    parts: WorkshopParts, loaded: LoadedYaml, profiles: Mapping[str, DeviceProfile]
) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    self_metered: dict[str, str] = {}  # machine -> its profile, when the profile counts its energy
    for i, machine in parts.machines:
        profile = profiles.get(machine.profile)
        if profile is None:
            continue
        if profile.spec.energy is not None:
            self_metered[machine.id] = machine.profile
        elif machine.energy_meter is not None:
            issues.append(
                loaded.issue(
                    ("machines", i, "energy_meter"),
                    f"profile '{machine.profile}' has no 'energy' section: the machine measures no energy "
                    "of its own (a separate meter states its class and calibration under 'meters')",
                )
            )
    for i, meter in parts.meters:
        profile = profiles.get(meter.profile)
        if profile is not None:
            unused = profile.spec.sections_for_machines_only
            if unused:
                issues.append(
                    loaded.issue(
                        ("meters", i, "profile"),
                        f"profile '{meter.profile}' has {', '.join(unused)}, which a meter does not use (a "
                        "meter counts kWh: its profile's 'energy' section); list the device under "
                        "'machines', or give the meter a profile without them",
                    )
                )
        if meter.measures != WORKSHOP_SCOPE and meter.measures in self_metered:
            issues.append(
                loaded.issue(
                    ("meters", i, "measures"),
                    f"machine '{meter.measures}' counts its own energy (profile "
                    f"'{self_metered[meter.measures]}', section 'energy'); a meter for it as well would "
                    "count its kWh twice: remove this meter, or the machine profile's energy section",
                )
            )
    return issues
