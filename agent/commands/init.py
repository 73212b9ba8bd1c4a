"""`edge-agent init DIR`: a starting workshop for a plant to edit, from a shipped example.

    DIR/workshop.yaml          the example workshop
    DIR/devices/<name>.yaml    the device profiles it uses (found first, before the shipped ones)

Existing files are never overwritten unless asked: a plant's edited workshop is its work.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from agent.config.loader import LOCAL_PROFILES, load_config
from agent.config.shipped import example

WORKSHOP_FILE = "workshop.yaml"


class InitError(Exception):
    """The workshop could not be written; the message says why."""


@dataclass(frozen=True)
class Written:
    workshop: Path
    profiles: tuple[Path, ...]


def planned_files(directory: Path, example_name: str) -> dict[Path, Path]:
    """target -> shipped source, for the example and every profile it uses."""
    source = example(example_name)
    config = load_config(source)
    files = {directory / WORKSHOP_FILE: source}
    for name in sorted(config.profiles):
        files[directory / LOCAL_PROFILES / f"{name}.yaml"] = config.profiles[name].file
    return files


def init_workshop(directory: Path, example_name: str, *, force: bool = False) -> Written:
    try:
        files = planned_files(directory, example_name)
    except KeyError as error:
        raise InitError(str(error.args[0])) from None
    existing = [target for target in files if target.exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        them = "them" if len(existing) > 1 else "it"
        raise InitError(f"not overwriting {names}: move {them} away, or give --force to replace {them}")
    try:
        for target, source in files.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    except OSError as error:
        raise InitError(f"cannot write {error.filename or directory}: {error.strerror or error}") from None
    workshop, *profiles = files
    return Written(workshop, tuple(profiles))
