"""`edge-agent init`: a starting workshop for a plant, never over its own files."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import main
from agent.config.loader import load_config
from agent.config.shipped import example


def test_init_writes_the_example_and_its_profiles_which_validate_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "plant"
    assert main(["init", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"edge-agent validate -c {target / 'workshop.yaml'}" in out
    assert (target / "workshop.yaml").read_bytes() == example("grinding").read_bytes()
    config = load_config(target / "workshop.yaml")
    assert {p.file.parent for p in config.profiles.values()} == {target / "devices"}
    assert sorted(p.stem for p in (target / "devices").iterdir()) == sorted(config.profiles)


def test_init_refuses_to_overwrite_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "plant"
    (target / "devices").mkdir(parents=True)
    (target / "devices" / "sim-grinder.yaml").write_text("# the plant's own edit\n", encoding="utf-8")
    assert main(["init", str(target)]) == 1
    err = capsys.readouterr().err
    assert f"not overwriting {target / 'devices' / 'sim-grinder.yaml'}" in err
    assert "--force" in err
    assert not (target / "workshop.yaml").exists()  # nothing written at all
    assert (target / "devices" / "sim-grinder.yaml").read_text(encoding="utf-8") == "# the plant's own edit\n"

    assert main(["init", str(target), "--force"]) == 0
    assert load_config(target / "workshop.yaml").profiles


def test_init_names_the_examples_there_are(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path), "--example", "forging"]) == 1
    assert "no example workshop 'forging'; there are: grinding" in capsys.readouterr().err


def test_validate_for_service_names_the_line_of_every_sample_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "plant"
    assert main(["init", str(target)]) == 0
    capsys.readouterr()
    workshop = target / "workshop.yaml"
    assert main(["validate", "--for-service", "-c", str(workshop)]) == 2
    findings = capsys.readouterr().err.splitlines()[:-1]  # the last line says the service stays stopped
    written = workshop.read_text(encoding="utf-8").splitlines()
    assert findings
    for finding in findings:
        file, line, column, path, message = finding.split(":", 4)
        assert file == str(workshop)
        assert path.startswith(" connections[")
        assert path.endswith(("].host", "].url"))
        address = written[int(line) - 1][int(column) - 1 :]
        # the position is the address the finding is about
        assert address.startswith(("127.0.0.1", "opc.tcp://127.0.0.1")), finding
        assert "sample's simulator listens" in message
