"""Which MQTT messages carry the retain flag: the newest current figure of each topic only."""

from __future__ import annotations

from agent.config.outputs import RetainSettings
from agent.records import Envelope, Record, RecordKind
from agent.sinks.retention import RetainedFigures, retainable
from agent.sinks.topics import TopicRoot

ROOT = TopicRoot("acme", "plant-1", "grinding", "gw")
MACHINE = {"machine": "grinder-01", "line": "line-1"}


def record(kind: RecordKind, **fields: object) -> Record:
    return Record(kind, 1.0, fields)


def plan(figures: RetainedFigures, records: list[tuple[int, Record]]) -> list[tuple[str, bool]]:
    batch = [(ROOT.topic(Envelope("gw", seq, r)), Envelope("gw", seq, r)) for seq, r in records]
    return [(topic, flag) for (topic, _), flag in zip(batch, figures.flags(batch), strict=True)]


def test_factory_defaults_retain_state_and_the_current_shifts_oee_and_energy_at_every_level() -> None:
    defaults = RetainSettings()
    shift = {"period": "shift", "final": False}
    retained = [
        record(RecordKind.STATE, **MACHINE, state="idle"),
        record(RecordKind.OEE, **MACHINE, **shift),
        record(RecordKind.ENERGY, **MACHINE, **shift),
        record(RecordKind.LINE_OEE, line="line-1", **shift),
        record(RecordKind.LINE_ENERGY, line="line-1", **shift),
        record(RecordKind.WORKSHOP_OEE, **shift),
        record(RecordKind.WORKSHOP_ENERGY, period="shift", final=True),  # a closed shift's last word
    ]
    not_retained = [
        record(RecordKind.TAGS, **MACHINE, values={"x": 1}),
        record(RecordKind.OEE, **MACHINE, period="day", final=True),  # would displace the shift
        record(RecordKind.WORKSHOP_ENERGY, period="day", final=True),
        record(RecordKind.CREW_OEE, crew="a", period="day"),
        record(RecordKind.AGENT, sinks=[]),
        record(RecordKind.EVENT),
    ]
    assert [retainable(r, defaults) for r in retained] == [True] * len(retained)
    assert [retainable(r, defaults) for r in not_retained] == [False] * len(not_retained)


def test_each_kind_is_configurable() -> None:
    settings = RetainSettings(state=False, oee=False, tags=True, crew=True, delivery=True)
    assert not retainable(record(RecordKind.STATE, **MACHINE), settings)
    assert not retainable(record(RecordKind.LINE_OEE, line="l", period="shift"), settings)
    assert retainable(record(RecordKind.ENERGY, **MACHINE, period="shift"), settings)
    assert retainable(record(RecordKind.TAGS, **MACHINE, values={}), settings)
    assert retainable(record(RecordKind.CREW_ENERGY, crew="a", period="day"), settings)
    assert retainable(record(RecordKind.AGENT), settings)


def test_a_replayed_backlog_retains_only_each_topics_newest_record() -> None:
    figures = RetainedFigures(RetainSettings())
    states = [(seq, record(RecordKind.STATE, **MACHINE, state=f"s{seq}")) for seq in (10, 11, 12)]
    day = (13, record(RecordKind.OEE, **MACHINE, period="day"))
    shift = (14, record(RecordKind.OEE, **MACHINE, period="shift"))
    later_day = (15, record(RecordKind.OEE, **MACHINE, period="day"))
    flags = plan(figures, [*states, day, shift, later_day])
    topic = "acme/plant-1/grinding/line-1/grinder-01"
    assert flags == [
        (f"{topic}/state", False),
        (f"{topic}/state", False),
        (f"{topic}/state", True),
        (f"{topic}/oee", False),
        (f"{topic}/oee", True),  # the shift stays the retained figure: the day after it is not
        (f"{topic}/oee", False),
    ]


def test_a_batch_sent_again_never_puts_an_older_figure_back() -> None:
    """A connection broke after the broker took seq 12; the drain sends the batch from 11 again,
    then a newer one: 11 goes without the flag, 12 and 13 with it."""
    figures = RetainedFigures(RetainSettings())
    plan(figures, [(12, record(RecordKind.STATE, **MACHINE, state="fault"))])
    again = plan(figures, [(11, record(RecordKind.STATE, **MACHINE, state="idle"))])
    assert again == [("acme/plant-1/grinding/line-1/grinder-01/state", False)]
    same = plan(figures, [(12, record(RecordKind.STATE, **MACHINE, state="fault"))])
    assert same == [("acme/plant-1/grinding/line-1/grinder-01/state", True)]
    newer = plan(figures, [(13, record(RecordKind.STATE, **MACHINE, state="producing"))])
    assert newer == [("acme/plant-1/grinding/line-1/grinder-01/state", True)]
