"""kill -9 at random moments while writing: every committed record is there, the file always opens."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.delivery.outbox import Outbox
from tests.conftest import REPO

pytestmark = pytest.mark.integration

WRITER = """
import sys, time
from pathlib import Path
from agent.delivery.outbox import Outbox
from agent.records import Record, RecordKind
outbox = Outbox(Path(sys.argv[1]))
outbox.open()
n = 0
while True:
    batch = [Record(RecordKind.OEE, time.time(), {"n": n + i, "pad": "x" * 200}) for i in range(20)]
    stored = outbox.append("gw", batch, now=time.time())
    n += len(batch)
    print(stored[-1].seq, flush=True)  # said only after the commit returned
"""


def crash_rounds(path: Path, rounds: int, seed: int) -> int:
    rng = random.Random(seed)
    acknowledged: set[int] = set()
    for _ in range(rounds):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=REPO, stdout=subprocess.PIPE)
        time.sleep(rng.uniform(0.05, 0.3))  # start-up included: some kills land before the first commit
        writer.kill()
        out, _ = writer.communicate(timeout=10)
        acknowledged.update(int(line) for line in out.split())
        outbox = Outbox(path)
        assert outbox.open() == [], "the outbox did not open cleanly after kill -9"
        outbox.close()
        with sqlite3.connect(path) as db:
            stored = [row[0] for row in db.execute("SELECT seq FROM records ORDER BY seq")]
        assert acknowledged <= set(stored), "a committed record is missing"
        if stored:  # a kill during start-up may land before the first commit
            assert stored == list(range(stored[0], stored[0] + len(stored))), "a hole in the sequence"
    return len(acknowledged)


def test_fifty_kills_lose_nothing_committed(tmp_path: Path) -> None:
    assert crash_rounds(tmp_path / "outbox.db", 50, seed=1) > 10  # enough kills landed mid-write


@pytest.mark.slow
def test_five_hundred_kills_lose_nothing_committed(tmp_path: Path) -> None:
    assert crash_rounds(tmp_path / "outbox.db", 500, seed=2) > 100
