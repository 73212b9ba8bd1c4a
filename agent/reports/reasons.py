"""Stop reasons as people read them: an alarm code in a reason named by its profile's text, and
the agent's own reasons (no data, agent restart, clock step) in the site's language.

A state rule's reason is a template over tags (`alarm {alarm_code}`, agent/kpi/rules.py); the
record carries it filled in (`alarm 1203`). A profile's `alarms` section maps codes to text. Here
each template becomes a pattern that finds the code again in the published reason, so the reports
can say `alarm 1203: wheel dressing overdue` without the records ever changing (MQTT and InfluxDB
keep the reason as published).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping

from agent.config.profile import AlarmText, Profile
from agent.i18n import catalogue
from agent.kpi.engine import CLOCK_STEP_REASON, NO_DATA_REASON, RESTART_REASON

ReasonText = Callable[[str, str | None], str | None]
# the agent's own reasons for time it could not see: its words, so the catalogue's
AGENT_REASONS = {
    NO_DATA_REASON: "reason.no_data",
    RESTART_REASON: "reason.agent_restart",
    CLOCK_STEP_REASON: "reason.clock_step",
}


def template_pattern(template: str) -> re.Pattern[str] | None:
    """`alarm {alarm_code:>6}` -> a pattern capturing what the placeholder was filled with."""
    parts: list[str] = []
    placeholders = 0
    for literal, name, _spec, _conversion in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if name:
            parts.append(rf"\s*(?P<v{placeholders}>.+?)\s*")
            placeholders += 1
    if placeholders == 0:
        return None
    return re.compile("^" + "".join(parts) + "$")


def alarm_text(text: AlarmText, language: str) -> str:
    if isinstance(text, str):
        return text
    return text.get(language) or text.get("en") or next(iter(text.values()), "")


class ReasonNamer:
    """reason_text(machine, reason) for the reports: the reason with its alarm's text, if any."""

    def __init__(self, profiles: Mapping[str, Profile], language: str) -> None:
        self.language = language
        self._rules: dict[str, tuple[tuple[re.Pattern[str], ...], Mapping[str, AlarmText]]] = {}
        for machine, profile in profiles.items():
            if not profile.alarms:
                continue
            patterns = tuple(
                p
                for rule in profile.state
                if rule.reason and (p := template_pattern(rule.reason)) is not None
            )
            self._rules[machine] = (patterns, profile.alarms)

    def __call__(self, machine: str, reason: str | None) -> str | None:
        if reason in AGENT_REASONS:
            return catalogue(self.language)(AGENT_REASONS[reason])
        if reason is None or machine not in self._rules:
            return reason
        patterns, alarms = self._rules[machine]
        for pattern in patterns:
            found = pattern.match(reason)
            if found is None:
                continue
            for code in found.groupdict().values():
                text = alarms.get(code.strip())
                if text is not None:
                    return f"{reason}: {alarm_text(text, self.language)}"
        return reason
