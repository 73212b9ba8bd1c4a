"""Did-you-mean suggestions and the model walk that finds which keys were allowed."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from agent.config.lookalikes import as_ascii, lookalike_note, lookalikes


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """'; did you mean 'x'?' or '' — difflib, as ESPHome does. A word with a non-ASCII look-alike
    (a Cyrillic a, a full-width colon) is told which character it is, and matched as it was meant;
    a choice with one is never proposed as it is, but named as what differs only by it."""
    meant = as_ascii(word)
    plain: list[str] = []
    twins: list[str] = []
    for choice in choices:
        if not lookalikes(choice):
            plain.append(choice)
        elif as_ascii(choice) == meant:
            twins.append(choice)
    note = lookalike_note(word)
    hint = f"; {note}" if note else ""
    if twins:
        return f"{hint}; '{twins[0]}' looks the same but is not: {lookalike_note(twins[0])}"
    matches = difflib.get_close_matches(meant, plain, n=1, cutoff=0.6)
    return f"{hint}; did you mean '{matches[0]}'?" if matches else hint


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types an annotation may hold (Optional, unions and Annotated removed)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _is_tag_of(model: type[BaseModel], part: str | int) -> bool:
    return any(
        typing.get_origin(field.annotation) is typing.Literal and part in typing.get_args(field.annotation)
        for field in model.model_fields.values()
    )


def allowed_keys(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """Field names of the model found by following loc from the root model."""
    candidates: list[Any] = [model]
    for part in loc:
        following: list[Any] = []
        for current in candidates:
            origin = typing.get_origin(current)
            if isinstance(current, type) and issubclass(current, BaseModel):
                field = current.model_fields.get(str(part))
                if field is not None:
                    following.extend(_unwrap(field.annotation))
                elif _is_tag_of(current, part):  # a discriminated union's tag: stay on its member
                    following.append(current)
            elif origin in (tuple, list) and isinstance(part, int):
                following.extend(_unwrap(typing.get_args(current)[0]))
            elif origin is dict:
                following.extend(_unwrap(typing.get_args(current)[1]))
        candidates = following
    keys: list[str] = []
    for current in candidates:
        if isinstance(current, type) and issubclass(current, BaseModel):
            keys.extend(current.model_fields)
    return keys


_QUOTED = re.compile(r"'([^']*)'")


def expected_choices(expected: str) -> list[str]:
    """pydantic's ctx['expected'] ("'a', 'b' or 'c'") as a list."""
    return _QUOTED.findall(expected)
