"""Relative paths in a workshop file are relative to the file, wherever the agent is started.

`profiles_dir` and the `*_file` secrets always were; the state folder, the outbox, the records
file, certificates and keys are made so too, once, right after validation. Otherwise `run`
started in another folder than `simulate` or the service (WorkingDirectory=/var/lib/edge-agent)
would use another state folder, certificates and trust store than the engineer just set up.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from agent.config.models import StrictModel
from agent.config.workshop import Workshop

STDOUT = "-"  # outputs.file.path: records to standard output
ModelT = TypeVar("ModelT", bound=StrictModel)


def _anchor(value: str | None, base: Path) -> str | None:
    if value is None or value == STDOUT:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def anchored(workshop: Workshop, base: Path) -> Workshop:
    """The workshop with every relative file or folder path made relative to `base`: the fields
    each section names in its `path_fields`, in every section and item however deep."""
    return _anchored(workshop, base)


def _anchored(model: ModelT, base: Path) -> ModelT:
    update: dict[str, object] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        new: object
        if name in model.path_fields:
            new = _anchor(value, base)
        elif isinstance(value, StrictModel):
            new = _anchored(value, base)
        elif isinstance(value, tuple):
            items = tuple(_anchored(item, base) if isinstance(item, StrictModel) else item for item in value)
            new = value if all(a is b for a, b in zip(items, value, strict=True)) else items
        else:
            continue
        if new is not value:
            update[name] = new
    return model.model_copy(update=update) if update else model
