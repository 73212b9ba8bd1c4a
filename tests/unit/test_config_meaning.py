"""Validation of meaning: what a tag's type lets it be used for (agent/config/tag_kinds.py).

The errors are golden cases (tests/cases/tag-kinds); here: the warnings, which leave the file valid,
and the forms that are right and must stay accepted.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agent.cli import main
from agent.config.issues import ConfigError
from agent.config.loader import load_config
from tests.conftest import CASES

WORKSHOP = (CASES / "tag-kinds" / "workshop.yaml").read_text(encoding="utf-8")


def write_profile(tmp_path: Path, tags: str, rules: str, roles: str) -> Path:
    (tmp_path / "devices").mkdir()
    profile = "name: odd\nkind: grinder\ntags:\n{}\nstate:\n{}\n{}\n".format(
        textwrap.indent(textwrap.dedent(tags).strip(), "  "),
        textwrap.indent(textwrap.dedent(rules).strip(), "  "),
        textwrap.dedent(roles).strip(),
    )
    (tmp_path / "devices" / "odd.yaml").write_text(profile, encoding="utf-8")
    path = tmp_path / "workshop.yaml"
    path.write_text(WORKSHOP, encoding="utf-8")
    return path


def test_a_signed_counter_is_a_warning_at_its_line_that_names_the_unsigned_type(tmp_path: Path) -> None:
    path = write_profile(
        tmp_path,
        """
        running: {table: holding, address: 0, type: bool, bit: 0}
        parts:   {table: holding, address: 1, type: int16}
        kwh:     {table: holding, address: 2, type: int32, scale: 0.01}
        """,
        "- {when: running, state: producing}\n- {state: idle}",
        "counters: {produced: parts}\nenergy: {kwh: kwh}",
    )
    config = load_config(path, environ={})
    warnings = [str(w) for w in config.warnings]
    profile = tmp_path / "devices" / "odd.yaml"
    assert warnings == [
        f"{profile}:10:22: counters.produced: tag 'parts' counts parts as int16: past 32767 it reads "
        "negative and the agent takes that as a counter reset, not a wrap; read the same register as "
        "uint16 (type: uint16) unless the device resets it well before",
        f"{profile}:11:15: energy.kwh: tag 'kwh' counts kWh as int32: past 2147483647 it reads negative "
        "and the agent takes that as a counter reset, not a wrap; read the same register as uint32 "
        "(type: uint32) unless the device resets it well before",
    ]


def test_validate_prints_the_warning_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_profile(
        tmp_path,
        "parts: {table: holding, address: 1, type: int32}",
        "- {state: idle}",
        "counters: {produced: parts}",
    )
    assert main(["validate", "-c", str(path)]) == 0
    err = capsys.readouterr().err
    assert "counters.produced: tag 'parts' counts parts as int32" in err
    assert "(a warning: the file is valid)" in err


def test_rules_that_compare_like_with_like_are_accepted(tmp_path: Path) -> None:
    path = write_profile(
        tmp_path,
        """
        running: {table: holding, address: 0, type: bool, bit: 0}
        status:  {table: holding, address: 1, type: uint16}
        mode:    {table: holding, address: 2, type: uint16, values: {0: manual, 1: auto}}
        program: {table: holding, address: 3, type: string, length: 4}
        load:    {table: holding, address: 8, type: float32}
        parts:   {table: holding, address: 10, type: uint32}
        """,
        """
        - {when: 'running == 1 and status != 0', state: fault}
        - {when: 'mode in ("manual", "auto") and program == "P100"', state: setup}
        - {when: '0 < load < 80.5 and bit(status, 3)', state: producing}
        - {when: 'mode == "auto" and status >= 2', state: idle}
        - {state: idle}
        """,
        "counters: {produced: parts}",
    )
    config = load_config(path, environ={})
    assert config.warnings == ()


def test_a_rule_comparing_text_with_a_number_is_an_error_with_the_fix(tmp_path: Path) -> None:
    path = write_profile(
        tmp_path,
        "program: {table: holding, address: 3, type: string, length: 4}",
        "- {when: 'program in (1, \"P2\")', state: setup}\n- {state: idle}",
        "",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    [issue] = caught.value.issues
    assert issue.path == "state[0].when"
    assert issue.mark.line == 6
    expected = "'program' is text (type string), compared with a number 1: the rule is never true"
    assert expected in issue.message


def test_a_bcd_counter_wraps_where_its_digits_run_out(tmp_path: Path) -> None:
    """An older meter's bcd16 counter goes 9999 -> 0: a wrap, not a reset (nor a signed fall)."""
    path = write_profile(
        tmp_path,
        """
        parts: {table: holding, address: 1, type: bcd16}
        kwh:   {table: holding, address: 2, type: bcd32, scale: 0.1}
        """,
        "- {state: idle}",
        "counters: {produced: parts}\nenergy: {kwh: kwh}",
    )
    profile = load_config(path, environ={}).profiles["odd"].spec
    assert profile.wraps_at("parts") == 10_000
    assert profile.wraps_at("kwh") == pytest.approx(10_000_000.0)
