"""State rules from device profiles: small expressions over tag values, evaluated safely.

Rules are data (YAML), so they are never passed to Python's eval. simpleeval parses them with
the ast module and evaluates only names, literals, comparisons, boolean and arithmetic operators;
no attribute access, no calls except the few listed in SAFE_FUNCTIONS.
"""

from __future__ import annotations

import ast
import math
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import simpleeval

from agent.kpi.states import MachineState

TagValue = bool | int | float | str | None

SAFE_FUNCTIONS: dict[str, Any] = {
    "abs": abs,
    "min": min,
    "max": max,
    "bit": lambda v, n: bool((int(v) >> int(n)) & 1),
}


class RuleError(ValueError):
    """A rule that cannot be compiled; the message says what and where in the expression."""

    def __init__(self, message: str, *, field: str = "when", unknown: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.field = field
        self.unknown = unknown


@dataclass(frozen=True)
class CompiledRule:
    state: MachineState
    expression: str | None  # None: the default rule, always true
    reason_template: str | None
    tree: ast.AST | None
    names: frozenset[str]
    reason_names: frozenset[str]


ALLOWED_NODES = (
    ast.Module,
    ast.Expr,
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Mod,
    ast.FloorDiv,
    ast.BitAnd,
    ast.BitOr,
    ast.RShift,
    ast.LShift,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Call,
    ast.Tuple,
    ast.IfExp,
)


def _check_constructs(expression: str, tree: ast.AST) -> None:
    """Only comparisons, arithmetic, boolean logic and the safe functions: a rule is data."""
    for node in ast.walk(tree):
        if not isinstance(node, ALLOWED_NODES):
            raise RuleError(f"{expression!r}: {type(node).__name__} is not allowed in a rule")
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in SAFE_FUNCTIONS
        ):
            allowed = ", ".join(sorted(SAFE_FUNCTIONS))
            raise RuleError(f"{expression!r}: only these functions may be called: {allowed}")


def _referenced_names(tree: ast.AST) -> frozenset[str]:
    return frozenset(
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name)
        and node.id not in SAFE_FUNCTIONS
        and node.id not in {"True", "False", "None"}
    )


def compile_rule(
    state: MachineState, expression: str | None, reason: str | None, known_tags: frozenset[str]
) -> CompiledRule:
    """Parse once at configuration time, so a typo is a config error, not a runtime surprise."""
    tree: ast.AST | None = None
    names: frozenset[str] = frozenset()
    if expression is not None:
        try:
            tree = simpleeval.SimpleEval.parse(expression)
        except SyntaxError as error:
            raise RuleError(f"cannot parse {expression!r}: {error.msg}") from None
        _check_constructs(expression, tree)
        names = _referenced_names(tree)
        unknown = sorted(names - known_tags)
        if unknown:
            raise RuleError(
                f"{expression!r} refers to unknown tag(s): {', '.join(unknown)}", unknown=tuple(unknown)
            )
    reason_names: frozenset[str] = frozenset()
    if reason is not None:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(reason) if f]
        except ValueError as error:
            raise RuleError(f"reason {reason!r}: {error}", field="reason") from None
        reason_names = frozenset(fields)
        unknown = sorted(reason_names - known_tags)
        if unknown:
            raise RuleError(
                f"reason {reason!r} refers to unknown tag(s): {', '.join(unknown)}",
                field="reason",
                unknown=tuple(unknown),
            )
    return CompiledRule(state, expression, reason, tree, names, reason_names)


@dataclass(frozen=True)
class StateVerdict:
    state: MachineState
    reason: str | None


class StateRules:
    """First matching rule wins; a rule whose tags are missing or bad never matches."""

    def __init__(self, rules: tuple[CompiledRule, ...]) -> None:
        self.rules = rules
        self._evaluator = simpleeval.SimpleEval(functions=SAFE_FUNCTIONS)

    def evaluate(self, values: Mapping[str, TagValue]) -> StateVerdict | None:
        for rule in self.rules:
            if rule.tree is not None:
                if any(_unusable(values.get(name)) for name in rule.names):
                    continue
                self._evaluator.names = dict(values)
                try:
                    matched = bool(self._evaluator.eval(rule.expression, previously_parsed=rule.tree))
                except (ArithmeticError, TypeError, ValueError, simpleeval.InvalidExpression):
                    continue
                if not matched:
                    continue
            return StateVerdict(rule.state, self._reason(rule, values))
        return None

    @staticmethod
    def _reason(rule: CompiledRule, values: Mapping[str, TagValue]) -> str | None:
        if rule.reason_template is None:
            return None
        shown = {name: _display(values.get(name)) for name in rule.reason_names}
        return rule.reason_template.format(**shown)


def _unusable(value: TagValue) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _display(value: TagValue) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "?" if value is None else str(value)
