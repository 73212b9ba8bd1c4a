"""Load a workshop file and its device profiles into the frozen, cross-checked AgentConfig
(agent/config/compiled.py): YAML with positions, the schema (its errors translated by
schema_errors.py), the profiles from their folders, then every check of checks.py.

Every problem is collected (YAML syntax, schema, cross-references, register overlaps) and raised
together as one ConfigError whose lines read `FILE:LINE:COL: path: message`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from agent.config.checks import (
    PROFILE_CHECKS,
    PROFILE_WARNINGS,
    WORKSHOP_CHECKS,
    WrittenProfile,
    WrittenWorkshop,
)
from agent.config.compiled import AgentConfig, DeviceProfile
from agent.config.grid import grid_warnings
from agent.config.issues import ConfigError, ConfigIssue, SourceMark, format_path
from agent.config.paths import anchored
from agent.config.profile import Profile
from agent.config.salvage import WorkshopParts, salvage_profile
from agent.config.schema_errors import validate_model
from agent.config.secrets import resolve_secret_files
from agent.config.shipped import SHIPPED_PROFILES_LABEL, shipped_profiles_dir
from agent.config.suggest import did_you_mean
from agent.config.workshop import Workshop
from agent.config.yamlsource import LoadedYaml, load_yaml, number_warnings
from agent.kpi.rules import CompiledRule, RuleError, StateRules, compile_rule

LOCAL_PROFILES = "devices"  # the folder next to the workshop file searched first for profiles


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
    written = WrittenWorkshop(parts, loaded, profiles)
    for check in WORKSHOP_CHECKS:
        issues += check(written)
    if issues or workshop is None:
        raise ConfigError(issues)
    return AgentConfig(
        anchored(workshop, path.absolute().parent),
        MappingProxyType(profiles),
        path,
        (
            *grid_warnings(loaded),
            *number_warnings(loaded, issues),
            *sorted({w for p in profiles.values() for w in p.warnings}),
        ),
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
    written = WrittenProfile(checked, indexed_rules, loaded, _written_tag_names(loaded.data), path)
    for check in PROFILE_CHECKS:
        issues += check(written)
    rules, rule_issues = _compile_rules(written)
    issues += rule_issues
    if issues or spec is None:
        return None, issues
    warnings = (*number_warnings(loaded, issues), *(w for check in PROFILE_WARNINGS for w in check(written)))
    return DeviceProfile(spec, path, StateRules(tuple(rules)), warnings), []


def _compile_rules(profile: WrittenProfile) -> tuple[list[CompiledRule], list[ConfigIssue]]:
    """The state rules as the KPI engine evaluates them; an expression naming an unknown tag or
    using what the evaluator refuses is an issue at its line."""
    rules: list[CompiledRule] = []
    issues: list[ConfigIssue] = []
    known_tags = frozenset(profile.tag_names)
    for index, rule in profile.rules:
        try:
            rules.append(compile_rule(rule.state, rule.when, rule.reason, known_tags))
        except RuleError as error:
            hint = did_you_mean(error.unknown[0], profile.tag_names) if len(error.unknown) == 1 else ""
            issues.append(profile.loaded.issue(("state", index, error.field), f"{error}{hint}"))
    return rules, issues


def _written_tag_names(data: dict[str, Any]) -> list[str]:
    """Every tag (or node) name the profile writes, valid or not: rules and roles may name a tag
    whose definition has an error without being told the tag is unknown."""
    for section in ("tags", "nodes"):
        if isinstance(data.get(section), dict) and data[section]:
            return [str(name) for name in data[section]]
    return []


__all__ = ["ConfigError", "format_path", "load_config", "load_profile"]
