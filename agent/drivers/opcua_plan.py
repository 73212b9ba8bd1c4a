"""What `edge-agent plan` shows of an OPC UA connection: its server, security and how many nodes
(addresses are resolved on the server at each connect, so there is no plan to print ahead)."""

from __future__ import annotations

from agent.config.compiled import Device
from agent.config.connections import OpcUaConnection
from agent.i18n import Catalogue


def plan_summary(connection: OpcUaConnection, devices: list[Device], words: Catalogue) -> str:
    return words(
        "plan.opcua",
        connection=connection.id,
        url=connection.url,
        policy=connection.security_policy,
        mode=connection.security_mode,
        nodes=sum(len(d.profile.spec.nodes) for d in devices),
    )
