"""YAML loading that remembers where every value came from.

PyYAML's composer gives every node a start mark; we walk the node tree ourselves so that each
value's path (('machines', 3, 'profile')) maps to its file:line:col. Two things plain
`yaml.safe_load` gets wrong for a configuration file are handled here: duplicate keys (silently
last-wins in PyYAML) are errors, and `${ENV_VAR}` references are substituted with a clear error
when the variable is not set.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.config.issues import ConfigIssue, ConfigPath, SourceMark, format_path

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class LoadedYaml:
    """Plain Python data plus the source position of every value and key."""

    file: str
    data: Any
    value_marks: dict[ConfigPath, SourceMark] = field(default_factory=dict)
    key_marks: dict[ConfigPath, SourceMark] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)

    def mark_for(self, path: ConfigPath, *, key: bool = False) -> SourceMark:
        """The closest known position: the value (or key) itself, else its nearest parent."""
        marks = self.key_marks if key else self.value_marks
        for length in range(len(path), -1, -1):
            prefix = path[:length]
            if prefix in marks:
                return marks[prefix]
            if prefix in self.value_marks:
                return self.value_marks[prefix]
        return SourceMark(self.file, 1, 1)

    def issue(self, path: ConfigPath, message: str, *, key: bool = False) -> ConfigIssue:
        return ConfigIssue(self.mark_for(path, key=key), format_path(path), message)


def _mark(file: str, node: yaml.Node) -> SourceMark:
    return SourceMark(file, node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    def __init__(self, loaded: LoadedYaml, environ: dict[str, str]) -> None:
        self.loaded = loaded
        self.environ = environ
        self.constructor = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: ConfigPath) -> Any:
        self.loaded.value_marks[path] = _mark(self.loaded.file, node)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        value = self.constructor.construct_object(node, deep=True)
        if isinstance(value, str):
            return self._substitute_env(value, path)
        return value

    def _mapping(self, node: yaml.MappingNode, path: ConfigPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        self.constructor.flatten_mapping(node)  # resolves YAML merge keys (<<: *anchor)
        for key_node, value_node in node.value:
            key = self.constructor.construct_object(key_node, deep=True)
            key_text = str(key)
            child = (*path, key_text)
            if key_text in result:
                first = self.loaded.key_marks[child]
                self.loaded.issues.append(
                    ConfigIssue(
                        _mark(self.loaded.file, key_node),
                        format_path(child),
                        f"duplicate key (first defined at line {first.line})",
                    )
                )
                continue
            self.loaded.key_marks[child] = _mark(self.loaded.file, key_node)
            result[key_text] = self.build(value_node, child)
        return result

    def _substitute_env(self, text: str, path: ConfigPath) -> str:
        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in self.environ:
                return self.environ[name]
            if default is not None:
                return default
            self.loaded.issues.append(self.loaded.issue(path, f"environment variable ${{{name}}} is not set"))
            return ""

        return ENV_REFERENCE.sub(replace, text)


def load_yaml(path: Path, environ: dict[str, str] | None = None) -> LoadedYaml:
    """Parse one YAML file. Syntax errors become issues at their line, never exceptions."""
    file = str(path)
    loaded = LoadedYaml(file=file, data=None)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        loaded.issues.append(ConfigIssue(SourceMark(file, 1, 1), "<file>", error.strerror or ""))
        return loaded
    except UnicodeDecodeError as error:
        loaded.issues.append(ConfigIssue(SourceMark(file, 1, 1), "<file>", f"not UTF-8 text: {error.reason}"))
        return loaded
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = error.problem or error.context or "invalid YAML"
        loaded.issues.append(ConfigIssue(SourceMark(file, line, column), "<yaml>", f"YAML syntax: {problem}"))
        return loaded
    if root is None:
        loaded.issues.append(ConfigIssue(SourceMark(file, 1, 1), "<root>", "file is empty"))
        return loaded
    builder = _Builder(loaded, dict(os.environ if environ is None else environ))
    try:
        loaded.data = builder.build(root, ())
    except yaml.constructor.ConstructorError as error:
        mark = error.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        loaded.issues.append(ConfigIssue(SourceMark(file, line, column), "<yaml>", f"YAML: {error.problem}"))
    return loaded
