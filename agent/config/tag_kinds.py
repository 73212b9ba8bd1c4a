"""What a tag's type lets it be used for: a counter counts, a rule compares like with like.

The schema judges a tag on its own and the rule compiler judges a rule's names; neither sees that
a parts counter declared as text can never count, or that `program == 3` on a text tag is never
true (and `program > 3` fails at every poll, leaving the machine's state unknown). These checks
read the profile as a whole and say so at the line, as errors; a signed counter, which works
until it passes its signed maximum, is a warning.

A Modbus tag's kind follows from its type; a tag or node with a value map (`values:`) is text
(its names); an OPC UA node without one is typed by its server, so it is not judged.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from enum import StrEnum
from typing import TYPE_CHECKING

from agent.config.issues import ConfigIssue, ConfigPath
from agent.config.profile import DataType, NodeSpec, TagSpec
from agent.config.suggest import did_you_mean
from agent.kpi.rules import MAX_EXPRESSION_CHARS

if TYPE_CHECKING:
    from agent.config.checks import WrittenProfile

SIGNED_COUNTER_TYPES = {
    DataType.INT16: DataType.UINT16,
    DataType.INT32: DataType.UINT32,
    DataType.INT64: DataType.UINT64,
}
ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
MEMBERSHIP = (ast.In, ast.NotIn)
NEVER_TRUE = "is never true"
FAILS = "fails at every poll (the state is then unknown)"  # Python refuses to order text and numbers


class Kind(StrEnum):
    NUMBER = "a number"
    TEXT = "text"
    YES_NO = "a yes/no value"


def tag_kind(spec: TagSpec | NodeSpec) -> Kind | None:
    """What a tag's values are when a rule or a counter sees them; None: only the server knows."""
    if spec.values is not None:
        return Kind.TEXT
    if isinstance(spec, NodeSpec):
        return None
    if spec.type is DataType.STRING:
        return Kind.TEXT
    if spec.type is DataType.BOOL:
        return Kind.YES_NO
    return Kind.NUMBER


def _described(spec: TagSpec | NodeSpec) -> str:
    if spec.values is not None:
        return f"has a value map (its values are the names {', '.join(spec.values.values())})"
    if isinstance(spec, TagSpec):
        return f"is {tag_kind(spec)} (type {spec.type.value})"
    return "is typed by the server"


def _counting_roles(p: WrittenProfile) -> Iterator[tuple[ConfigPath, str, str]]:
    """(where, tag, what it counts) for every tag the profile says counts parts or energy."""
    spec = p.spec
    if spec.counters is not None:
        for field in ("produced", "good", "rejected"):
            tag = getattr(spec.counters, field)
            if tag is not None:
                yield ("counters", field), tag, "parts"
    if spec.energy is not None:
        yield ("energy", "kwh"), spec.energy.kwh, "kWh"


def check_counter_types(p: WrittenProfile) -> list[ConfigIssue]:
    """A parts counter and a kWh register hold numbers: text or a yes/no value never counts."""
    issues: list[ConfigIssue] = []
    for path, tag, counts in _counting_roles(p):
        spec = p.spec.tag_specs.get(tag)
        if spec is None or tag_kind(spec) in (Kind.NUMBER, None):
            continue
        issues.append(
            p.loaded.issue(
                path,
                f"tag '{tag}' {_described(spec)}, but it counts {counts}: a counter is a number "
                "register (e.g. uint32)",
            )
        )
    return issues


def signed_counter_warnings(p: WrittenProfile) -> list[ConfigIssue]:
    """A signed counter reads negative past its signed maximum, and a fall is a reset, not a wrap:
    the same register read unsigned counts on (the agent's wrap rule is for unsigned registers)."""
    warnings: list[ConfigIssue] = []
    for path, tag, counts in _counting_roles(p):
        spec = p.spec.tags.get(tag)
        if spec is None or spec.type not in SIGNED_COUNTER_TYPES or spec.values is not None:
            continue
        unsigned = SIGNED_COUNTER_TYPES[spec.type]
        limit = 2 ** (16 * spec.type.registers - 1) - 1
        warnings.append(
            p.loaded.issue(
                path,
                f"tag '{tag}' counts {counts} as {spec.type.value}: past {limit} it reads negative and "
                f"the agent takes that as a counter reset, not a wrap; read the same register as "
                f"{unsigned.value} (type: {unsigned.value}) unless the device resets it well before",
            )
        )
    return warnings


def _constant_kind(node: ast.expr) -> tuple[Kind, object] | None:
    if not isinstance(node, ast.Constant):
        return None
    if isinstance(node.value, bool):
        return Kind.YES_NO, node.value
    if isinstance(node.value, int | float):
        return Kind.NUMBER, node.value
    if isinstance(node.value, str):
        return Kind.TEXT, node.value
    return None


def _pairs(compare: ast.Compare) -> Iterator[tuple[ast.cmpop, ast.expr, ast.expr]]:
    """Each operator with its two sides (`a < b < c` is two comparisons)."""
    sides = [compare.left, *compare.comparators]
    for index, op in enumerate(compare.ops):
        yield op, sides[index], sides[index + 1]


def _mismatch(p: WrittenProfile, op: ast.cmpop, tag_node: ast.expr, other: ast.expr) -> str | None:
    """Why comparing this tag with this constant cannot mean what it says, or None."""
    if not isinstance(tag_node, ast.Name):
        return None
    spec = p.spec.tag_specs.get(tag_node.id)
    constants = other.elts if isinstance(op, MEMBERSHIP) and isinstance(other, ast.Tuple) else [other]
    kind = tag_kind(spec) if spec is not None else None
    if spec is None or kind is None:
        return None
    for constant in constants:
        found = _constant_kind(constant)
        if found is None:
            continue
        other_kind, value = found
        shown = f"'{value}'" if other_kind is Kind.TEXT else str(value)
        if kind is Kind.TEXT and other_kind is Kind.TEXT and spec.values is not None:
            names = list(spec.values.values())
            if value not in names:
                return (
                    f"'{tag_node.id}' has no value named {shown}: its names are "
                    f"{', '.join(names)}{did_you_mean(str(value), names)}"
                )
            continue
        if kind is other_kind or (kind is Kind.YES_NO and other_kind is Kind.NUMBER):
            continue  # a bit compared with 0 or 1 means what it says
        outcome = NEVER_TRUE if not isinstance(op, ORDERING) else FAILS
        return (
            f"'{tag_node.id}' {_described(spec)}, compared with {other_kind} {shown}: the rule {outcome}; "
            f"{_fix(tag_node.id, spec, kind, value)}"
        )
    return None


def _fix(tag: str, spec: TagSpec | NodeSpec, kind: Kind, value: object) -> str:
    if spec.values is not None:
        return f"compare with one of its names in quotes, e.g. {tag} == '{next(iter(spec.values.values()))}'"
    if kind is Kind.TEXT:
        return f"compare with text in quotes, e.g. {tag} == '{value}'"
    if kind is Kind.NUMBER:
        return "compare with a number, or give the tag a value map (values:) to name its numbers"
    return f"use the tag itself (`{tag}` or `not {tag}`)"


def check_rule_comparisons(p: WrittenProfile) -> list[ConfigIssue]:
    """A rule compares a tag with a constant of the tag's own kind (and a value-mapped tag with
    one of its names)."""
    issues: list[ConfigIssue] = []
    for index, rule in p.rules:
        if rule.when is None or len(rule.when) > MAX_EXPRESSION_CHARS:
            continue  # too long: the rule compiler says so, and nothing here is parsed twice
        try:
            tree = ast.parse(rule.when.strip(), mode="eval")
        except (SyntaxError, RecursionError, MemoryError, ValueError):
            continue  # the rule compiler reports what cannot be parsed
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            for op, left, right in _pairs(node):
                problem = _mismatch(p, op, left, right) or (
                    None if isinstance(op, MEMBERSHIP) else _mismatch(p, op, right, left)
                )
                if problem is not None:
                    issues.append(p.loaded.issue(("state", index, "when"), problem))
    return issues
