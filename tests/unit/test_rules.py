"""State rules and the state -> OEE time bucket table."""

from __future__ import annotations

import pytest

from agent.kpi.rules import RuleError, StateRules, compile_rule
from agent.kpi.states import STATE_BUCKET, MachineState, TimeBucket

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


def test_runtime_errors_in_a_rule_mean_no_match() -> None:
    engine = rules((MachineState.FAULT, "spindle_load / status > 1", None))
    assert engine.evaluate({"spindle_load": 1.0, "status": 0}) is None
