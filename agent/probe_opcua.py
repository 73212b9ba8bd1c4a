"""`edge-agent probe opc.tcp://...`: what an OPC UA server offers and holds, for commissioning.

    edge-agent probe opc.tcp://10.0.1.50:4840                       endpoints and security policies
    edge-agent probe opc.tcp://10.0.1.50:4840 --policy Basic256Sha256 --browse i=85 --depth 3
    edge-agent probe opc.tcp://10.0.1.50:4840 --policy Basic256Sha256 --node "ns=3;s=Machines/g7/State"

Endpoints come from GetEndpoints, which every server answers without a session. Browsing and
reading open a session as the agent would: its own certificate, the same trust store (a refused
server certificate lands in rejected/ with the command to trust it), the same user identity.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncua import Client, ua
from asyncua.crypto import security_policies
from cryptography import x509
from rich.console import Console
from rich.table import Table as RichTable

from agent.config.profile import NodeSpec
from agent.config.workshop import OpcUaConnection, SecurityMode, SecurityPolicy
from agent.drivers.opcua import SESSION_ERRORS, ConversionError, describe, to_tag_value
from agent.drivers.opcua_pki import Pki, thumbprint
from agent.probe import ProbeError

RAW = NodeSpec(node="i=0")  # no scale, offset or value map: values as the server sends them
MAX_BROWSED = 500


@dataclass(frozen=True)
class OpcUaProbe:
    url: str
    policy: SecurityPolicy = "None"
    mode: SecurityMode = "None"
    username: str | None = None
    password: str | None = None
    browse: str | None = None
    depth: int = 2
    nodes: tuple[str, ...] = ()
    pki_dir: Path = Path("var/edge-agent/pki")
    timeout_s: float = 5.0


async def probe_opcua(request: OpcUaProbe, console: Console) -> None:
    endpoints = await _endpoints(request)
    console.print(_endpoint_table(request.url, endpoints))
    if request.browse is None and not request.nodes:
        return
    if request.policy == "None" and request.mode == "None":
        console.print("[yellow]session without security (policy None): nothing is signed or encrypted[/]")
    client = Client(request.url, timeout=request.timeout_s)
    pki = Pki(request.pki_dir, f"urn:{socket.gethostname()}:edge-agent:probe")
    client.application_uri = pki.application_uri
    try:
        async with asyncio.timeout(request.timeout_s * 3):
            if request.policy != "None":
                await pki.ensure_own_certificate()
                await client.set_security(
                    getattr(security_policies, f"SecurityPolicy{request.policy}"),
                    str(pki.certificate),
                    str(pki.private_key),
                    mode=getattr(ua.MessageSecurityMode, request.mode),
                )
                client.certificate_validator = pki.server_check(request.url)
            if request.username:
                client.set_user(request.username)
                client.set_password(request.password or "")
            await client.connect()
    except SESSION_ERRORS as error:
        raise ProbeError(_explain(error, request)) from None
    try:
        if request.browse is not None:
            console.print(await _browse_table(client, request.browse, request.depth))
        if request.nodes:
            console.print(await _read_table(client, request.nodes))
    finally:
        await client.disconnect()


def _explain(error: BaseException, request: OpcUaProbe) -> str:
    connection = OpcUaConnection.model_validate(
        {
            "id": "probe",
            "transport": "opcua",
            "url": request.url,
            "security_policy": request.policy,
            "security_mode": request.mode,
            "timeout_s": request.timeout_s,
        }
    )
    return describe(error, connection)


async def _endpoints(request: OpcUaProbe) -> list[Any]:
    client = Client(request.url, timeout=request.timeout_s)
    try:
        async with asyncio.timeout(request.timeout_s * 2):
            return list(await client.connect_and_get_server_endpoints())
    except (TimeoutError, OSError, ua.UaError) as error:
        raise ProbeError(f"{request.url}: no endpoints ({type(error).__name__}: {error})") from None


def _endpoint_table(url: str, endpoints: list[Any]) -> RichTable:
    table = RichTable(title=f"{url}: {len(endpoints)} endpoints")
    for column in ("endpoint", "security policy", "mode", "user identities", "server certificate"):
        table.add_column(column)
    for endpoint in endpoints:
        policy = endpoint.SecurityPolicyUri.rsplit("#", 1)[-1]
        mode = ua.MessageSecurityMode(endpoint.SecurityMode).name
        tokens = ", ".join(sorted({ua.UserTokenType(t.TokenType).name for t in endpoint.UserIdentityTokens}))
        certificate = ""
        if endpoint.ServerCertificate:
            cert = x509.load_der_x509_certificate(endpoint.ServerCertificate)
            certificate = f"{cert.subject.rfc4514_string()} (SHA-1 {thumbprint(cert)[:16]}...)"
        table.add_row(endpoint.EndpointUrl, policy, mode, tokens, certificate)
    return table


async def _browse_table(client: Any, start: str, depth: int) -> RichTable:
    table = RichTable(title=f"browse from {start} (depth {depth})")
    for column in ("node id", "browse path", "class", "value"):
        table.add_column(column, overflow="fold")
    queue: list[tuple[Any, str, int]] = [(client.get_node(start), "", 0)]
    seen = 0
    while queue and seen < MAX_BROWSED:
        node, path, level = queue.pop(0)
        for child in await node.get_children():
            seen += 1
            name = await child.read_browse_name()
            child_path = f"{path}/{name.NamespaceIndex}:{name.Name}"
            node_class = await child.read_node_class()
            value = ""
            if node_class == ua.NodeClass.Variable:
                value = await _value_text(child)
            table.add_row(child.nodeid.to_string(), child_path, node_class.name, value)
            if level + 1 < depth and node_class == ua.NodeClass.Object:
                queue.append((child, child_path, level + 1))
    return table


async def _read_table(client: Any, nodes: tuple[str, ...]) -> RichTable:
    table = RichTable(title="values")
    for column in ("node id", "value", "status"):
        table.add_column(column, overflow="fold")
    for node_id in nodes:
        node = client.get_node(node_id)
        try:
            data_value = await node.read_data_value()
        except ua.UaError as error:
            table.add_row(node_id, "", f"{type(error).__name__}")
            continue
        table.add_row(node_id, _text(data_value.Value.Value), data_value.StatusCode.name)
    return table


async def _value_text(node: Any) -> str:
    try:
        return _text(await node.read_value())
    except ua.UaError as error:
        return f"({type(error).__name__})"


def _text(value: Any) -> str:
    try:
        return repr(to_tag_value(value, RAW))
    except ConversionError:
        return repr(value)[:80]
