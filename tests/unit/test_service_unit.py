"""The systemd unit's ordering: the agent starts after the network and with the clock set."""

from __future__ import annotations

import re

from tests.conftest import REPO

UNIT = REPO / "deploy" / "systemd" / "edge-agent.service"


def directive(name: str) -> list[str]:
    """Every value of a directive, split into its space-separated units."""
    text = UNIT.read_text(encoding="utf-8")
    return [unit for line in re.findall(rf"^{name}=(.*)$", text, re.MULTILINE) for unit in line.split()]


def test_the_agent_starts_after_the_clock_is_set_and_synced() -> None:
    assert {"time-set.target", "time-sync.target", "network-online.target"} <= set(directive("After"))


def test_the_passive_time_targets_are_ordered_after_never_pulled_in() -> None:
    """systemd.special(7): the time service pulls them in; a consumer only orders itself after them."""
    pulled = set(directive("Wants")) | set(directive("Requires"))
    assert not {"time-set.target", "time-sync.target"} & pulled
