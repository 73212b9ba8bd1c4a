"""Golden configuration cases: tests/cases/<name>/workshop.yaml with error.txt (or none: valid).

Adding a case needs no code: a directory with a workshop file, and error.txt holding every
expected `FILE:LINE:COL: path: message` line, in order.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config.issues import ConfigError
from agent.config.loader import load_config
from tests.conftest import CASES

CASE_DIRS = sorted(p for p in CASES.iterdir() if p.is_dir() and not p.name.startswith("_"))


@pytest.mark.parametrize("case", CASE_DIRS, ids=lambda p: p.name)
def test_golden_case(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(case)
    expected_file = case / "error.txt"
    if not expected_file.exists():
        config = load_config(Path("workshop.yaml"), environ={})
        assert config.workshop.machines
        return
    with pytest.raises(ConfigError) as caught:
        load_config(Path("workshop.yaml"), environ={})
    reported = [str(issue) for issue in caught.value.issues]
    assert reported == expected_file.read_text(encoding="utf-8").splitlines()


def test_every_case_error_names_a_file_line_and_column() -> None:
    for case in CASE_DIRS:
        expected = case / "error.txt"
        if expected.exists():
            for line in expected.read_text(encoding="utf-8").splitlines():
                file, line_no, column, _ = line.split(":", 3)
                assert file.endswith(".yaml"), line
                assert int(line_no) > 0, line
                assert int(column) > 0, line
