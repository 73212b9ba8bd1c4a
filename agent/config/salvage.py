"""The parts of a file that are valid on their own, when the file as a whole is not.

Schema errors come from pydantic in one pass over the whole file. The checks across sections (a
unit used twice, an unknown line, overlapping shifts, a profile's overlapping registers) need
validated values; without salvage they would run only once the schema errors are fixed, and a
plant engineer would meet a second wave of errors. So every item (a machine, a tag, a shift) is
validated on its own, and the cross-checks run on those that pass. Nothing here reports errors:
the whole-file validation already did.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from agent.config.connections import Connection
from agent.config.profile import Profile, StateRuleSpec
from agent.config.workshop import (
    CalendarSection,
    CrewSpec,
    LineSpec,
    MachineSpec,
    MeterSpec,
    RotationSpec,
    ShiftSpec,
    Workshop,
)

Indexed = tuple[tuple[int, Any], ...]


@functools.cache
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def valid(annotation: Any, raw: Any) -> tuple[bool, Any]:
    """(True, the validated value) or (False, None)."""
    try:
        return True, _adapter(annotation).validate_python(raw)
    except ValidationError:
        return False, None


def valid_items(annotation: Any, raw: Any) -> tuple[tuple[int, Any], ...]:
    """The items of a YAML list that validate, with their index in the file."""
    if not isinstance(raw, list):
        return ()
    found = []
    for index, item in enumerate(raw):
        ok, value = valid(annotation, item)
        if ok:
            found.append((index, value))
    return tuple(found)


def valid_entries(annotation: Any, raw: Any) -> dict[str, Any]:
    """The entries of a YAML mapping whose values validate."""
    if not isinstance(raw, dict):
        return {}
    found = {}
    for key, item in raw.items():
        ok, value = valid(annotation, item)
        if ok:
            found[str(key)] = value
    return found


def written_ids(raw: Any) -> tuple[tuple[int, str], ...] | None:
    """Every `id` written in a YAML list, valid item or not; None when the list itself is unusable
    (missing or not a list), so that references into it are not judged."""
    if not isinstance(raw, list):
        return None
    return tuple(
        (index, item["id"])
        for index, item in enumerate(raw)
        if isinstance(item, dict) and isinstance(item.get("id"), str)
    )


@dataclass(frozen=True)
class WorkshopParts:
    """The workshop's items that are valid on their own, each with its index in the file."""

    connections: tuple[tuple[int, Connection], ...]
    lines: tuple[tuple[int, LineSpec], ...]
    machines: tuple[tuple[int, MachineSpec], ...]
    meters: tuple[tuple[int, MeterSpec], ...]
    shifts: tuple[tuple[int, ShiftSpec], ...]
    crews: tuple[tuple[int, CrewSpec], ...]
    rotation: RotationSpec | None
    # every id written per section, also of invalid items: a reference to a machine whose `kind`
    # is wrong is not an unknown machine. None: the section is unusable, references are not judged.
    ids: Mapping[str, tuple[tuple[int, str], ...] | None]
    profile_references: tuple[tuple[str, int, str], ...]  # (section, index, profile name)
    profiles_dir: str | None

    @classmethod
    def of(cls, workshop: Workshop) -> WorkshopParts:
        connections = tuple(enumerate(workshop.connections))
        lines = tuple(enumerate(workshop.lines))
        machines = tuple(enumerate(workshop.machines))
        meters = tuple(enumerate(workshop.meters))
        return cls(
            connections=connections,
            lines=lines,
            machines=machines,
            meters=meters,
            shifts=tuple(enumerate(workshop.calendar.shifts)),
            crews=tuple(enumerate(workshop.calendar.crews)),
            rotation=workshop.calendar.rotation,
            ids={
                "connections": tuple((i, c.id) for i, c in connections),
                "lines": tuple((i, x.id) for i, x in lines),
                "machines": tuple((i, m.id) for i, m in machines),
                "meters": tuple((i, m.id) for i, m in meters),
            },
            profile_references=(
                *(("machines", i, m.profile) for i, m in machines),
                *(("meters", i, m.profile) for i, m in meters),
            ),
            profiles_dir=workshop.profiles_dir,
        )

    @classmethod
    def salvage(cls, data: dict[str, Any]) -> WorkshopParts:
        calendar = data.get("calendar")
        if not isinstance(calendar, dict):
            calendar = {}
        ok_rotation, rotation = valid(RotationSpec, calendar.get("rotation"))
        ids = {name: written_ids(data.get(name)) for name in ("connections", "lines", "machines", "meters")}
        if "meters" not in data:
            ids["meters"] = ()  # optional: no meters is a valid answer
        references = tuple(
            (section, index, item["profile"])
            for section in ("machines", "meters")
            if isinstance(data.get(section), list)
            for index, item in enumerate(data[section])
            if isinstance(item, dict) and isinstance(item.get("profile"), str)
        )
        ok, profiles_dir = valid(field_type(Workshop.model_fields["profiles_dir"]), data.get("profiles_dir"))
        return cls(
            connections=valid_items(_item_type(Workshop, "connections"), data.get("connections")),
            lines=valid_items(LineSpec, data.get("lines")),
            machines=valid_items(MachineSpec, data.get("machines")),
            meters=valid_items(MeterSpec, data.get("meters")),
            shifts=valid_items(_item_type(CalendarSection, "shifts"), calendar.get("shifts")),
            crews=valid_items(CrewSpec, calendar.get("crews")),
            rotation=rotation if ok_rotation else None,
            ids=ids,
            profile_references=references,
            profiles_dir=profiles_dir if ok else None,
        )


def field_type(field: FieldInfo) -> Any:
    """A model field's type with its constraints (pydantic keeps `Field(ge=...)` apart as metadata)."""
    return Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation


def _item_type(model: type[BaseModel], field: str) -> Any:
    """X of a `tuple[X, ...]` field, with its Annotated discriminator kept."""
    return typing.get_args(model.model_fields[field].annotation)[0]


def salvage_profile(data: dict[str, Any]) -> tuple[Profile, tuple[tuple[int, StateRuleSpec], ...]]:
    """A profile built from its valid fields (invalid ones take their defaults, invalid tags and
    nodes are left out) for the layout and reference checks, and its valid state rules by index."""
    fields: dict[str, Any] = {}
    for name, field in Profile.model_fields.items():
        if name not in data or name == "state":
            continue
        if name in ("tags", "nodes"):
            fields[name] = valid_entries(typing.get_args(field.annotation)[1], data[name])
            continue
        ok, value = valid(field_type(field), data[name])
        if ok:
            fields[name] = value
    return Profile.model_construct(**fields), valid_items(StateRuleSpec, data.get("state"))
