"""Shared pieces of the configuration schema."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field

# Identifiers end up in MQTT topics and InfluxDB tags: no '/', '+', '#', spaces or upper case.
IDENTIFIER_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
Identifier = Annotated[
    str, Field(pattern=IDENTIFIER_PATTERN, description="lower-case id, topic- and tag-safe")
]
PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
# What people read next to the ids: any language, one line. Bounded so a view stays readable.
MAX_DISPLAY_NAME = 64
DISPLAY_NAME_PATTERN = r"^[^\n\r\t]*$"
DisplayName = Annotated[
    str,
    Field(max_length=MAX_DISPLAY_NAME, pattern=DISPLAY_NAME_PATTERN, description="any language, one line"),
]


class StrictModel(BaseModel):
    """Unknown keys are errors; after validation the configuration is immutable."""

    # defer_build: a model's own validator is built when first used, not at import. Nested models
    # are validated inside the section that holds them, so only the models validated on their own
    # build one (1.2 MB less peak RSS at 200 x 50, issue 21).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)

    # Fields naming a file or folder: relative to the workshop file, wherever the agent is started
    # (agent/config/paths.py). A section or an item that has such fields names them here.
    path_fields: ClassVar[tuple[str, ...]] = ()
