"""`edge-agent probe opc.tcp://...`: what an OPC UA server offers and holds, for commissioning.

    edge-agent probe opc.tcp://10.0.1.50:4840                       endpoints and security policies
    edge-agent probe opc.tcp://10.0.1.50:4840 --policy Basic256Sha256 --browse i=85 --depth 3
    edge-agent probe opc.tcp://10.0.1.50:4840 --policy Basic256Sha256 --node "ns=3;s=Machines/g7/State"

Endpoints come from GetEndpoints, which every server answers without a session. Browsing and
reading open a session as the agent would: a certificate, a trust store (a refused server
certificate lands in rejected/ with the command to trust it) and a user identity. Node ids are
resolved as the agent resolves them (`nsu=<namespace uri>;s=...` looked up on the server).

probe keeps its own certificate and trust store (~/.local/state/edge-agent/probe-pki). With
`--pki <the agent's pki folder>` it opens sessions as the agent, with the agent's certificate
used as it is: probe never replaces a certificate it finds.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncua import Client, ua
from asyncua.crypto import security_policies
from cryptography import x509
from rich.console import Console
from rich.table import Table as RichTable

from agent.commands.probe import ProbeError
from agent.config.connections import OpcUaConnection, SecurityMode, SecurityPolicy
from agent.config.profile import NodeSpec
from agent.drivers.connect_errors import describe_connect_error
from agent.drivers.opcua import SESSION_ERRORS, ConversionError, describe, to_tag_value
from agent.drivers.opcua_nodes import NodeAddressError, parse_node_id
from agent.drivers.opcua_pki import Pki, thumbprint

RAW = NodeSpec(node="i=0")  # no scale, offset or value map: values as the server sends them
MAX_BROWSED = 500
PROBE_APPLICATION = "probe"  # the application URI's last part when probe makes its own certificate


def default_pki_dir() -> Path:
    """probe's own certificates and trust store: never the agent's, whose certificate a server may
    have trusted (asyncua would replace a certificate whose application URI differs)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "edge-agent" / "probe-pki"


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
    pki_dir: Path = field(default_factory=default_pki_dir)
    timeout_s: float = 5.0


async def probe_opcua(request: OpcUaProbe, console: Console) -> bool:
    """Print what the server offers and holds; False when a node asked for is missing or unreadable."""
    endpoints = await _endpoints(request)
    console.print(_endpoint_table(request.url, endpoints))
    if request.browse is None and not request.nodes:
        return True
    if request.policy == "None" and request.mode == "None":
        console.print("[yellow]session without security (policy None): nothing is signed or encrypted[/]")
    client = Client(request.url, timeout=request.timeout_s)
    try:
        async with asyncio.timeout(request.timeout_s * 3):
            if request.policy != "None":
                pki = await _identity(request.pki_dir, console)
                client.application_uri = pki.application_uri
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
        namespaces = {uri: index for index, uri in enumerate(await client.get_namespace_array())}
        ok = True
        if request.browse is not None:
            console.print(await _browse_table(client, request.browse, request.depth, namespaces))
        if request.nodes:
            table, ok = await _read_table(client, request.nodes, namespaces)
            console.print(table)
        return ok
    finally:
        await client.disconnect()


async def _identity(pki_dir: Path, console: Console) -> Pki:
    """The application certificate to open sessions with: the one in pki_dir/own as it is (never
    replaced, even when it was made for another application URI), or a new one for probe."""
    existing = Pki(pki_dir, "")
    if existing.certificate.exists():
        if not existing.private_key.exists():
            raise ProbeError(f"{existing.certificate} has no private key {existing.private_key} beside it")
        certificate = x509.load_der_x509_certificate(existing.certificate.read_bytes())
        uri = _application_uri(certificate)
        if uri is None:
            raise ProbeError(f"{existing.certificate} names no application URI: not an OPC UA certificate")
        pki = Pki(pki_dir, uri)
        for folder in (pki.trusted, pki.rejected):
            folder.mkdir(parents=True, exist_ok=True)
        console.print(f"session as {uri} (certificate {pki.certificate}, used as it is)", highlight=False)
        return pki
    pki = Pki(pki_dir, f"urn:{socket.gethostname()}:edge-agent:{PROBE_APPLICATION}")
    await pki.ensure_own_certificate()
    console.print(
        f"session as {pki.application_uri}: made a new certificate {pki.certificate}; a server that "
        "checks clients must trust it",
        highlight=False,
    )
    return pki


def _application_uri(certificate: x509.Certificate) -> str | None:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def _explain(error: BaseException, request: OpcUaProbe) -> str:
    if isinstance(error, TimeoutError | OSError):
        return f"cannot connect to {request.url}: {describe_connect_error(error, request.timeout_s)}"
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
    except (TimeoutError, OSError) as error:
        reason = describe_connect_error(error, request.timeout_s * 2)
        raise ProbeError(f"cannot connect to {request.url}: {reason}") from None
    except ua.UaError as error:
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


def _resolve(text: str, namespaces: dict[str, int]) -> Any:
    """A node id as the configuration writes it (nsu=<uri>;..., ns=2;..., i=85), the agent's way."""
    try:
        return parse_node_id(text, namespaces)
    except NodeAddressError as error:
        raise ProbeError(str(error)) from None


def _portable(node_id: Any, namespaces: dict[str, int]) -> str:
    """ns=2;s=X as nsu=<uri>;s=X: namespace indexes can change when a server restarts, URIs do not,
    so this is the form to copy into a profile."""
    text = str(node_id.to_string())
    index = node_id.NamespaceIndex
    if index == 0:
        return text
    uri = next((u for u, i in namespaces.items() if i == index), None)
    return text.replace(f"ns={index};", f"nsu={uri};", 1) if uri is not None else text


async def _browse_table(client: Any, start: str, depth: int, namespaces: dict[str, int]) -> RichTable:
    root = client.get_node(_resolve(start, namespaces))
    try:
        await root.read_browse_name()
    except ua.UaStatusCodeError as error:
        raise ProbeError(f"cannot browse {start}: {_status_text(error)}") from None
    table = RichTable(title=f"browse from {start} (depth {depth})")
    for column in ("node id", "browse path", "class", "value"):
        table.add_column(column, overflow="fold")
    queue: list[tuple[Any, str, int]] = [(root, "", 0)]
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
            table.add_row(_portable(child.nodeid, namespaces), child_path, node_class.name, value)
            if level + 1 < depth and node_class == ua.NodeClass.Object:
                queue.append((child, child_path, level + 1))
    if seen == 0:
        table.caption = f"{start} exists and has no children"
    return table


def _status_text(error: ua.UaStatusCodeError) -> str:
    name = type(error).__name__
    if name == "BadNodeIdUnknown":
        return "the node does not exist on this server (BadNodeIdUnknown)"
    if name == "BadAttributeIdInvalid":
        return "the node has no value: an object, not a variable; --browse it (BadAttributeIdInvalid)"
    return f"{name}: {error}"


async def _read_table(
    client: Any, nodes: tuple[str, ...], namespaces: dict[str, int]
) -> tuple[RichTable, bool]:
    table = RichTable(title="values")
    for column in ("node id", "resolved", "value", "status"):
        table.add_column(column, overflow="fold")
    ok = True
    for text in nodes:
        try:
            node_id = parse_node_id(text, namespaces)
        except NodeAddressError as error:
            table.add_row(text, "", "", str(error))
            ok = False
            continue
        try:
            data_value = await client.get_node(node_id).read_data_value()
        except ua.UaStatusCodeError as error:
            table.add_row(text, node_id.to_string(), "", _status_text(error))
            ok = False
            continue
        status = data_value.StatusCode
        ok = ok and not status.is_bad()
        table.add_row(text, node_id.to_string(), _text(data_value.Value.Value), status.name)
    return table, ok


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
