"""Every word a person reads, in the plant's language: one catalogue, one data file per language.

    agent/i18n/<language>.yaml    e.g. en.yaml, zh-CN.yaml: nested sections of messages

A message is found by its dotted key (`view.title`, `state.producing`) and filled in with
str.format fields (`{shift}`). Every surface takes its words from here: the terminal view, the
shift summary, `status`, `plan`, `validate` and `run --once`, the Grafana dashboards
(deploy/grafana/generate.py) and the shift reports and workshop board built on the same records.
Adding a language is adding a file: tests/unit/test_i18n.py checks that every language has every
key, with the same fields, and that every key the code asks for exists. What the agent publishes
(MQTT topics and payload keys, InfluxDB measurements, tags and fields, state values) never depends
on the language.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agent.package_data import package_folder

DEFAULT_LANGUAGE = "en"
SUFFIX = ".yaml"


class CatalogueError(ValueError):
    """A language file that cannot be used; the message names the file and the key."""


def catalogue_dir() -> Path:
    """The package's i18n/ folder on disk (wheels install as plain files)."""
    return package_folder("i18n")


@functools.cache
def languages() -> tuple[str, ...]:
    """The languages there is a file for, the default first."""
    found = sorted(p.name.removesuffix(SUFFIX) for p in catalogue_dir().glob(f"*{SUFFIX}"))
    return (DEFAULT_LANGUAGE, *(name for name in found if name != DEFAULT_LANGUAGE))


def flatten(tree: Mapping[str, Any], source: Path, prefix: str = "") -> dict[str, str]:
    """Nested sections to dotted keys; every leaf is a message (a string)."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, source, f"{name}."))
        elif isinstance(value, str):
            flat[name] = value
        else:
            raise CatalogueError(f"{source}: {name}: a message is text, got {type(value).__name__}")
    return flat


def fields_of(message: str) -> frozenset[str]:
    """The str.format fields a message fills in: what every language's message must also use."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(message) if name)


@dataclass(frozen=True)
class Catalogue:
    language: str
    messages: Mapping[str, str]
    fallback: Mapping[str, str]  # the default language's, for a key a newer version added

    def __call__(self, key: str, **values: object) -> str:
        message = self.messages.get(key)
        if message is None:
            message = self.fallback.get(key)
        if message is None:
            raise KeyError(f"no message '{key}' in the catalogue")
        return message.format(**values) if values else message

    def state(self, state: str) -> str:
        """A machine state's name as people here say it (the published value stays the id)."""
        return self(f"state.{state}")

    def has(self, key: str) -> bool:
        return key in self.messages or key in self.fallback


def load_messages(language: str) -> dict[str, str]:
    path = catalogue_dir() / f"{language}{SUFFIX}"
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogueError(f"no language '{language}'; there are: {', '.join(languages())}") from None
    if not isinstance(tree, Mapping):
        raise CatalogueError(f"{path}: expected sections of messages")
    return flatten(tree, path)


@functools.cache
def catalogue(language: str = DEFAULT_LANGUAGE) -> Catalogue:
    messages = load_messages(language)
    fallback = messages if language == DEFAULT_LANGUAGE else load_messages(DEFAULT_LANGUAGE)
    return Catalogue(language, messages, fallback)
