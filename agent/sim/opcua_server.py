"""Simulated machines served over OPC UA (asyncua) with a Machinery-like address space.

    Objects/
      machinery:Machines/                         (NodeId nsu=<SIM_URI>;s=Machines)
        sim:<machine id>                          (the workshop's `node`, e.g. s=Machines/grinder-07)
          <the profile's browse paths>            e.g. machinery:MachineryBuildingBlocks/
                                                       machinery:MachineryItemState/CurrentState

The machine behind it is the same deterministic timeline as on Modbus (agent/sim/machines.py),
translated to OPC 40001 terms: MachineryItemState (NotAvailable, OutOfService, NotExecuting,
Executing), MachineryOperationMode (None, Maintenance, Setup, Processing) and the operation
cycle counter. Endpoints: Basic256Sha256, Aes128Sha256RsaOaep and Aes256Sha256RsaPss with Sign
and SignAndEncrypt; None only when asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from asyncua import ua
from asyncua.common.node import Node
from asyncua.crypto import cert_gen, uacrypto
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server import Server
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from agent.config.compiled import Device
from agent.config.connections import OpcUaConnection
from agent.config.profile import NodeSpec
from agent.drivers.opcua_nodes import parse_node_id, path_segments
from agent.drivers.opcua_pki import agent_pki
from agent.sim.registers import TagValues
from agent.sim.server import SimulatedUnit, SimulationContext

log = logging.getLogger(__name__)

SIM_URI = "urn:shopfloor-edge-agent:simulator"
MACHINERY_URI = "http://opcfoundation.org/UA/Machinery/"
UPDATE_EVERY_S = 0.25
SECURE_ENDPOINTS = (
    ua.SecurityPolicyType.Basic256Sha256_Sign,
    ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    ua.SecurityPolicyType.Aes128Sha256RsaOaep_Sign,
    ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
    ua.SecurityPolicyType.Aes256Sha256RsaPss_Sign,
    ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
)


def machinery_values(values: TagValues) -> dict[str, Any]:
    """A simulated machine's signals in OPC 40001 terms, by the tag names of the OPC UA profiles."""
    if values["alarm_active"]:
        item_state = "OutOfService"
    elif values["running"]:
        item_state = "Executing"
    else:
        item_state = "NotExecuting"
    return {
        "item_state": ua.LocalizedText(item_state, "en"),
        "operation_mode": ua.LocalizedText("Setup" if values["setup_mode"] else "Processing", "en"),
        "cycle_counter": ua.Variant(int(values["part_count"]), ua.VariantType.UInt64),
        "rejects": ua.Variant(int(values["gauge_rejects"]), ua.VariantType.UInt32),
        "program": ua.Variant(int(values["program_no"]), ua.VariantType.UInt16),
        "alarm_code": ua.Variant(int(values["alarm_code"]), ua.VariantType.UInt16),
        "spindle_load": ua.Variant(float(values["spindle_load"]), ua.VariantType.Double),
    }


def child_id(parent: Node, name: str) -> ua.NodeId:
    """Readable string ids that follow the browse path: s=Machines/grinder-07/MachineryBuildingBlocks."""
    return ua.NodeId(ua.String(f"{parent.nodeid.Identifier!s}/{name}"), parent.nodeid.NamespaceIndex)


class SimulatedUsers:
    """Who may open a session: anonymous (if allowed), known username/password pairs, and
    users whose certificate is listed."""

    def __init__(
        self, passwords: Mapping[str, str], certificates: list[x509.Certificate], *, anonymous: bool
    ) -> None:
        self.passwords = dict(passwords)
        self.certificates = certificates
        self.anonymous = anonymous

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        # asyncua passes the secure channel's certificate even for anonymous sessions, so a
        # listed certificate admits, and an unlisted one falls through to the other checks
        if certificate is not None and self._listed(certificate):
            return User(role=UserRole.User)
        if username is not None:
            return User(role=UserRole.User) if self.passwords.get(username) == password else None
        return User(role=UserRole.User) if self.anonymous else None

    def _listed(self, certificate: Any) -> bool:
        der = certificate if isinstance(certificate, bytes) else certificate.public_bytes(Encoding.DER)
        return any(der == listed.public_bytes(Encoding.DER) for listed in self.certificates)


@dataclass
class ServedNode:
    node: Node
    tag: str


class MachineryServer:
    """One OPC UA server for the devices of one connection."""

    def __init__(
        self,
        connection: OpcUaConnection,
        devices: list[tuple[Device, Callable[[float], TagValues]]],
        clock: Callable[[], float],
        pki_dir: Path,
        *,
        passwords: Mapping[str, str] | None = None,
        user_certificates: tuple[Path, ...] = (),
        allow_none: bool = False,
    ) -> None:
        self.connection = connection
        self.devices = devices
        self.clock = clock
        self.pki_dir = pki_dir
        self.passwords = dict(passwords or {})
        self.user_certificates = user_certificates
        self.allow_none = allow_none or connection.security_policy == "None"
        host = urllib.parse.urlsplit(connection.url).hostname or "localhost"
        self.application_uri = f"urn:{host}:edge-agent-simulator:{connection.id}"
        self.certificate = pki_dir / f"{connection.id}-cert.der"
        self.private_key = pki_dir / f"{connection.id}-key.pem"
        self.server = Server()
        self._served: list[tuple[Callable[[float], TagValues], list[ServedNode]]] = []
        self._updater: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        server = self.server
        await server.init()
        server.set_endpoint(self.connection.url)
        server.set_server_name(f"edge-agent simulator ({self.connection.id})")
        await server.set_application_uri(self.application_uri)
        self.pki_dir.mkdir(parents=True, exist_ok=True)
        await cert_gen.setup_self_signed_certificate(
            self.private_key,
            self.certificate,
            self.application_uri,
            socket.gethostname(),
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
            {"commonName": f"edge-agent simulator {self.connection.id}"},
        )
        await server.load_certificate(str(self.certificate))
        await server.load_private_key(str(self.private_key))
        policies = list(SECURE_ENDPOINTS)
        if self.allow_none:
            policies.insert(0, ua.SecurityPolicyType.NoSecurity)
        server.set_security_policy(policies)
        certificates = [await uacrypto.load_certificate(str(path)) for path in self.user_certificates]
        anonymous = not self.passwords and not certificates
        server.iserver.user_manager = SimulatedUsers(self.passwords, certificates, anonymous=anonymous)
        tokens: list[type] = [ua.UserNameIdentityToken, ua.X509IdentityToken]
        if anonymous:
            tokens.append(ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        await self._build_address_space()
        await server.start()
        await self._update()
        self._updater = asyncio.create_task(self._keep_updating(), name=f"sim[{self.connection.id}].opcua")

    async def stop(self) -> None:
        if self._updater is not None:
            self._updater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._updater
        await self.server.stop()

    async def _namespace(self, uri: str) -> int:
        namespaces: list[str] = await self.server.get_namespace_array()
        if uri in namespaces:
            return namespaces.index(uri)
        return int(await self.server.register_namespace(uri))

    async def _build_address_space(self) -> None:
        sim = await self._namespace(SIM_URI)
        machinery = await self._namespace(MACHINERY_URI)
        machines = await self.server.nodes.objects.add_folder(
            ua.NodeId(ua.String("Machines"), ua.Int16(sim)), ua.QualifiedName("Machines", machinery)
        )
        namespaces = {uri: await self._namespace(uri) for uri in (SIM_URI, MACHINERY_URI)}
        for device, values_at in self.devices:
            spec = device.profile.spec
            for uri in spec.opcua.namespaces.values():
                namespaces.setdefault(uri, await self._namespace(uri))
            root_id = parse_node_id(device.node or f"nsu={SIM_URI};s=Machines/{device.id}", namespaces)
            root = await machines.add_object(root_id, ua.QualifiedName(device.id, sim))
            served = []
            folders: dict[str, Node] = {"": root}
            initial = machinery_values(values_at(self.clock()))
            for tag, node_spec in spec.nodes.items():
                if node_spec.path is None:
                    log.warning("simulator: %s.%s has an absolute node id; not served", device.id, tag)
                    continue
                if tag not in initial:
                    log.warning("simulator: %s.%s has no simulated value; not served", device.id, tag)
                    continue
                variable = await self._add_variable(
                    folders, node_spec, spec.opcua.namespaces, namespaces, initial[tag]
                )
                served.append(ServedNode(variable, tag))
            self._served.append((values_at, served))

    async def _add_variable(
        self,
        folders: dict[str, Node],
        spec: NodeSpec,
        aliases: Mapping[str, str],
        namespaces: Mapping[str, int],
        initial: Any,
    ) -> Node:
        if spec.path is None:
            raise ValueError("a simulated variable needs a browse path")
        segments = path_segments(spec.path, aliases, namespaces)
        prefix = ""
        for namespace, name in segments[:-1]:
            parent = folders[prefix]
            prefix = f"{prefix}/{namespace}:{name}"
            if prefix not in folders:
                folders[prefix] = await parent.add_object(
                    child_id(parent, name),
                    ua.QualifiedName(name, namespace),
                )
        parent = folders[prefix]
        namespace, name = segments[-1]
        return await parent.add_variable(
            child_id(parent, name),
            ua.QualifiedName(name, namespace),
            initial.Value if isinstance(initial, ua.Variant) else initial,
            initial.VariantType if isinstance(initial, ua.Variant) else None,
        )

    async def _update(self) -> None:
        now = self.clock()
        for values_at, served in self._served:
            values = machinery_values(values_at(now))
            for item in served:
                if item.tag in values:
                    value = values[item.tag]
                    variant = value if isinstance(value, ua.Variant) else ua.Variant(value)
                    await self.server.write_attribute_value(item.node.nodeid, ua.DataValue(variant))

    async def _keep_updating(self) -> None:
        while True:
            await asyncio.sleep(UPDATE_EVERY_S)
            await self._update()


async def serve_opcua(
    connection: OpcUaConnection, units: list[SimulatedUnit], context: SimulationContext
) -> MachineryServer:
    """The simulator hook of the OPC UA transport (agent/drivers/registry.py)."""
    options = context.opcua
    server = MachineryServer(
        connection,
        [(unit.device, unit.values_at) for unit in units],
        context.clock,
        options.pki_dir or Path(context.agent.state_dir) / "sim-pki",
        passwords=options.passwords,
        user_certificates=options.user_certificates,
    )
    await server.start()
    if options.trust_into_agent:
        # simulation only: the agent on this machine trusts the simulator without a manual step
        trusted = agent_pki(connection, context.agent).trusted
        trusted.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(server.certificate, trusted / f"simulator-{connection.id}.der")
    log.info(
        "simulator connection=%s endpoint=%s opcua devices=%d", connection.id, connection.url, len(units)
    )
    return server
