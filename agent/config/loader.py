"""Load a workshop file and its device profiles into frozen, cross-checked models.

Every problem is collected (YAML syntax, schema, cross-references, register overlaps) and raised
together as one ConfigError whose lines read `FILE:LINE:COL: path: message`.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agent.config.grid import check_grid, grid_warnings
from agent.config.holidays import holiday_sets
from agent.config.issues import ConfigError, ConfigIssue, SourceMark, format_path
from agent.config.models import DISPLAY_NAME_PATTERN, IDENTIFIER_PATTERN
from agent.config.paths import anchored
from agent.config.profile import Profile, TagSpec
from agent.config.roles import check_roles, own_energy_hint
from agent.config.salvage import WorkshopParts, salvage_profile
from agent.config.secrets import resolve_secret_files
from agent.config.shipped import SHIPPED_PROFILES_LABEL, shipped_profiles_dir
from agent.config.suggest import allowed_keys, did_you_mean, expected_choices
from agent.config.workshop import (
    CT_RATIO_PATTERN,
    HHMM_PATTERN,
    OPCUA_URL_PATTERN,
    URL_PATTERN,
    WORKSHOP_SCOPE,
    ConnectionBase,
    MachineSpec,
    MeterSpec,
    ShiftSpec,
    Workshop,
)
from agent.config.yamlsource import LoadedYaml, load_yaml
from agent.kpi.rules import CompiledRule, RuleError, StateRules, compile_rule

ModelT = TypeVar("ModelT", bound=BaseModel)
LOCAL_PROFILES = "devices"  # the folder next to the workshop file searched first for profiles
PATTERN_MEANING = {
    IDENTIFIER_PATTERN: "use lower-case letters, digits, '-', '_' or '.' (ids become MQTT topic levels "
    "and InfluxDB tags)",
    HHMM_PATTERN: "expected a local time as HH:MM, e.g. 08:00",
    URL_PATTERN: "expected an http:// or https:// URL",
    OPCUA_URL_PATTERN: "expected opc.tcp://host:port[/path], e.g. opc.tcp://10.0.1.50:4840",
    CT_RATIO_PATTERN: "expected the current transformer's primary/secondary amperes, e.g. 200/5",
    DISPLAY_NAME_PATTERN: "a name is one line: no line breaks or tabs",
}


@dataclass(frozen=True)
class DeviceProfile:
    spec: Profile
    file: Path
    rules: StateRules

    @property
    def name(self) -> str:
        return self.spec.name

    def wire_address(self, tag: TagSpec) -> int:
        """The protocol address (0-based) of a tag whose manual may count from 1."""
        return tag.address - self.spec.addressing


@dataclass(frozen=True)
class Device:
    """One polled device: a machine's controller or a meter, behind one connection."""

    id: str
    unit: int
    profile: DeviceProfile
    connection: str
    machine: MachineSpec | None
    meter: MeterSpec | None

    @property
    def node(self) -> str | None:
        """OPC UA: the device's object node, that its profile's browse paths start from."""
        spec = self.machine or self.meter
        return spec.node if spec is not None else None


@dataclass(frozen=True)
class AgentConfig:
    workshop: Workshop
    profiles: Mapping[str, DeviceProfile]
    source: Path
    warnings: tuple[ConfigIssue, ...] = ()  # accepted, but to be changed (a deprecated form)

    @functools.cached_property
    def version(self) -> str:
        """12 hex digits of a SHA-256 over the validated workshop and its profiles: which
        configuration is running, unchanged by comments or formatting, changed by a profile edit."""
        content = {
            "workshop": self.workshop.model_dump(mode="json"),
            "profiles": {name: p.spec.model_dump(mode="json") for name, p in sorted(self.profiles.items())},
        }
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def devices(self) -> Iterator[Device]:
        for machine in self.workshop.machines:
            profile = self.profiles[machine.profile]
            yield Device(machine.id, machine.unit, profile, machine.connection, machine, None)
        for meter in self.workshop.meters:
            profile = self.profiles[meter.profile]
            yield Device(meter.id, meter.unit, profile, meter.connection, None, meter)

    def devices_on(self, connection: ConnectionBase) -> list[Device]:
        return [device for device in self.devices() if device.connection == connection.id]


def validate_model(model: type[ModelT], loaded: LoadedYaml) -> tuple[ModelT | None, list[ConfigIssue]]:
    """Validate loaded YAML against a model, translating pydantic's errors to positioned issues."""
    try:
        return model.model_validate(loaded.data), []
    except ValidationError as error:
        details = error.errors()
    already = {issue.path for issue in loaded.issues}
    locs = [_data_path(loaded.data, tuple(d["loc"])) for d in details]
    issues = []
    for detail, loc in zip(details, locs, strict=True):
        if format_path(loc) in already:
            continue  # e.g. an unset ${ENV}: that is the problem to report, not the empty value
        if detail["type"] == "too_short" and any(len(o) > len(loc) and o[: len(loc)] == loc for o in locs):
            continue  # pydantic re-reports a list whose only item failed as too short
        issues.append(_translate(model, loaded, detail))
    return None, issues


def _data_path(data: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """pydantic puts a discriminated union's tag into error locations (connections.0.modbus-rtu.x);
    the YAML has no such level, so it is left out to find the line."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part not in node and part in node.values():
            continue
        path.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(path)


def _translate(model: type[BaseModel], loaded: LoadedYaml, detail: Any) -> ConfigIssue:
    model_loc: tuple[str | int, ...] = tuple(detail["loc"])
    loc = _data_path(loaded.data, model_loc)
    kind = detail["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        hint = did_you_mean(key, allowed_keys(model, model_loc[:-1]))
        return loaded.issue(loc, f"unknown key '{key}'{hint}", key=True)
    if kind == "missing":
        return loaded.issue(loc, "required key is missing")
    message = detail["msg"]
    if kind == "string_pattern_mismatch":
        message = PATTERN_MEANING.get(detail["ctx"]["pattern"], message)
    if kind == "union_tag_invalid":
        tag, expected = str(detail["ctx"]["tag"]), str(detail["ctx"]["expected_tags"])
        return loaded.issue(
            (*loc, detail["ctx"]["discriminator"].strip("'")),
            f"'{tag}' is not one of {expected}{did_you_mean(tag, expected_choices(expected))}",
        )
    if kind in ("literal_error", "enum") and isinstance(detail.get("input"), str):
        message = f"'{detail['input']}' is not one of {detail['ctx']['expected']}"
        message += did_you_mean(detail["input"], expected_choices(detail["ctx"]["expected"]))
    elif message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    return loaded.issue(loc, message)


def load_config(path: Path, environ: dict[str, str] | None = None) -> AgentConfig:
    """Load and check everything; raise ConfigError with all problems found.

    Schema errors do not stop the other checks: the parts of the file that are valid on their
    own (salvage.py) are still cross-checked, so every problem is reported in one pass."""
    try:
        return _load_config(path, environ)
    except (RecursionError, MemoryError) as error:
        # The YAML bounds keep every file far from these; should one still get here, it is still
        # a file that cannot be used, answered as one (exit 2, a positioned line), not a traceback.
        problem = "nested too deeply" if isinstance(error, RecursionError) else "too large"
        raise ConfigError(
            [ConfigIssue(SourceMark(str(path), 1, 1), "<file>", f"cannot be loaded: {problem}")]
        ) from None


def _load_config(path: Path, environ: dict[str, str] | None) -> AgentConfig:
    loaded = load_yaml(path, environ)
    issues = list(loaded.issues)
    if loaded.data is None:
        raise ConfigError(issues)
    if not isinstance(loaded.data, dict):
        raise ConfigError([*issues, loaded.issue((), "expected a mapping of sections")])
    issues += resolve_secret_files(loaded, path.parent)
    workshop, schema_issues = validate_model(Workshop, loaded)
    issues += schema_issues
    parts = WorkshopParts.of(workshop) if workshop is not None else WorkshopParts.salvage(loaded.data)
    folders = profile_folders(path, parts.profiles_dir)
    profiles, profile_issues = _load_profiles(parts, loaded, folders, environ)
    issues += profile_issues
    issues += _cross_check(parts, loaded, profiles)
    issues += check_roles(parts, loaded, profiles)
    issues += check_grid(loaded)
    if issues or workshop is None:
        raise ConfigError(issues)
    return AgentConfig(
        anchored(workshop, path.absolute().parent),
        MappingProxyType(profiles),
        path,
        tuple(grid_warnings(loaded)),
    )


@dataclass(frozen=True)
class ProfileFolder:
    """One place device profiles are looked up, and what it holds."""

    path: Path
    label: str  # as the person wrote it or knows it
    shipped: bool = False

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.path.glob("*.yaml")) if self.path.is_dir() else []

    def describe(self) -> str:
        if self.shipped:
            return f"the {len(self.names())} {self.label}"
        if not self.path.is_dir():
            return f"{self.label} (no such folder)"
        count = len(self.names())
        return f"{self.label} ({count} profile{'' if count == 1 else 's'})"


def profile_folders(workshop_file: Path, profiles_dir: str | None) -> list[ProfileFolder]:
    """Where profiles are looked up, first match wins: the workshop's own devices/ folder, then
    `profiles_dir` (relative to the workshop file), then the profiles shipped with the agent."""
    base = workshop_file.parent
    folders = [ProfileFolder(base / LOCAL_PROFILES, str(base / LOCAL_PROFILES))]
    if profiles_dir is not None:
        extra = base / profiles_dir
        if extra.resolve() != folders[0].path.resolve():
            folders.append(ProfileFolder(extra, str(extra)))
    folders.append(ProfileFolder(shipped_profiles_dir(), SHIPPED_PROFILES_LABEL, shipped=True))
    return folders


def _load_profiles(
    parts: WorkshopParts, loaded: LoadedYaml, folders: list[ProfileFolder], environ: dict[str, str] | None
) -> tuple[dict[str, DeviceProfile], list[ConfigIssue]]:
    issues: list[ConfigIssue] = []
    found: dict[str, Path] = {}
    for folder in reversed(folders):  # earlier folders override later ones
        found.update({name: folder.path / f"{name}.yaml" for name in folder.names()})
    profiles: dict[str, DeviceProfile] = {}
    failed: set[str] = set()
    for section, index, name in parts.profile_references:
        if name in profiles or name in failed:
            continue
        if name not in found:
            searched = ", ".join(f.describe() for f in folders[:-1]) + f" and {folders[-1].describe()}"
            issues.append(
                loaded.issue(
                    (section, index, "profile"),
                    f"unknown profile '{name}'; searched {searched}{did_you_mean(name, found)}",
                )
            )
            failed.add(name)
            continue
        profile, problems = load_profile(found[name], environ)
        issues += problems
        if profile is None:
            failed.add(name)
        else:
            profiles[name] = profile
    return profiles, issues


def load_profile(
    path: Path, environ: dict[str, str] | None = None
) -> tuple[DeviceProfile | None, list[ConfigIssue]]:
    loaded = load_yaml(path, environ)
    if loaded.data is None:
        return None, list(loaded.issues)
    if not isinstance(loaded.data, dict):
        return None, [*loaded.issues, loaded.issue((), "expected a mapping (name, kind, tags or nodes...)")]
    spec, issues = validate_model(Profile, loaded)
    issues = [*loaded.issues, *issues]
    # with schema errors, the layout and reference checks still run on the valid parts
    checked, indexed_rules = (spec, tuple(enumerate(spec.state))) if spec else salvage_profile(loaded.data)
    name = loaded.data.get("name")
    if isinstance(name, str) and name != path.stem:
        issues.append(
            loaded.issue(("name",), f"profile name '{name}' must match its file name '{path.stem}'")
        )
    tag_names = _written_tag_names(loaded.data)
    issues += _check_tag_layout(checked, loaded)
    issues += _check_node_paths(checked, loaded)
    issues += _check_roles(checked, tag_names, loaded)
    rules: list[CompiledRule] = []
    known_tags = frozenset(tag_names)
    for index, rule in indexed_rules:
        try:
            rules.append(compile_rule(rule.state, rule.when, rule.reason, known_tags))
        except RuleError as error:
            hint = did_you_mean(error.unknown[0], tag_names) if len(error.unknown) == 1 else ""
            issues.append(loaded.issue(("state", index, error.field), f"{error}{hint}"))
    written_rules = loaded.data.get("state")
    rule_count = len(written_rules) if isinstance(written_rules, list) else 0
    for index, rule in indexed_rules:
        if rule.when is None and index < rule_count - 1:
            issues.append(
                loaded.issue(
                    ("state", index),
                    "a rule without 'when' matches always: only the last rule may omit it",
                )
            )
    if issues or spec is None:
        return None, issues
    return DeviceProfile(spec, path, StateRules(tuple(rules))), []


def _written_tag_names(data: dict[str, Any]) -> list[str]:
    """Every tag (or node) name the profile writes, valid or not: rules and roles may name a tag
    whose definition has an error without being told the tag is unknown."""
    for section in ("tags", "nodes"):
        if isinstance(data.get(section), dict) and data[section]:
            return [str(name) for name in data[section]]
    return []


def _check_tag_layout(spec: Profile, loaded: LoadedYaml) -> list[ConfigIssue]:
    """Registers that partially overlap make no sense; the same range read twice is fine
    (a status word and its bit fields)."""
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
        if start + tag.width > 65536:
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


def _check_node_paths(spec: Profile, loaded: LoadedYaml) -> list[ConfigIssue]:
    """Browse path segments name their namespace by an alias the profile defines."""
    aliases = spec.opcua.namespaces
    issues = []
    for name, node in spec.nodes.items():
        if node.path is None:
            continue
        for segment in node.path.split("/"):
            alias, _, browse_name = segment.rpartition(":")
            if not browse_name:
                issues.append(loaded.issue(("nodes", name, "path"), f"empty segment in path '{node.path}'"))
            elif alias and alias not in aliases:
                hint = (
                    did_you_mean(alias, aliases) or f" (define it under opcua.namespaces: {sorted(aliases)})"
                )
                issues.append(
                    loaded.issue(("nodes", name, "path"), f"unknown namespace alias '{alias}'{hint}")
                )
    return issues


def _check_roles(spec: Profile, tag_names: list[str], loaded: LoadedYaml) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    roles: list[tuple[str, str, str | None]] = []
    if spec.counters:
        roles += [("counters", f, getattr(spec.counters, f)) for f in ("produced", "good", "rejected")]
    if spec.energy:
        roles += [("energy", f, getattr(spec.energy, f)) for f in ("kwh", "power_kw")]
    roles.append(("variant", "", spec.variant))
    for section, field, tag in roles:
        if tag is not None and tag not in tag_names:
            path = (section, field) if field else (section,)
            issues.append(loaded.issue(path, f"unknown tag '{tag}'{did_you_mean(tag, tag_names)}"))
    return issues


def _duplicates(
    loaded: LoadedYaml, items: Sequence[tuple[tuple[str | int, ...], str]], what: str
) -> list[ConfigIssue]:
    seen: dict[str, tuple[str | int, ...]] = {}
    issues: list[ConfigIssue] = []
    for path, ident in items:
        if ident in seen:
            first = loaded.mark_for(seen[ident])
            issues.append(loaded.issue(path, f"duplicate {what} '{ident}' (first at line {first.line})"))
        else:
            seen[ident] = path
    return issues


def _cross_check(
    parts: WorkshopParts, loaded: LoadedYaml, profiles: Mapping[str, DeviceProfile]
) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    ids = parts.ids

    def written(section: str, key: str = "id") -> list[tuple[tuple[str | int, ...], str]]:
        return [((section, i, key), ident) for i, ident in ids[section] or ()]

    issues += _duplicates(loaded, written("connections"), "connection id")
    issues += _duplicates(loaded, written("lines"), "line id")
    issues += _duplicates(loaded, [*written("machines"), *written("meters")], "machine/meter id")

    line_ids = _ids_or_none(ids["lines"])
    connection_ids = _ids_or_none(ids["connections"])
    machine_ids = _ids_or_none(ids["machines"])
    transports = {c.id: c.transport for _, c in parts.connections}
    endpoints: dict[tuple[str, int], tuple[tuple[str | int, ...], str]] = {}

    def reference(path: tuple[str | int, ...], value: str, choices: list[str] | None, what: str) -> None:
        if choices is not None and value not in choices:
            issues.append(loaded.issue(path, f"unknown {what} '{value}'{did_you_mean(value, choices)}"))

    def endpoint(path: tuple[str | int, ...], connection: str, unit: int, owner: str) -> None:
        if transports.get(connection) == "opcua":
            return  # devices on one OPC UA server are told apart by their nodes, not unit ids
        key = (connection, unit)
        if key in endpoints:
            issues.append(loaded.issue(path, _unit_used(key, endpoints[key], path, loaded)))
        endpoints[key] = (path, owner)

    for i, machine in parts.machines:
        reference(("machines", i, "line"), machine.line, line_ids, "line")
        reference(("machines", i, "connection"), machine.connection, connection_ids, "connection")
        endpoint(("machines", i, "unit"), machine.connection, machine.unit, machine.id)
        profile = profiles.get(machine.profile)
        if profile is not None and profile.spec.kind == "meter":
            issues.append(
                loaded.issue(
                    ("machines", i, "profile"),
                    f"'{machine.profile}' is a meter profile; list meters under 'meters'",
                )
            )
        if machine.ideal_cycle_by_variant and profile is not None and profile.spec.variant is None:
            issues.append(
                loaded.issue(
                    ("machines", i, "ideal_cycle_by_variant"),
                    f"profile '{machine.profile}' names no 'variant' tag to choose by",
                )
            )
        if machine.quality_from is not None:
            reference(("machines", i, "quality_from"), machine.quality_from, machine_ids, "machine")
    for i, meter in parts.meters:
        reference(("meters", i, "connection"), meter.connection, connection_ids, "connection")
        endpoint(("meters", i, "unit"), meter.connection, meter.unit, meter.id)
        if machine_ids is not None:
            reference(("meters", i, "measures"), meter.measures, [*machine_ids, WORKSHOP_SCOPE], "machine")
        profile = profiles.get(meter.profile)
        if profile is not None and profile.spec.energy is None:
            issues.append(
                loaded.issue(("meters", i, "profile"), f"profile '{meter.profile}' has no 'energy' section")
            )
    issues += _duplicates(
        loaded,
        [(("meters", i, "measures"), m.measures) for i, m in parts.meters if m.measures != WORKSHOP_SCOPE],
        "meter for machine",
    )
    # machines with schema errors: which line they are on is not known, so not judged
    unjudged = set(machine_ids or ()) - {m.id for _, m in parts.machines}
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
    issues += _check_protocols(parts, loaded, profiles)
    return [
        *issues,
        *_check_calendar(parts.shifts, loaded),
        *_check_crews(parts, loaded),
        *_check_days(loaded),
    ]


def _unit_used(
    key: tuple[str, int],
    first: tuple[tuple[str | int, ...], str],
    path: tuple[str | int, ...],
    loaded: LoadedYaml,
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


def _ids_or_none(written: tuple[tuple[int, str], ...] | None) -> list[str] | None:
    return None if written is None else [ident for _, ident in written]


def _check_protocols(
    parts: WorkshopParts, loaded: LoadedYaml, profiles: Mapping[str, DeviceProfile]
) -> list[ConfigIssue]:
    """A device's profile speaks its connection's protocol; an OPC UA device whose profile uses
    browse paths names the object they start from."""
    transports = {c.id: c.transport for _, c in parts.connections}
    issues = []
    devices: list[tuple[str, int, MachineSpec | MeterSpec]] = [
        *(("machines", i, m) for i, m in parts.machines),
        *(("meters", i, m) for i, m in parts.meters),
    ]
    for section, i, device in devices:
        profile, transport = profiles.get(device.profile), transports.get(device.connection)
        if profile is None or transport is None:
            continue
        wants = "opcua" if transport == "opcua" else "modbus"
        if profile.spec.protocol != wants:
            issues.append(
                loaded.issue(
                    (section, i, "profile"),
                    f"'{device.profile}' is a {profile.spec.protocol} profile, but connection "
                    f"'{device.connection}' is {transport}",
                )
            )
        elif wants == "opcua" and device.node is None and any(n.path for n in profile.spec.nodes.values()):
            issues.append(
                loaded.issue(
                    (section, i),
                    f"'{device.profile}' addresses nodes by browse path: give the device's object as 'node'",
                )
            )
    return issues


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _check_calendar(shifts: tuple[tuple[int, ShiftSpec], ...], loaded: LoadedYaml) -> list[ConfigIssue]:
    """Breaks lie inside their shift; shifts do not overlap one another."""
    day = 24 * 60
    issues: list[ConfigIssue] = []
    issues += _duplicates(
        loaded, [(("calendar", "shifts", i, "id" if s.id else "name"), s.key) for i, s in shifts], "shift id"
    )
    names = dict(shifts)
    occupied: list[tuple[int, int, int]] = []
    for i, shift in shifts:
        start = _minutes(shift.start)
        length = (_minutes(shift.end) - start) % day or day
        for j, brk in enumerate(shift.breaks):
            offset = (_minutes(brk.start) - start) % day
            brk_length = (_minutes(brk.end) - _minutes(brk.start)) % day
            if brk_length == 0 or offset + brk_length > length:
                issues.append(
                    loaded.issue(
                        ("calendar", "shifts", i, "breaks", j),
                        f"break {brk.start}-{brk.end} is not inside shift {shift.start}-{shift.end}",
                    )
                )
        for other_start, other_length, other in occupied:
            if (other_start - start) % day < length or (start - other_start) % day < other_length:
                name = names[other].display
                issues.append(loaded.issue(("calendar", "shifts", i), f"overlaps shift '{name}'"))
        occupied.append((start, length, i))
    return issues


def _check_crews(parts: WorkshopParts, loaded: LoadedYaml) -> list[ConfigIssue]:
    """A rotation names known shifts and crews, every shift on every day of its cycle; crews are
    named once and only with a rotation that puts them on shifts."""
    issues = _duplicates(loaded, [(("calendar", "crews", i, "id"), c.id) for i, c in parts.crews], "crew id")
    calendar = loaded.data.get("calendar") if isinstance(loaded.data, dict) else None
    written = calendar if isinstance(calendar, dict) else {}
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
    shifts_judged = isinstance(written.get("shifts"), list) and len(shift_ids) == len(written["shifts"])
    crew_ids = [c.id for _, c in parts.crews]
    crews_judged = isinstance(written.get("crews"), list) and len(crew_ids) == len(written["crews"])
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


def _check_days(loaded: LoadedYaml) -> list[ConfigIssue]:
    """The holiday set exists; a date is either a day off or a working day, not both."""
    calendar = loaded.data.get("calendar") if isinstance(loaded.data, dict) else None
    if not isinstance(calendar, dict):
        return []
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


__all__ = ["AgentConfig", "ConfigError", "Device", "DeviceProfile", "format_path", "load_config"]
