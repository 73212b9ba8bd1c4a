"""YAML loading that remembers where every value came from.

PyYAML's composer gives every node a start mark; we walk the node tree ourselves so that each
value's path (('machines', 3, 'profile')) maps to its file:line:col. Things plain
`yaml.safe_load` gets wrong for a configuration file are handled here:
- duplicate keys (silently last-wins in PyYAML) are errors;
- `${ENV_VAR}` references are substituted, with a clear error when the variable is not set;
- values YAML 1.1 reads as something else than the text written (`22:00` is the number 1320, in
  base 60; `0100` is 64, in octal; `yes`, `no`, `on`, `off` are yes/no values) are remembered
  with their reading, so an error about such a value says how it was read and to quote it (a key
  keeps the text written: `no:` is the key 'no', never 'False');
- values YAML reads as dates, times or numbers but cannot build (`2026-13-45`, `25:61` in a
  timestamp, a 5,000-digit integer) and characters YAML does not allow (NUL, control
  characters) are errors at their line and column, never tracebacks;
- the input is bounded, so any file is answered in well under a second and a few MB: its size
  (MAX_FILE_BYTES, checked before reading), its nesting (MAX_DEPTH, checked while composing,
  before Python's own recursion limit) and its values after expanding aliases and merge keys
  (MAX_VALUES, counted as they are built: a billion-laughs file stops at the bound, not at 3 GB).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.config.bounded import FileReadError, read_bounded
from agent.config.issues import ConfigIssue, ConfigPath, SourceMark, format_path
from agent.config.lookalikes import syntax_lookalike

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# A workshop of a few hundred machines is about 60 KB of YAML and 5,000 values, nested 6 deep
# (the 800-device benchmark workshop: 12,000); the bounds leave that room several times over and
# keep the worst file to a fraction of a second and some 30 MB.
MAX_FILE_BYTES = 1024 * 1024
MAX_VALUES = 50_000
MAX_DEPTH = 32
SECRET_KEYS = ("password", "token")  # never quoted in a message; may also come from <key>_file
MERGE_TAG = "tag:yaml.org,2002:merge"
PLAIN_COLLECTIONS = frozenset({"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"})
SCALAR_KINDS = {
    "tag:yaml.org,2002:timestamp": "a date or time",
    "tag:yaml.org,2002:int": "an integer",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "a yes/no value",
    "tag:yaml.org,2002:binary": "binary data",
}


class _LimitError(Exception):
    """A bound of MAX_DEPTH or MAX_VALUES was passed at this node."""

    def __init__(self, node_mark: yaml.Mark, message: str) -> None:
        super().__init__(message)
        self.mark = node_mark
        self.message = message


class _BoundedComposer(yaml.composer.Composer):
    """PyYAML's composer, counting nodes and depth as it goes: deep nesting is refused at its
    line before the recursive composer can exhaust Python's stack, and a flood of values before
    it fills memory."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.depth += 1
        self.nodes += 1
        try:
            if self.depth > MAX_DEPTH or self.nodes > MAX_VALUES:
                mark = self.peek_event().start_mark  # type: ignore[attr-defined] # the parser's
                if self.depth > MAX_DEPTH:
                    raise _LimitError(mark, f"nested more than {MAX_DEPTH} levels deep")
                raise _LimitError(mark, f"more than {MAX_VALUES} values")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _PythonLoader(
    yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, _BoundedComposer, yaml.resolver.Resolver
):
    """Scanner and parser in Python: where PyYAML was installed without libyaml."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _BoundedComposer.__init__(self)
        yaml.resolver.Resolver.__init__(self)


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _CLoader(CParser, _BoundedComposer, yaml.resolver.Resolver):
        """libyaml scans and parses (four times as fast), the bounded composer above builds the
        nodes from its events: the same nodes and marks as the Python loader, within the bounds."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _BoundedComposer.__init__(self)
            yaml.resolver.Resolver.__init__(self)

        get_single_node = _BoundedComposer.get_single_node  # not CParser's, which composes in C

    _Loader: type[_PythonLoader] | type[_CLoader] = _CLoader
else:
    _Loader = _PythonLoader


@dataclass
class LoadedYaml:
    """Plain Python data plus the source position of every value and key."""

    file: str
    data: Any
    value_marks: dict[ConfigPath, SourceMark] = field(default_factory=dict)
    key_marks: dict[ConfigPath, SourceMark] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)
    # values written without quotes that YAML 1.1 read as a number or a yes/no value, probably
    # meant as text (a time, an id): how it read them, said with any error about the value
    readings: dict[ConfigPath, Yaml11Reading] = field(default_factory=dict)

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


def _position(file: str, text: str, index: int) -> SourceMark:
    """The line and column of a character offset, as an editor counts them."""
    line = text.count("\n", 0, index) + 1
    return SourceMark(file, line, index - (text.rfind("\n", 0, index) + 1) + 1)


def _scalar_problem(node: yaml.ScalarNode, error: Exception, path: ConfigPath) -> str:
    """A value YAML recognised by its form but cannot build, in the words of its kind."""
    kind = SCALAR_KINDS.get(node.tag, "a value")
    text = node.value if len(node.value) <= 40 else f"{node.value[:40]}... ({len(node.value)} characters)"
    if path and path[-1] in SECRET_KEYS:  # never echoed: say what to do instead
        return f"read as {kind}, but not a valid one ({error}); quote a secret to keep it text"
    reason = str(error)
    if "digits" in reason and node.tag == "tag:yaml.org,2002:int":
        reason = "far more digits than any setting takes"
    return f"'{text}' is not valid as {kind}: {reason}"


OCTAL = re.compile(r"[-+]?0[0-7_]+")  # YAML 1.1's octal integers: 0100 is 64
OCTAL_READING = "the octal number {} (a leading 0: base 8)"
MAX_SHOWN = 40  # characters of a value quoted in a message


@dataclass(frozen=True)
class Yaml11Reading:
    """A value written without quotes that YAML 1.1 read as a number or a yes/no value: PyYAML
    follows YAML 1.1, where `22:00` is a number in base 60, `0100` an octal number (64) and
    yes/no/on/off are yes/no values (YAML 1.2 keeps the first as text, reads the second as 100
    and knows only true/false as yes/no values)."""

    text: str
    value: bool | int | float

    @property
    def is_number(self) -> bool:
        return not isinstance(self.value, bool)

    @property
    def shown(self) -> str:
        """The value as read, written short: 90, 1.5; an integer exact, unless it is very long."""
        if not isinstance(self.value, int):
            return f"{self.value:g}"
        digits = str(self.value)
        return digits if len(digits) <= MAX_SHOWN else f"of {len(digits)} digits"

    @property
    def octal(self) -> bool:
        return self.is_number and OCTAL.fullmatch(self.text) is not None

    def __str__(self) -> str:
        text = self.text if len(self.text) <= MAX_SHOWN else f"{self.text[:MAX_SHOWN]}..."
        if isinstance(self.value, bool):
            reading = f"the yes/no value {str(self.value).lower()}"
        elif self.octal:
            return f"{text} without quotes is read by YAML 1.1 as {OCTAL_READING.format(self.shown)}"
        else:
            reading = f"the number {self.shown} (digits with ':' count in base 60)"
        return f'{text} without quotes is read by YAML 1.1 as {reading}: write "{text}" in quotes for text'

    @property
    def warning(self) -> str:
        """Said when a number setting took the value without an error: maybe meant, maybe not."""
        if self.octal:
            meant = self.text.replace("_", "").lstrip("+0") or "0"
            return f"{self}; if you meant {meant}, write {meant} (without the leading 0)"
        return f"{self}; if {self.shown} is what you meant, write {self.shown}"


def yaml11_reading(node: yaml.ScalarNode, value: Any) -> Yaml11Reading | None:
    """How YAML 1.1 read a plain (unquoted) value that was probably meant otherwise, or None."""
    if node.style not in (None, ""):
        return None  # quoted or a block: text as written
    text = node.value
    if isinstance(value, bool):
        return Yaml11Reading(text, value) if text.lower() not in ("true", "false") else None
    if isinstance(value, int | float) and (":" in text or OCTAL.fullmatch(text)):
        return Yaml11Reading(text, value)
    return None


def number_warnings(loaded: LoadedYaml, issues: list[ConfigIssue]) -> list[ConfigIssue]:
    """A value like `1:30` (90) or `0100` (64) that a number setting took without an error: maybe
    meant, maybe not, so the file stays valid and the line is named (yes/no words where a yes/no
    is taken are meant, and say nothing)."""
    reported = {issue.path for issue in issues}
    return [
        loaded.issue(path, reading.warning)
        for path, reading in loaded.readings.items()
        if reading.is_number and format_path(path) not in reported
    ]


class _Builder:
    def __init__(self, loaded: LoadedYaml, environ: dict[str, str]) -> None:
        self.loaded = loaded
        self.environ = environ
        self.constructor = yaml.constructor.SafeConstructor()
        self.values = 0

    def _spend(self, node: yaml.Node, depth: int) -> None:
        """Count a value as it is built, aliases expanded: the bound on what a file can make."""
        self.values += 1
        if self.values > MAX_VALUES:
            raise _LimitError(
                node.start_mark,
                f"more than {MAX_VALUES} values once aliases (*name) and merge keys (<<) are expanded",
            )
        if depth > MAX_DEPTH:
            raise _LimitError(
                node.start_mark, f"nested more than {MAX_DEPTH} levels deep once aliases are expanded"
            )

    def build(self, node: yaml.Node, path: ConfigPath, depth: int = 0) -> Any:
        self._spend(node, depth)
        self.loaded.value_marks[path] = _mark(self.loaded.file, node)
        if isinstance(node, yaml.CollectionNode) and node.tag not in PLAIN_COLLECTIONS:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"the tag {node.tag!r} is not allowed: a configuration holds plain values",
                node.start_mark,
            )
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index), depth + 1) for index, item in enumerate(node.value)]
        if not isinstance(node, yaml.ScalarNode):
            return None
        value = self._scalar(node, path)
        if isinstance(value, str):
            return self._substitute_env(value, path)
        reading = yaml11_reading(node, value)
        if reading is not None:
            self.loaded.readings[path] = reading
        return value

    def _scalar(self, node: yaml.ScalarNode, path: ConfigPath) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError:
            raise
        except (ValueError, OverflowError, TypeError, ArithmeticError) as error:
            self.loaded.issues.append(
                ConfigIssue(
                    _mark(self.loaded.file, node), format_path(path), _scalar_problem(node, error, path)
                )
            )
            return node.value  # reported here; its text keeps the rest of the file checkable

    def _pairs(self, node: yaml.MappingNode, depth: int) -> list[tuple[yaml.Node, yaml.Node]]:
        """The mapping's own pairs, then those it merges (<<: *anchor or <<: [*a, *b]) in the order
        that decides: its own keys win over merged ones, and an earlier merged mapping over a later."""
        own: list[tuple[yaml.Node, yaml.Node]] = []
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != MERGE_TAG:
                own.append((key_node, value_node))
                continue
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise yaml.constructor.ConstructorError(
                        None, None, "<< merges mappings only (<<: *anchor or <<: [*a, *b])", source.start_mark
                    )
                self._spend(source, depth + 1)
                for pair in self._pairs(source, depth + 1):
                    self._spend(pair[0], depth + 1)
                    merged.append(pair)
        return own + merged

    def _mapping(self, node: yaml.MappingNode, path: ConfigPath, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        own = sum(1 for key_node, _ in node.value if key_node.tag != MERGE_TAG)
        for index, (key_node, value_node) in enumerate(self._pairs(node, depth)):
            if not isinstance(key_node, yaml.ScalarNode):
                self.loaded.issues.append(
                    ConfigIssue(
                        _mark(self.loaded.file, key_node),
                        format_path(path),
                        "a key must be a plain name, not a list or a mapping",
                    )
                )
                continue
            key_value = self._scalar(key_node, path)
            # a key is a name: `no:` or `22:00:` as written, not YAML 1.1's False or 79200
            key_text = key_node.value if yaml11_reading(key_node, key_value) else str(key_value)
            child = (*path, key_text)
            if key_text in result:
                if index >= own:
                    continue  # a merged default that the mapping (or an earlier merge) already set
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
            result[key_text] = self.build(value_node, child, depth + 1)
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


def _read_text(path: Path, loaded: LoadedYaml) -> str | None:
    file = loaded.file
    try:
        raw = read_bounded(path, MAX_FILE_BYTES, "configuration file")
    except FileReadError as error:
        loaded.issues.append(ConfigIssue(SourceMark(file, 1, 1), "<file>", str(error)))
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        where = _position(file, raw[: error.start].decode("utf-8", "replace"), error.start)
        loaded.issues.append(ConfigIssue(where, "<file>", f"not UTF-8 text: {error.reason}"))
        return None


def _lookalike_hint(text: str, end: int) -> str:
    """A full-width colon (or comma, bracket...) before a syntax error is most likely its cause:
    YAML reads only the ASCII ones."""
    found = syntax_lookalike(text, end)
    if found is None:
        return ""
    index, character = found
    line = text.count("\n", 0, index) + 1
    return (
        f"; probably because line {line} has {character}, which YAML does not read as one: switch the "
        "input method to English and retype it"
    )


def _compose(text: str, loaded: LoadedYaml) -> yaml.Node | None:
    file = loaded.file
    unprintable = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if unprintable is not None:  # YAML allows no NUL, no control characters but tab and line breaks
        loaded.issues.append(
            ConfigIssue(
                _position(file, text, unprintable.start()),
                "<yaml>",
                f"character U+{ord(unprintable.group()):04X} is not allowed in YAML (a control "
                "character or NUL; was a binary file saved over this one?)",
            )
        )
        return None
    loader = _Loader(text)
    try:
        node: yaml.Node | None = loader.get_single_node()
    except _LimitError as error:
        where = SourceMark(file, error.mark.line + 1, error.mark.column + 1)
        loaded.issues.append(ConfigIssue(where, "<yaml>", f"YAML: {error.message}"))
        return None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = error.problem or error.context or "invalid YAML"
        problem += _lookalike_hint(text, mark.index if mark else len(text))
        loaded.issues.append(ConfigIssue(SourceMark(file, line, column), "<yaml>", f"YAML syntax: {problem}"))
        return None
    except yaml.YAMLError as error:
        loaded.issues.append(ConfigIssue(SourceMark(file, 1, 1), "<yaml>", f"YAML: {error}"))
        return None
    finally:
        loader.dispose()
    return node


def load_yaml(path: Path, environ: dict[str, str] | None = None) -> LoadedYaml:
    """Parse one YAML file. Every problem becomes an issue at its line, never an exception."""
    file = str(path)
    loaded = LoadedYaml(file=file, data=None)
    text = _read_text(path, loaded)
    if text is None:
        return loaded
    root = _compose(text, loaded)
    if root is None:
        if not loaded.issues:
            loaded.issues.append(ConfigIssue(SourceMark(file, 1, 1), "<root>", "file is empty"))
        return loaded
    builder = _Builder(loaded, dict(os.environ if environ is None else environ))
    try:
        loaded.data = builder.build(root, ())
    except _LimitError as error:
        where = SourceMark(file, error.mark.line + 1, error.mark.column + 1)
        loaded.issues.append(ConfigIssue(where, "<yaml>", f"YAML: {error.message}"))
        loaded.data = None
    except yaml.constructor.ConstructorError as error:
        mark = error.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        loaded.issues.append(ConfigIssue(SourceMark(file, line, column), "<yaml>", f"YAML: {error.problem}"))
    return loaded
