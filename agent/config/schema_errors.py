"""Schema errors as a plant engineer reads them: pydantic's validation errors translated into
issues at their file, line and column, with what a pattern means and a did-you-mean for unknown
keys and choices."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agent.config.connections import OPCUA_URL_PATTERN
from agent.config.issues import ConfigIssue, format_path
from agent.config.lookalikes import lookalike_note
from agent.config.models import DISPLAY_NAME_PATTERN, IDENTIFIER_PATTERN
from agent.config.outputs import SPARKPLUG_ID_PATTERN, URL_PATTERN
from agent.config.suggest import allowed_keys, did_you_mean, expected_choices
from agent.config.workshop import CT_RATIO_PATTERN, HHMM_PATTERN
from agent.config.yamlsource import LoadedYaml

ModelT = TypeVar("ModelT", bound=BaseModel)
PATTERN_MEANING = {
    IDENTIFIER_PATTERN: "use lower-case letters, digits, '-', '_' or '.' (ids become MQTT topic levels "
    "and InfluxDB tags)",
    HHMM_PATTERN: "expected a local time as HH:MM, e.g. 08:00",
    URL_PATTERN: "expected an http:// or https:// URL",
    OPCUA_URL_PATTERN: "expected opc.tcp://host:port[/path], e.g. opc.tcp://10.0.1.50:4840",
    CT_RATIO_PATTERN: "expected the current transformer's primary/secondary amperes, e.g. 200/5",
    DISPLAY_NAME_PATTERN: "a name is one line: no line breaks or tabs",
    SPARKPLUG_ID_PATTERN: "a Sparkplug id is 1 to 64 characters without '/', '+', '#' or spaces (it is a "
    "topic level: spBv1.0/<group_id>/NBIRTH/<edge_node_id>)",
}


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
    """The issue, and why the value may not be what the person sees: how YAML 1.1 read it
    (`no` is false), or a character in it that only looks like ASCII (a full-width digit)."""
    issue = _translated(model, loaded, detail)
    if detail["type"] == "extra_forbidden":
        return issue  # about the key: its did-you-mean says what there is to say
    reading = loaded.readings.get(_data_path(loaded.data, tuple(detail["loc"])))
    written = detail.get("input")
    note = lookalike_note(written) if isinstance(written, str) else ""
    extra = "".join(f"; {hint}" for hint in (str(reading or ""), note) if hint)
    return ConfigIssue(issue.mark, issue.path, issue.message + extra) if extra else issue


def _translated(model: type[BaseModel], loaded: LoadedYaml, detail: Any) -> ConfigIssue:
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
