"""Which connections of a workshop still point where a shipped sample's simulators listen.

A workshop started from a sample (`edge-agent init`, or the file install.sh writes) validates as
it is, but its connections point at loopback ports where only `edge-agent simulate` answers.
The service must not start on it by accident: install.sh asks `validate --for-service`.
"""

from __future__ import annotations

import functools

from agent.config.compiled import AgentConfig
from agent.config.connections import OpcUaConnection
from agent.config.issues import ConfigIssue
from agent.config.loader import load_config
from agent.config.shipped import examples
from agent.config.yamlsource import load_yaml


@functools.cache
def sample_endpoints() -> dict[str, str]:
    """endpoint -> the sample that uses it, over every shipped example."""
    found: dict[str, str] = {}
    for name, path in examples().items():
        for connection in load_config(path).workshop.connections:
            found.setdefault(connection.endpoint, name)  # the samples share ports: name the first
    return found


def still_sample(config: AgentConfig) -> list[ConfigIssue]:
    """One issue per connection that is still a sample's simulator endpoint, at the line of its
    address (`host:` or `url:`) as every other finding of validate."""
    samples = sample_endpoints()
    found = [
        (index, connection)
        for index, connection in enumerate(config.workshop.connections)
        if connection.endpoint in samples
    ]
    if not found:
        return []
    loaded = load_yaml(config.source)  # the file is valid: read again for the positions only
    return [
        loaded.issue(
            ("connections", index, "url" if isinstance(connection, OpcUaConnection) else "host"),
            f"{connection.endpoint} is where the '{samples[connection.endpoint]}' sample's simulator "
            f"listens (connection '{connection.id}'); give your PLC's or gateway's address",
        )
        for index, connection in found
    ]
