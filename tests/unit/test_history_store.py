"""The report history: what it keeps, for how long, within what size, and across a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.history.store import DAY_S, HistoryError, HistoryStore
from agent.records import Record, RecordKind

T0 = 1_790_000_000.0


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def state(ts: float, machine: str = "m1", value: str = "producing", reason: str | None = None) -> Record:
    return Record(
        RecordKind.STATE,
        ts,
        {"machine": machine, "line": "l1", "state": value, "since": "x", "reason": reason},
    )


def oee(
    ts: float, *, final: bool, machine: str = "m1", day: str = "2026-11-24", shift: str = "day"
) -> Record:
    fields = {"machine": machine, "line": "l1", "period": "shift", "shift": shift, "day": day, "final": final}
    return Record(RecordKind.OEE, ts, {**fields, "produced": 10 if final else 3})


def history(tmp_path: Path, clock: FakeClock, *, days: float = 62, max_mb: float = 64) -> HistoryStore:
    return HistoryStore(tmp_path / "history.db", days=days, max_bytes=int(max_mb * 2**20), clock=clock)


def test_keeps_states_and_final_records_and_the_newest_of_every_scope(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    with history(tmp_path, clock) as store:
        store.add([state(T0), oee(T0 + 1, final=False), oee(T0 + 2, final=True), oee(T0 + 3, final=False)])
        finals = store.finals("shift", "2026-11-24", "day")
        latest = {(r.kind, r.machine): r for r in store.latest()}
    assert [r.fields["produced"] for r in finals] == [10]  # the running figures are not history
    assert latest[(RecordKind.OEE, "m1")].ts == T0 + 3  # but the newest one is what the board shows
    assert latest[(RecordKind.STATE, "m1")].fields["state"] == "producing"


def test_survives_a_restart(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    with history(tmp_path, clock) as store:
        store.add([state(T0, value="fault", reason="alarm 7"), oee(T0 + 5, final=True)])
    with history(tmp_path, clock) as again:
        assert [r.fields["reason"] for r in again.states(T0 - 10, T0 + 10)] == ["alarm 7"]
        assert len(again.finals("shift", "2026-11-24", "day")) == 1
        again.add([oee(T0 + 6, final=True, shift="no_shift")])
        assert again.shifts() == [("2026-11-24", "day")]
        assert again.last_stops()["m1"].fields["reason"] == "alarm 7"  # the board's last stop, still there


def test_records_older_than_the_retention_are_deleted_at_open_and_while_running(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    with history(tmp_path, clock, days=2) as store:
        store.add([state(T0), state(T0 + DAY_S)])
    clock.now = T0 + 2.5 * DAY_S  # the first record is 2.5 days old, the second 1.5
    with history(tmp_path, clock, days=2) as store:
        kept = store.states(0, clock.now)
        assert [r.ts for r in kept] == [T0 + DAY_S]
        clock.now += DAY_S
        assert store.prune() == 1
        assert store.stats().records == 0
        assert store.stats().deleted_by_age == 2  # one at open, one now


def test_states_before_the_window_tell_the_state_it_opened_in(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    with history(tmp_path, clock) as store:
        store.add(
            [state(T0, value="idle"), state(T0 + 10, value="fault"), state(T0 + 100, value="producing")]
        )
        store.add([state(T0 + 5, machine="m2", value="setup")])
        window = store.states(T0 + 50, T0 + 200)
    assert [(r.machine, r.fields["state"]) for r in window] == [
        ("m1", "fault"),
        ("m2", "setup"),
        ("m1", "producing"),
    ]


def test_size_cap_deletes_the_oldest_first(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    cap_mb = 0.25
    with history(tmp_path, clock, max_mb=cap_mb) as store:
        padding = "x" * 400  # a long alarm text: a flapping machine with verbose reasons
        for batch in range(40):
            store.add([state(T0 + batch * 100 + i, reason=padding) for i in range(100)])
        stats = store.stats()
        oldest = store.states(0, T0 + 10_000)[0].ts
    assert stats.bytes_used <= cap_mb * 2**20 * 1.05  # within a page or two of the cap
    assert stats.deleted_by_size > 0
    assert oldest > T0  # what went first was the oldest
    assert stats.records + stats.deleted_by_size == 4000
    assert (tmp_path / "history.db").stat().st_size < 2 * cap_mb * 2**20  # freed pages go back


def test_a_history_that_cannot_be_opened_names_its_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = HistoryStore(blocker / "history.db", days=1, max_bytes=2**20)
    with pytest.raises(HistoryError, match=str(blocker)):
        store.open()


def test_a_write_that_fails_is_logged_and_never_reaches_the_caller(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(T0)
    store = history(tmp_path, clock).open()
    store.db.execute("DROP TABLE records")  # any storage failure: the outputs must go on
    store.add([state(T0)])
    store.close()
    assert "event=history_unwritable" in caplog.text


def test_a_machine_in_one_state_longer_than_the_retention_still_opens_the_window_in_it(
    tmp_path: Path,
) -> None:
    clock = FakeClock(T0)
    with history(tmp_path, clock, days=2) as store:
        store.add([state(T0, value="producing")])  # and nothing since: a good month
        clock.now = T0 + 5 * DAY_S
        store.prune()
        assert store.stats().records == 0
        window = store.states(clock.now - 3600, clock.now)
    assert [(r.machine, r.fields["state"], r.ts) for r in window] == [("m1", "producing", T0)]


def test_a_record_json_cannot_carry_is_left_out_and_the_rest_kept(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    bad = Record(RecordKind.STATE, T0, {"machine": "m2", "state": "idle", "value": 2**70})
    with history(tmp_path, clock) as store:
        store.add([state(T0), bad, state(T0 + 1, value="fault")])
        kept = [(r.machine, r.fields["state"]) for r in store.states(0, T0 + 10)]
        refused = store.refused
    assert kept == [("m1", "producing"), ("m1", "fault")]
    assert refused == 1
