"""State rules and the state -> OEE time bucket table."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent.kpi.engine import KpiEngine
from agent.kpi.rules import RULE_ERROR, RuleError, StateRules, compile_rule
from agent.kpi.states import STATE_BUCKET, MachineState, TimeBucket
from agent.records import RecordKind
from agent.samples import Sample
from tests.unit.kpi_fixtures import TAGS as KPI_TAGS
from tests.unit.kpi_fixtures import engine_setup, local, machine_setup

TAGS = frozenset({"status", "alarm_code", "spindle_load", "mode"})


@pytest.mark.parametrize(
    ("state", "bucket"),
    [
        (MachineState.PRODUCING, TimeBucket.ACTUAL_PRODUCTION),
        (MachineState.SETUP, TimeBucket.SETUP_LOSS),
        (MachineState.IDLE, TimeBucket.IDLE_LOSS),
        (MachineState.FAULT, TimeBucket.FAULT_LOSS),
        (MachineState.PLANNED_STOP, TimeBucket.PLANNED_STOP),
        (MachineState.NO_SHIFT, TimeBucket.NO_SHIFT),
        (MachineState.OFFLINE, TimeBucket.OFFLINE),
    ],
)
def test_state_bucket_row(state: MachineState, bucket: TimeBucket) -> None:
    assert STATE_BUCKET[state] is bucket


def test_every_state_has_a_bucket() -> None:
    assert set(STATE_BUCKET) == set(MachineState)


def rules(*specs: tuple[MachineState, str | None, str | None]) -> StateRules:
    return StateRules(tuple(compile_rule(state, when, reason, TAGS) for state, when, reason in specs))


def test_first_matching_rule_wins_with_its_reason() -> None:
    engine = rules(
        (MachineState.FAULT, "alarm_code != 0", "alarm {alarm_code}"),
        (MachineState.PRODUCING, "bit(status, 0) and spindle_load > 20", None),
        (MachineState.IDLE, None, None),
    )
    verdict = engine.evaluate({"alarm_code": 1203, "status": 1, "spindle_load": 55.0})
    assert verdict is not None
    assert (verdict.state, verdict.reason) == (MachineState.FAULT, "alarm 1203")
    verdict = engine.evaluate({"alarm_code": 0, "status": 1, "spindle_load": 55.0})
    assert verdict is not None
    assert verdict.state is MachineState.PRODUCING
    verdict = engine.evaluate({"alarm_code": 0, "status": 1, "spindle_load": 5.0})
    assert verdict is not None
    assert verdict.state is MachineState.IDLE


def test_a_rule_whose_tags_are_missing_or_nan_never_matches() -> None:
    engine = rules(
        (MachineState.FAULT, "alarm_code > 0", None), (MachineState.IDLE, "spindle_load < 1", None)
    )
    assert engine.evaluate({"alarm_code": None, "spindle_load": float("nan")}) is None


def test_rules_cannot_reach_python() -> None:
    for expression in ("__import__('os').system('true')", "status.__class__", "open('/etc/passwd')"):
        with pytest.raises(RuleError):
            compile_rule(MachineState.FAULT, expression, None, TAGS)


@pytest.mark.parametrize(
    ("expression", "values", "error"),
    [
        ("spindle_load / status > 1", {"spindle_load": 1.0, "status": 0}, "ZeroDivisionError"),
        ("mode > 3", {"mode": "auto"}, "TypeError"),
        ("bit(status, -1)", {"status": 5}, "ValueError"),
        ("status << 100000", {"status": 1}, "NumberTooHigh"),
    ],
)
def test_a_rule_that_fails_makes_the_state_unknown_not_a_later_rules_guess(
    expression: str, values: dict[str, object], error: str
) -> None:
    engine = rules((MachineState.FAULT, expression, None), (MachineState.IDLE, None, None))
    verdict = engine.evaluate(values)  # type: ignore[arg-type]
    assert verdict is not None
    assert verdict.state is MachineState.OFFLINE
    assert verdict.error is not None
    assert error in verdict.error
    assert verdict.reason is not None
    assert verdict.reason.startswith(f"rule error in {expression!r}: {error}")


def test_an_evaluation_error_of_any_kind_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = rules((MachineState.FAULT, "status > 1", None))

    def broken(*_: object, **__: object) -> object:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(engine._evaluator, "eval", broken)
    verdict = engine.evaluate({"status": 2})
    assert verdict is not None
    assert (verdict.state, verdict.error) == (
        MachineState.OFFLINE,
        "RecursionError: maximum recursion depth exceeded",
    )


@pytest.mark.parametrize("repeat", [31, 120, 900, 5000])
def test_deeply_nested_rules_are_refused_at_validation(repeat: int) -> None:
    """Refused with a message, never a RecursionError from the parser or the evaluator."""
    for expression in ("not " * repeat + "(status > 1)", "-" * repeat + "status > 1"):
        with pytest.raises(RuleError, match=r"nests more than 32 levels|at most 500"):
            compile_rule(MachineState.FAULT, expression, None, TAGS)


def test_a_rule_at_the_bounds_is_accepted_and_evaluates() -> None:
    expression = "not " * 30 + "(status > 1)"  # 32 levels: 30 nots, the comparison, its operands
    rule = rules((MachineState.FAULT, expression, None))
    verdict = rule.evaluate({"status": 2})  # an even number of nots: as true as status > 1
    assert verdict is not None
    assert verdict.state is MachineState.FAULT


@pytest.mark.parametrize(
    "reason",
    [
        "alarm {alarm_code:>1000000000}",
        "alarm {alarm_code:>65}",
        "alarm {alarm_code:.2f}",
        "alarm {alarm_code!r}",
        "alarm {alarm_code.__class__}",
        "alarm {alarm_code[0]}",
        "alarm {}",
        "alarm {0}",
        "x" * 201,
    ],
)
def test_reasons_allow_only_tags_with_an_alignment(reason: str) -> None:
    with pytest.raises(RuleError) as caught:
        compile_rule(MachineState.FAULT, "alarm_code > 0", reason, TAGS)
    assert caught.value.field == "reason"


def test_a_reason_may_align_a_tag_in_a_width() -> None:
    engine = rules((MachineState.FAULT, "alarm_code > 0", "alarm {alarm_code:>6}|{mode:^5}|{status:8}"))
    verdict = engine.evaluate({"alarm_code": 1203, "mode": "m", "status": 1})
    assert verdict is not None
    assert verdict.reason == "alarm   1203|  m  |1       "


def test_a_failing_rule_is_offline_time_flagged_rule_error_in_the_engine() -> None:
    """An hour in which the rule cannot be evaluated (division by zero) is neither production nor a
    loss: it is offline time, excluded from planned busy time, and the shift carries the flag."""
    failing = StateRules(
        (
            compile_rule(MachineState.FAULT, "alarm_code / rejects > 1", "alarm {alarm_code}", KPI_TAGS),
            compile_rule(MachineState.PRODUCING, "running", None, KPI_TAGS),
        )
    )
    engine = KpiEngine(engine_setup(replace(machine_setup(), rules=failing)), local(8))
    records = []
    t = local(8)
    while t <= local(10):
        rejects = 0 if t < local(9) else 10  # 08:00-09:00 the rule divides by zero
        samples = [
            Sample("m1", "running", True, t),
            Sample("m1", "alarm_code", 5, t),
            Sample("m1", "rejects", rejects, t),
        ]
        records += engine.ingest(samples)
        records += engine.advance(t)
        t += 10.0
    records += engine.publish_current(local(10))
    changes = {
        (r.fields["state"], r.fields["since"]): r.fields for r in records if r.kind is RecordKind.STATE
    }
    states = list(changes.values())  # without the periodic repeats of each state
    assert [s["state"] for s in states] == ["offline", "producing"]
    assert states[0]["reason"] == (
        "rule error in 'alarm_code / rejects > 1': ZeroDivisionError: division by zero"
    )
    oee = [r.fields for r in records if r.kind is RecordKind.OEE and r.fields["machine"] == "m1"][-1]
    assert oee["offline_s"] == pytest.approx(3600.0)
    assert oee["apt_s"] == pytest.approx(3600.0)
    assert oee["pbt_s"] == pytest.approx(3600.0)
    assert RULE_ERROR in oee["flags"]
