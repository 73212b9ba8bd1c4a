"""The checks across fields and sections, each a small named function (as ESPHome writes them).

The schema (pydantic) judges each value on its own; these judge what only the whole can tell: a
unit id used twice, a machine on an unknown line, a profile that speaks another protocol than its
connection, overlapping registers or shifts. They run on the parts that are valid on their own
(agent/config/salvage.py), so a file with schema errors gets every other error in the same pass.
A check returns its issues, each at the line it is about; the loader runs every check in
WORKSHOP_CHECKS and PROFILE_CHECKS. A new rule is one more function in one of them.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config.grid import check_grid
from agent.config.holidays import holiday_sets
from agent.config.issues import ConfigIssue, ConfigPath
from agent.config.profile import MODBUS_ADDRESS_SPACE, Profile, StateRuleSpec
from agent.config.roles import check_roles, own_energy_hint
from agent.config.suggest import did_you_mean
from agent.config.tag_kinds import check_counter_types, check_rule_comparisons, signed_counter_warnings
from agent.config.workshop import WORKSHOP_SCOPE, MachineSpec, MeterSpec
from agent.config.yamlsource import LoadedYaml
from agent.sinks.umh import umh_level

if TYPE_CHECKING:
    from agent.config.compiled import DeviceProfile
    from agent.config.salvage import WorkshopParts

MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class WrittenWorkshop:
    """A workshop file as the checks see it: its valid parts, where each value was written, and
    the profiles that loaded."""

    parts: WorkshopParts
    loaded: LoadedYaml
    profiles: Mapping[str, DeviceProfile]


@dataclass(frozen=True)
class WrittenProfile:
    """A profile file as the checks see it: its valid parts (all of it when it validated), where
    each value was written, and every tag name it writes, valid or not (a rule naming a tag whose
    definition has an error is not told the tag is unknown)."""

    spec: Profile
    rules: tuple[tuple[int, StateRuleSpec], ...]
    loaded: LoadedYaml
    tag_names: list[str]
    file: Path


# -- helpers ---------------------------------------------------------------------------------------


def duplicates(loaded: LoadedYaml, items: Sequence[tuple[ConfigPath, str]], what: str) -> list[ConfigIssue]:
    seen: dict[str, ConfigPath] = {}
    issues: list[ConfigIssue] = []
    for path, ident in items:
        if ident in seen:
            first = loaded.mark_for(seen[ident])
            issues.append(loaded.issue(path, f"duplicate {what} '{ident}' (first at line {first.line})"))
        else:
            seen[ident] = path
    return issues


def _written(parts: WorkshopParts, section: str) -> list[tuple[ConfigPath, str]]:
    return [((section, i, "id"), ident) for i, ident in parts.ids[section] or ()]


def _ids(parts: WorkshopParts, section: str) -> list[str] | None:
    """Every id written in a section; None when the section is unusable (references into it are
    not judged)."""
    written = parts.ids[section]
    return None if written is None else [ident for _, ident in written]


def _reference(
    loaded: LoadedYaml, path: ConfigPath, value: str, choices: list[str] | None, what: str
) -> list[ConfigIssue]:
    if choices is None or value in choices:
        return []
    return [loaded.issue(path, f"unknown {what} '{value}'{did_you_mean(value, choices)}")]


def _devices(parts: WorkshopParts) -> list[tuple[str, int, MachineSpec | MeterSpec]]:
    return [
        *(("machines", i, m) for i, m in parts.machines),
        *(("meters", i, m) for i, m in parts.meters),
    ]


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _calendar(loaded: LoadedYaml) -> dict[str, object]:
    calendar = loaded.data.get("calendar") if isinstance(loaded.data, dict) else None
    return calendar if isinstance(calendar, dict) else {}


# -- the workshop ----------------------------------------------------------------------------------


def check_unique_ids(w: WrittenWorkshop) -> list[ConfigIssue]:
    """Connections, lines, and machines and meters together, each have their ids once."""
    parts, loaded = w.parts, w.loaded
    return [
        *duplicates(loaded, _written(parts, "connections"), "connection id"),
        *duplicates(loaded, _written(parts, "lines"), "line id"),
        *duplicates(loaded, [*_written(parts, "machines"), *_written(parts, "meters")], "machine/meter id"),
    ]


def check_references(w: WrittenWorkshop) -> list[ConfigIssue]:
    """Lines, connections and machines named by a machine or a meter exist."""
    parts, loaded = w.parts, w.loaded
    lines, connections, machines = _ids(parts, "lines"), _ids(parts, "connections"), _ids(parts, "machines")
    issues: list[ConfigIssue] = []
    for i, machine in parts.machines:
        issues += _reference(loaded, ("machines", i, "line"), machine.line, lines, "line")
        issues += _reference(
            loaded, ("machines", i, "connection"), machine.connection, connections, "connection"
        )
        if machine.quality_from is not None:
            issues += _reference(
                loaded, ("machines", i, "quality_from"), machine.quality_from, machines, "machine"
            )
    for i, meter in parts.meters:
        issues += _reference(loaded, ("meters", i, "connection"), meter.connection, connections, "connection")
        if machines is not None:
            issues += _reference(
                loaded, ("meters", i, "measures"), meter.measures, [*machines, WORKSHOP_SCOPE], "machine"
            )
    return issues


def check_unit_ids(w: WrittenWorkshop) -> list[ConfigIssue]:
    """A unit id is used once per connection, where its transport tells devices apart by unit id
    (on one OPC UA server, devices are told apart by their nodes)."""
    by_unit = {c.id: c.units_addressed for _, c in w.parts.connections}
    endpoints: dict[tuple[str, int], tuple[ConfigPath, str]] = {}
    issues: list[ConfigIssue] = []
    for section, i, device in _devices(w.parts):
        if not by_unit.get(device.connection, True):
            continue
        path: ConfigPath = (section, i, "unit")
        key = (device.connection, device.unit)
        if key in endpoints:
            issues.append(w.loaded.issue(path, _unit_used(key, endpoints[key], path, w.loaded)))
        endpoints[key] = (path, device.id)
    return issues


def _unit_used(
    key: tuple[str, int], first: tuple[ConfigPath, str], path: ConfigPath, loaded: LoadedYaml
) -> str:
    """A unit id used twice on one connection; a meter on a machine's unit may be its own PLC."""
    connection, unit = key
    (first_path, first_owner), line = first, loaded.mark_for(first[0]).line
    if path[0] == "meters" and first_path[0] == "machines":
        return (
            f"unit {unit} on connection '{connection}' is already used by machine '{first_owner}' "
            f"(line {line}); {own_energy_hint(first_owner, unit, connection)}"
        )
    return f"unit {unit} on connection '{connection}' is already used (line {line})"


def check_machine_profiles(w: WrittenWorkshop) -> list[ConfigIssue]:
    """A machine has a machine's profile, with a variant tag when its ideal cycle is by variant."""
    issues: list[ConfigIssue] = []
    for i, machine in w.parts.machines:
        profile = w.profiles.get(machine.profile)
        if profile is None:
            continue
        if profile.spec.kind == "meter":
            issues.append(
                w.loaded.issue(
                    ("machines", i, "profile"),
                    f"'{machine.profile}' is a meter profile; list meters under 'meters'",
                )
            )
        if machine.ideal_cycle_by_variant and profile.spec.variant is None:
            issues.append(
                w.loaded.issue(
                    ("machines", i, "ideal_cycle_by_variant"),
                    f"profile '{machine.profile}' names no 'variant' tag to choose by",
                )
            )
    return issues


def check_meters(w: WrittenWorkshop) -> list[ConfigIssue]:
    """A meter's profile counts energy, and a machine has at most one meter."""
    issues: list[ConfigIssue] = []
    for i, meter in w.parts.meters:
        profile = w.profiles.get(meter.profile)
        if profile is not None and profile.spec.energy is None:
            issues.append(
                w.loaded.issue(("meters", i, "profile"), f"profile '{meter.profile}' has no 'energy' section")
            )
    measured = [
        (("meters", i, "measures"), m.measures) for i, m in w.parts.meters if m.measures != WORKSHOP_SCOPE
    ]
    return [*issues, *duplicates(w.loaded, measured, "meter for machine")]


def check_line_constraints(w: WrittenWorkshop) -> list[ConfigIssue]:
    """Only a serial line has a constraint machine, and it is a machine on that line."""
    parts, loaded = w.parts, w.loaded
    # machines with schema errors: which line they are on is not known, so not judged
    unjudged = set(_ids(parts, "machines") or ()) - {m.id for _, m in parts.machines}
    issues: list[ConfigIssue] = []
    for i, line in parts.lines:
        if line.constraint is None:
            continue
        on_line = [m.id for _, m in parts.machines if m.line == line.id]
        if line.kind != "serial":
            issues.append(
                loaded.issue(("lines", i, "constraint"), "only a serial line has a constraint machine")
            )
        elif line.constraint not in on_line and line.constraint not in unjudged:
            issues.append(
                loaded.issue(
                    ("lines", i, "constraint"),
                    f"'{line.constraint}' is not a machine on "
                    f"line '{line.id}'{did_you_mean(line.constraint, on_line)}",
                )
            )
    return issues


def check_protocols(w: WrittenWorkshop) -> list[ConfigIssue]:
    """A device's profile speaks its connection's protocol; a device whose profile addresses
    nodes by browse path names the object they start from."""
    connections = {c.id: c for _, c in w.parts.connections}
    issues: list[ConfigIssue] = []
    for section, i, device in _devices(w.parts):
        profile, connection = w.profiles.get(device.profile), connections.get(device.connection)
        if profile is None or connection is None:
            continue
        if profile.spec.protocol != connection.protocol:
            issues.append(
                w.loaded.issue(
                    (section, i, "profile"),
                    f"'{device.profile}' is a {profile.spec.protocol} profile, but connection "
                    f"'{device.connection}' is {connection.transport}",
                )
            )
        elif device.node is None and any(n.path for n in profile.spec.nodes.values()):
            issues.append(
                w.loaded.issue(
                    (section, i),
                    f"'{device.profile}' addresses nodes by browse path: give the device's object as 'node'",
                )
            )
    return issues


def check_shifts(w: WrittenWorkshop) -> list[ConfigIssue]:
    """Breaks lie inside their shift; shifts do not overlap one another."""
    shifts, loaded = w.parts.shifts, w.loaded
    issues = duplicates(
        loaded, [(("calendar", "shifts", i, "id" if s.id else "name"), s.key) for i, s in shifts], "shift id"
    )
    names = dict(shifts)
    occupied: list[tuple[int, int, int]] = []
    for i, shift in shifts:
        start = _minutes(shift.start)
        length = (_minutes(shift.end) - start) % MINUTES_PER_DAY or MINUTES_PER_DAY
        for j, brk in enumerate(shift.breaks):
            offset = (_minutes(brk.start) - start) % MINUTES_PER_DAY
            brk_length = (_minutes(brk.end) - _minutes(brk.start)) % MINUTES_PER_DAY
            if brk_length == 0 or offset + brk_length > length:
                issues.append(
                    loaded.issue(
                        ("calendar", "shifts", i, "breaks", j),
                        f"break {brk.start}-{brk.end} is not inside shift {shift.start}-{shift.end}",
                    )
                )
        for other_start, other_length, other in occupied:
            if (other_start - start) % MINUTES_PER_DAY < length or (
                start - other_start
            ) % MINUTES_PER_DAY < other_length:
                issues.append(
                    loaded.issue(("calendar", "shifts", i), f"overlaps shift '{names[other].display}'")
                )
        occupied.append((start, length, i))
    return issues


def check_crews(w: WrittenWorkshop) -> list[ConfigIssue]:
    """A rotation names known shifts and crews, every shift on every day of its cycle; crews are
    named once and only with a rotation that puts them on shifts."""
    parts, loaded = w.parts, w.loaded
    issues = duplicates(loaded, [(("calendar", "crews", i, "id"), c.id) for i, c in parts.crews], "crew id")
    written = _calendar(loaded)
    rotation = parts.rotation
    if rotation is None:
        if parts.crews and "rotation" not in written:
            issues.append(
                loaded.issue(
                    ("calendar", "crews"),
                    "crews need a rotation (anchor and pattern) that puts them on shifts",
                )
            )
        return issues
    if "crews" not in written:
        return [
            *issues,
            loaded.issue(("calendar", "rotation"), "a rotation needs the crews it names (crews:)"),
        ]
    shift_ids = [s.key for _, s in parts.shifts]
    written_shifts, written_crews = written.get("shifts"), written.get("crews")
    shifts_judged = isinstance(written_shifts, list) and len(shift_ids) == len(written_shifts)
    crew_ids = [c.id for _, c in parts.crews]
    crews_judged = isinstance(written_crews, list) and len(crew_ids) == len(written_crews)
    for day, entry in enumerate(rotation.pattern):
        where = ("calendar", "rotation", "pattern", day)
        for shift, crew in entry.items():
            if shifts_judged and shift not in shift_ids:
                issues.append(
                    loaded.issue(
                        (*where, shift), f"unknown shift '{shift}'{did_you_mean(shift, shift_ids)}", key=True
                    )
                )
            if crews_judged and crew not in crew_ids:
                issues.append(
                    loaded.issue((*where, shift), f"unknown crew '{crew}'{did_you_mean(crew, crew_ids)}")
                )
        missing = [shift for shift in shift_ids if shift not in entry] if shifts_judged else []
        if missing:
            issues.append(
                loaded.issue(where, f"names no crew for shift {', '.join(repr(m) for m in missing)}")
            )
    return issues


def check_days(w: WrittenWorkshop) -> list[ConfigIssue]:
    """The holiday set exists; a date is either a day off or a working day, not both."""
    calendar, loaded = _calendar(w.loaded), w.loaded
    issues = []
    chosen = calendar.get("holidays")
    known = holiday_sets()
    if isinstance(chosen, str) and chosen not in known:
        issues.append(
            loaded.issue(
                ("calendar", "holidays"),
                f"no holiday set '{chosen}'; shipped: {', '.join(known)}{did_you_mean(chosen, known)}",
            )
        )
    off, worked = calendar.get("days_off"), calendar.get("working_days")
    if isinstance(off, list) and isinstance(worked, list):
        for index, day in enumerate(worked):
            if day in off:
                issues.append(
                    loaded.issue(
                        ("calendar", "working_days", index),
                        f"{day} is also in days_off: a date is either worked or off",
                    )
                )
    return issues


def check_device_roles(w: WrittenWorkshop) -> list[ConfigIssue]:
    """Every profile section a device has is one its role uses (agent/config/roles.py)."""
    return check_roles(w.parts, w.loaded, w.profiles)


def check_site_grid(w: WrittenWorkshop) -> list[ConfigIssue]:
    """site.grid names a shipped factor, or gives one with its provenance (agent/config/grid.py)."""
    return check_grid(w.loaded)


def check_sparkplug_devices(w: WrittenWorkshop) -> list[ConfigIssue]:
    """With outputs.sparkplug, the workshop (its area), each line and each machine is a Sparkplug
    device of the edge node: one id each, or a host would read two devices' metrics as one."""
    data = w.loaded.data if isinstance(w.loaded.data, dict) else {}
    outputs, site = data.get("outputs"), data.get("site")
    if not isinstance(outputs, dict) or "sparkplug" not in outputs:
        return []
    area = site.get("area") if isinstance(site, dict) else None
    workshop: list[tuple[ConfigPath, str]] = [(("site", "area"), area)] if isinstance(area, str) else []
    devices = [*workshop, *_written(w.parts, "lines"), *_written(w.parts, "machines")]
    return duplicates(w.loaded, devices, "Sparkplug device id (the area, a line or a machine)")


def _topic_style(loaded: LoadedYaml) -> object:
    outputs = loaded.data.get("outputs") if isinstance(loaded.data, dict) else None
    mqtt = outputs.get("mqtt") if isinstance(outputs, dict) else None
    return mqtt.get("topic_style") if isinstance(mqtt, dict) else None


def check_umh_levels(w: WrittenWorkshop) -> list[ConfigIssue]:
    """With topic_style umh, ids become UMH topic levels, where `.` is not allowed and becomes
    `-` (agent/sinks/umh.py): two lines, two machines or two crews whose ids differ only there
    would publish into one topic."""
    if _topic_style(w.loaded) != "umh":
        return []
    parts, loaded = w.parts, w.loaded
    groups: dict[str, list[tuple[ConfigPath, str]]] = {
        "line": _written(parts, "lines"),
        "machine": _written(parts, "machines"),
        "crew": [(("calendar", "crews", i, "id"), c.id) for i, c in parts.crews],
    }
    issues: list[ConfigIssue] = []
    for what, items in groups.items():
        seen: dict[str, tuple[ConfigPath, str]] = {}
        for path, ident in items:
            level = umh_level(ident)
            first = seen.setdefault(level, (path, ident))
            if first[1] != ident:
                line = loaded.mark_for(first[0]).line
                issues.append(
                    loaded.issue(
                        path,
                        f"{what} id '{ident}' is '{level}' as a UMH topic level (topic_style: umh), "
                        f"as is {what} '{first[1]}' (line {line}): rename one",
                    )
                )
    return issues


WORKSHOP_CHECKS: tuple[Callable[[WrittenWorkshop], list[ConfigIssue]], ...] = (
    check_unique_ids,
    check_references,
    check_unit_ids,
    check_machine_profiles,
    check_meters,
    check_line_constraints,
    check_protocols,
    check_shifts,
    check_crews,
    check_days,
    check_device_roles,
    check_site_grid,
    check_sparkplug_devices,
    check_umh_levels,
)


# -- a profile -------------------------------------------------------------------------------------


def check_profile_name(p: WrittenProfile) -> list[ConfigIssue]:
    """A profile is found by its file name, so its name is its file's."""
    name = p.loaded.data.get("name")
    if isinstance(name, str) and name != p.file.stem:
        return [p.loaded.issue(("name",), f"profile name '{name}' must match its file name '{p.file.stem}'")]
    return []


def check_tag_layout(p: WrittenProfile) -> list[ConfigIssue]:
    """Registers that partially overlap make no sense; the same range read twice is fine
    (a status word and its bit fields)."""
    spec, loaded = p.spec, p.loaded
    issues: list[ConfigIssue] = []
    limits = spec.modbus
    by_table: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for name, tag in spec.tags.items():
        start = tag.address - spec.addressing
        if start < 0:
            issues.append(
                loaded.issue(("tags", name, "address"), "address 0 does not exist with 1-based addressing")
            )
            continue
        limit = limits.max_bits_per_request if tag.table.is_bit_table else limits.max_registers_per_request
        if tag.width > limit:
            issues.append(
                loaded.issue(
                    ("tags", name, "type"),
                    f"needs {tag.width} registers, more than this device's "
                    f"max_registers_per_request ({limit})",
                )
            )
        if start + tag.width > MODBUS_ADDRESS_SPACE:
            issues.append(loaded.issue(("tags", name, "address"), "runs past the end of the address space"))
        by_table[tag.table.value].append((start, start + tag.width, name))
    for spans in by_table.values():
        spans.sort()
        for (a_start, a_end, a_name), (b_start, b_end, b_name) in itertools.pairwise(spans):
            if b_start < a_end and (a_start, a_end) != (b_start, b_end):
                issues.append(
                    loaded.issue(
                        ("tags", b_name, "address"),
                        f"registers {b_start}-{b_end - 1} partly overlap tag '{a_name}' "
                        f"({a_start}-{a_end - 1}); a register range may be read again only whole",
                    )
                )
    return issues


def check_node_paths(p: WrittenProfile) -> list[ConfigIssue]:
    """Browse path segments name their namespace by an alias the profile defines."""
    aliases = p.spec.opcua.namespaces
    issues = []
    for name, node in p.spec.nodes.items():
        if node.path is None:
            continue
        for segment in node.path.split("/"):
            alias, _, browse_name = segment.rpartition(":")
            if not browse_name:
                issues.append(p.loaded.issue(("nodes", name, "path"), f"empty segment in path '{node.path}'"))
            elif alias and alias not in aliases:
                hint = (
                    did_you_mean(alias, aliases) or f" (define it under opcua.namespaces: {sorted(aliases)})"
                )
                issues.append(
                    p.loaded.issue(("nodes", name, "path"), f"unknown namespace alias '{alias}'{hint}")
                )
    return issues


def check_role_tags(p: WrittenProfile) -> list[ConfigIssue]:
    """Counters, energy and the variant name tags the profile has."""
    spec = p.spec
    roles: list[tuple[str, str, str | None]] = []
    if spec.counters:
        roles += [("counters", f, getattr(spec.counters, f)) for f in ("produced", "good", "rejected")]
    if spec.energy:
        roles += [("energy", f, getattr(spec.energy, f)) for f in ("kwh", "power_kw")]
    roles.append(("variant", "", spec.variant))
    issues: list[ConfigIssue] = []
    for section, field, tag in roles:
        if tag is not None and tag not in p.tag_names:
            path = (section, field) if field else (section,)
            issues.append(p.loaded.issue(path, f"unknown tag '{tag}'{did_you_mean(tag, p.tag_names)}"))
    return issues


def check_default_rule_last(p: WrittenProfile) -> list[ConfigIssue]:
    """A rule without `when` matches always: only the last rule may omit it."""
    written_rules = p.loaded.data.get("state")
    rule_count = len(written_rules) if isinstance(written_rules, list) else 0
    return [
        p.loaded.issue(
            ("state", index), "a rule without 'when' matches always: only the last rule may omit it"
        )
        for index, rule in p.rules
        if rule.when is None and index < rule_count - 1
    ]


PROFILE_CHECKS: tuple[Callable[[WrittenProfile], list[ConfigIssue]], ...] = (
    check_profile_name,
    check_tag_layout,
    check_node_paths,
    check_role_tags,
    check_default_rule_last,
    check_counter_types,
    check_rule_comparisons,
)
# Accepted, but likely to give wrong figures some day: shown by validate and logged at start.
PROFILE_WARNINGS: tuple[Callable[[WrittenProfile], list[ConfigIssue]], ...] = (signed_counter_warnings,)
