"""`edge-agent run` with an outbox it cannot use as it is: read-only (one clear line, exit 3, the
file left alone) or truncated (every readable record salvaged and delivered, the rest counted)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.delivery.outbox import Outbox
from agent.records import Record, RecordKind
from tests.conftest import CASES, free_port
from tests.integration.workshop_run import EDGE_AGENT, ENV, read_records

pytestmark = pytest.mark.integration

EXIT_OUTBOX = 3
UNDELIVERED = 300


def workshop(where: Path, health_port: int) -> Path:
    text = (CASES / "valid-minimal" / "workshop.yaml").read_text(encoding="utf-8")
    text = text.replace("../_devices", str(CASES / "_devices"))
    text = text.replace("agent: {id: gw-test}", f"agent: {{id: gw-test, state_dir: {where / 'state'}}}")
    text += f"health: {{port: {health_port}}}\noutputs:\n  file: {{path: {where / 'records.jsonl'}}}\n"
    path = where / "workshop.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def without_root_powers() -> list[str]:
    """Root writes to read-only files regardless; without these capabilities it is refused as
    anyone is (setpriv is in util-linux, on every Debian)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a read-only file cannot be made read-only")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


@pytest.fixture
def place(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    for path in (tmp_path / "state", *(tmp_path / "state").glob("*")):  # writable again, for cleanup
        if path.exists():
            path.chmod(0o755)


@pytest.mark.parametrize("what", ["file", "directory"])
def test_a_read_only_outbox_is_one_clear_line_and_exit_3(place: Path, what: str) -> None:
    path = workshop(place, free_port())
    state = place / "state"
    outbox = Outbox(state / "outbox.db")
    outbox.open()
    outbox.append("gw-test", [Record(RecordKind.OEE, 1000.0, {"n": 1})], now=1000.0)
    outbox.close()
    before = {p.name: p.read_bytes() for p in state.iterdir()}
    if what == "file":
        for file in state.iterdir():
            file.chmod(0o444)
    state.chmod(0o555)
    started = time.monotonic()
    done = subprocess.run(
        [*without_root_powers(), *EDGE_AGENT, "run", "-c", str(path)],
        cwd=place,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == EXIT_OUTBOX, done.stderr
    assert time.monotonic() - started < 30
    assert "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if "event=outbox_unopenable" in line]
    assert f"path={state / 'outbox.db'}" in line
    assert "read-only" in line
    assert "give user" in line
    assert "outbox.path" in line
    assert {p.name: p.read_bytes() for p in state.iterdir()} == before  # not moved aside, not touched


def test_a_truncated_outbox_is_salvaged_delivered_and_counted(place: Path) -> None:
    health_port = free_port()
    path = workshop(place, health_port)
    state = place / "state"
    outbox = Outbox(state / "outbox.db")
    outbox.open()
    outbox.register(["file"])
    stored = []
    # recent records: older than outbox.max_age_h they would be dropped by age at the first commit
    first_ts = time.time() - UNDELIVERED
    for start in range(0, UNDELIVERED, 25):
        batch = [
            Record(
                RecordKind.OEE,
                first_ts + start + i,
                {"machine": "grinder-01", "n": start + i, "pad": "x" * 300},
            )
            for i in range(25)
        ]
        stored += [e.seq for e in outbox.append("gw-test", batch, now=time.time())]
    outbox.close()
    data = (state / "outbox.db").read_bytes()
    (state / "outbox.db").write_bytes(data[: len(data) * 2 // 3])
    log = place / "agent.log"
    with log.open("w", encoding="utf-8") as stderr:
        agent = subprocess.Popen(
            [*EDGE_AGENT, "run", "-c", str(path)],
            cwd=place,
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 30
        while "event=outbox_corrupt" not in log.read_text(encoding="utf-8"):
            assert agent.poll() is None, log.read_text(encoding="utf-8")
            assert time.monotonic() < deadline, "no salvage reported"
            time.sleep(0.1)
        line = next(x for x in log.read_text(encoding="utf-8").splitlines() if "event=outbox_corrupt" in x)
        salvaged = int(re.search(r"salvaged=(\d+)", line).group(1))  # type: ignore[union-attr]
        lost = int(re.search(r"lost=(\d+)", line).group(1))  # type: ignore[union-attr]
        assert salvaged > 0
        assert salvaged + lost == UNDELIVERED  # every undelivered record is delivered or counted lost
        records_file = place / "records.jsonl"
        while len([r for r in read_records(records_file) if r.get("n") is not None]) < salvaged:
            assert agent.poll() is None, log.read_text(encoding="utf-8")
            assert time.monotonic() < deadline, "the salvaged records were not delivered"
            time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/metrics", timeout=5) as answer:
            metrics = answer.read().decode()
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=20)
    assert agent.returncode == 0, log.read_text(encoding="utf-8")
    delivered = [r for r in read_records(records_file) if r.get("n") is not None]
    seqs = [r["seq"] for r in delivered]
    assert seqs == sorted(seqs)  # in order
    assert set(seqs) <= set(stored)  # with their own sequence numbers
    assert all(r["n"] == stored.index(r["seq"]) for r in delivered)  # each record with its own content
    assert len(seqs) == salvaged
    assert f"edge_agent_outbox_salvaged_records {float(salvaged)}" in metrics
    assert f"edge_agent_outbox_corrupt_lost_records {float(lost)}" in metrics
    after = [r["seq"] for r in read_records(records_file)]
    assert after == sorted(after)
    assert min(s for s in after if s not in seqs) > max(stored)  # new records never reuse a number
