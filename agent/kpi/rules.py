"""State rules from device profiles: small expressions over tag values, evaluated safely.

Rules are data (YAML), so they are never passed to Python's eval. simpleeval parses them with
the ast module and evaluates only names, literals, comparisons, boolean and arithmetic operators;
no attribute access, no calls except the few listed in SAFE_FUNCTIONS.

Bounds, checked when the profile is validated: an expression has at most MAX_EXPRESSION_CHARS
characters and MAX_EXPRESSION_DEPTH levels of nesting (so neither the parser nor the evaluator can
run out of stack), and a reason names tags as `{tag}`, optionally aligned in a width of at most
MAX_REASON_WIDTH (`{alarm_code:>6}`), nothing else. At run time a rule that fails to evaluate, for
any reason, gives the verdict `unknown`: the machine's time counts as offline with the flag
RULE_ERROR, and the reason names the rule and the error.
"""

from __future__ import annotations

import ast
import math
import re
import string
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

import simpleeval

from agent.kpi.states import MachineState
from agent.samples import TagValue

# A real rule is a line (`bit(status, 0) and spindle_load > 20`); five times that is still plenty.
MAX_EXPRESSION_CHARS = 500
MAX_EXPRESSION_DEPTH = 32  # nested operators and calls; `a > 1 and not b` is 3
MAX_REASON_CHARS = 200
MAX_REASON_WIDTH = 64
REASON_SPEC = re.compile(r"^(?:[<>^])?(\d{1,2})?$")  # align and width: {tag:>6}, {tag:^10}, {tag:8}
RULE_ERROR = "rule_error"  # the flag on a period whose time was unknown because a rule failed
RULE_ERROR_REASON = "rule error"
MAX_ERROR_TEXT = 160
MAX_RULE_QUOTE = 60  # how much of a failing rule its reason quotes

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
            raise RuleError(f"{_quote(expression)}: {type(node).__name__} is not allowed in a rule")
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in SAFE_FUNCTIONS
        ):
            allowed = ", ".join(sorted(SAFE_FUNCTIONS))
            raise RuleError(f"{_quote(expression)}: only these functions may be called: {allowed}")


def _quote(expression: str) -> str:
    """An expression as messages quote it: whole if short, its start if long."""
    if len(expression) <= MAX_RULE_QUOTE:
        return repr(expression)
    return f"{expression[:MAX_RULE_QUOTE]!r}..."


def _depth(tree: ast.AST) -> int:
    """How many expressions nest inside one another at the deepest point, counted without
    recursion (the tree may be deep): `status` is 1, `status > 1` 2, `not (status > 1)` 3."""
    deepest = 0
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.expr):
            depth += 1
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in ast.iter_child_nodes(node))
    return deepest


def _parse(expression: str) -> ast.AST:
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise RuleError(
            f"{_quote(expression)}: {len(expression)} characters; a rule may have at most "
            f"{MAX_EXPRESSION_CHARS} (split it into rules, first match wins)"
        )
    try:
        tree: ast.AST = simpleeval.SimpleEval.parse(expression)
    except SyntaxError as error:
        raise RuleError(f"cannot parse {_quote(expression)}: {error.msg}") from None
    except (RecursionError, MemoryError):
        raise RuleError(f"{_quote(expression)} is nested too deeply to parse") from None
    if _depth(tree) > MAX_EXPRESSION_DEPTH:
        raise RuleError(f"{_quote(expression)} nests more than {MAX_EXPRESSION_DEPTH} levels deep")
    return tree


def _reason_fields(reason: str) -> frozenset[str]:
    """The tags a reason names; only `{tag}` and `{tag:>WIDTH}` are allowed in it."""
    if len(reason) > MAX_REASON_CHARS:
        raise RuleError(f"reason of {len(reason)} characters; at most {MAX_REASON_CHARS}", field="reason")
    try:
        parts = list(string.Formatter().parse(reason))
    except ValueError as error:
        raise RuleError(f"reason {reason!r}: {error}", field="reason") from None
    names = set()
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not name.isidentifier():
            raise RuleError(
                f"reason {reason!r}: '{{{name}}}' must name a tag, as {{alarm_code}}", field="reason"
            )
        match = REASON_SPEC.match(spec or "")
        if conversion is not None or match is None or int(match.group(1) or 0) > MAX_REASON_WIDTH:
            raise RuleError(
                f"reason {reason!r}: only {{tag}} or an alignment in at most {MAX_REASON_WIDTH} "
                f"characters ({{tag:>6}}) is allowed, not '{{{name}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}}'",
                field="reason",
            )
        names.add(name)
    return frozenset(names)


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
        tree = _parse(expression)
        _check_constructs(expression, tree)
        names = _referenced_names(tree)
        unknown = sorted(names - known_tags)
        if unknown:
            raise RuleError(
                f"{_quote(expression)} refers to unknown tag(s): {', '.join(unknown)}", unknown=tuple(unknown)
            )
    reason_names: frozenset[str] = frozenset()
    if reason is not None:
        reason_names = _reason_fields(reason)
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
    error: str | None = None  # set when a rule failed: the state is unknown (offline, RULE_ERROR)
    known: bool = True  # False: a rule that could have matched reads a tag whose latest read failed


UNDETERMINED = StateVerdict(MachineState.OFFLINE, None, known=False)


class StateRules:
    """First matching rule wins; a rule whose tags are missing or bad never matches; a rule that
    fails to evaluate makes the state unknown rather than letting a later rule guess. A rule that
    reads a stale tag (its latest read failed) cannot be decided: when it comes before the rule
    that matches, the verdict is UNDETERMINED (its last value is no truth, nor is skipping it)."""

    def __init__(self, rules: tuple[CompiledRule, ...]) -> None:
        self.rules = rules
        self._evaluator = simpleeval.SimpleEval(functions=SAFE_FUNCTIONS)

    def evaluate(
        self, values: Mapping[str, TagValue | None], stale: AbstractSet[str] = frozenset()
    ) -> StateVerdict | None:
        for rule in self.rules:
            if stale and not stale.isdisjoint(rule.names):
                return UNDETERMINED
            try:
                if rule.tree is not None:
                    if any(_unusable(values.get(name)) for name in rule.names):
                        continue
                    self._evaluator.names = dict(values)
                    if not self._evaluator.eval(rule.expression, previously_parsed=rule.tree):
                        continue
                return StateVerdict(rule.state, self._reason(rule, values))
            except Exception as error:  # noqa: BLE001 - any failure of a rule: unknown, never a crash
                return _unknown(rule, error)
        return None

    @staticmethod
    def _reason(rule: CompiledRule, values: Mapping[str, TagValue | None]) -> str | None:
        if rule.reason_template is None:
            return None
        shown = {name: _display(values.get(name)) for name in rule.reason_names}
        return rule.reason_template.format(**shown)


def _unknown(rule: CompiledRule, error: Exception) -> StateVerdict:
    detail = f"{type(error).__name__}: {error}"[:MAX_ERROR_TEXT]
    where = _quote(rule.expression if rule.expression is not None else f"reason {rule.reason_template}")
    return StateVerdict(MachineState.OFFLINE, f"{RULE_ERROR_REASON} in {where}: {detail}", detail)


def _unusable(value: TagValue | None) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _display(value: TagValue | None) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "?" if value is None else str(value)
