"""OPC UA driver (asyncua): secure sessions, batched reads, subscriptions, and a session that is
re-created from scratch whenever the server goes away.

One driver per server. After every connect the node addresses are resolved again (namespace
indexes may have changed with a server restart): absolute ids in one pass, browse paths in one
TranslateBrowsePathsToNodeIds call. Nodes in `poll` mode are read every cycle in as few Read
calls as `max_nodes_per_read` allows; nodes in `subscribe` mode get monitored items (one
subscription per publishing interval) and each cycle reports their latest value.

A server that stops answering is noticed within two keep-alive periods: a cycle without other
traffic reads the server's state with `keepalive_s` as its timeout, at most `keepalive_s` after
the last answer. Then every value is bad quality, the client object is dropped (never reused:
asyncua's state after a lost session is not worth trusting) and a new one connects with capped,
jittered backoff, with new subscriptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from asyncua import Client, ua
from asyncua.crypto import security_policies
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from agent.backoff import Backoff
from agent.config.bounded import FileReadError, read_bounded
from agent.config.compiled import Device
from agent.config.connections import OpcUaConnection
from agent.config.profile import NodeMode, NodeSpec
from agent.drivers.base import Clock, HandOver, ReadResult
from agent.drivers.opcua_nodes import NodeAddressError, parse_node_id, path_segments, relative_path
from agent.drivers.opcua_pki import Pki, UntrustedServerError
from agent.samples import DeviceStatus, Quality, Sample, TagValue
from agent.throttle import CONNECTION_FAULT_LOG_EVERY_S, EventThrottle

log = logging.getLogger(__name__)

SERVER_STATE = "i=2259"  # Server/ServerStatus/State: the cheapest sign of life
DISCONNECT_TIMEOUT_S = 2.0
# What a session attempt or a request can fail with when the server, the network or the trust
# is the problem (ConnectionError is an OSError); anything else is a bug and propagates.
MAX_IDENTITY_FILE_BYTES = 1024 * 1024  # a certificate or key is a few KB


class IdentityFileError(OSError):
    """The user certificate or key named in the configuration cannot be used (said with its path)."""


SESSION_ERRORS = (TimeoutError, OSError, UaError, UntrustedServerError, asyncio.IncompleteReadError)
USER_ERRORS = {
    "BadUserAccessDenied": "the server refused the user (wrong username or password, or no such user)",
    "BadIdentityTokenInvalid": "the server refused the user identity as invalid",
    "BadIdentityTokenRejected": "the server does not accept this kind of user identity",
    "BadCertificateUntrusted": "the server does not trust the agent's certificate: trust it on the server",
    "BadSecurityChecksFailed": (
        "the server does not trust the agent's certificate, or the security settings differ"
    ),
}


class ConversionError(ValueError):
    pass


def to_tag_value(value: Any, spec: NodeSpec) -> TagValue:  # noqa: PLR0911 - one return per kind of value
    """An OPC UA value as a tag value: numbers scaled, enumerations named, texts as text."""
    if isinstance(value, ua.LocalizedText):
        return value.Text or ""
    if isinstance(value, ua.QualifiedName):
        return str(value.Name)
    if isinstance(value, ua.NodeId):
        return str(value.to_string())
    if isinstance(value, bool):
        return value
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=value.tzinfo or dt.UTC).timestamp()
    if isinstance(value, int):
        if spec.values is not None:
            return spec.values.get(value, f"unknown {value}")
        if spec.scale == 1.0 and spec.offset == 0.0:
            return int(value)
        return value * spec.scale + spec.offset
    if isinstance(value, float):
        scaled = value * spec.scale + spec.offset
        if not math.isfinite(scaled):
            raise ConversionError(f"not a finite number: {value!r}")
        return scaled
    if isinstance(value, str):
        return value
    if value is None:
        raise ConversionError("no value")
    raise ConversionError(f"unsupported value type {type(value).__name__}")


@dataclass
class NodeTag:
    device: str
    tag: str
    spec: NodeSpec
    mode: NodeMode
    publishing_s: float
    sampling_s: float
    queue_size: int
    aliases: dict[str, str]
    root: str | None
    node_id: Any = None  # ua.NodeId once resolved on this session
    problem: str | None = None  # why it could not be resolved or subscribed


@dataclass
class Latest:
    value: TagValue | None
    error: str | None


class _Changes:
    """asyncua's subscription handler: keeps each node's latest value."""

    def __init__(self, driver: OpcUaDriver) -> None:
        self.driver = driver

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        self.driver.on_change(node.nodeid, data.monitored_item.Value)

    def status_change_notification(self, status: Any) -> None:
        self.driver.on_lost(f"subscription status {status.Status}")


class OpcUaDriver:
    def __init__(
        self,
        connection: OpcUaConnection,
        devices: list[Device],
        clock: Clock,
        pki: Pki,
    ) -> None:
        self.connection = connection
        self.name = connection.id
        self.interval_s = connection.interval_s
        self.devices = [d.id for d in devices]
        self.pki = pki
        self._clock = clock
        self.tags = [tag for device in devices for tag in _node_tags(device)]
        self._client: Any = None
        self._by_node: dict[Any, list[NodeTag]] = defaultdict(list)
        self._latest: dict[tuple[str, str], Latest] = {}
        self._lost: str | None = None
        self._last_contact = 0.0
        self._last_error = "not connected yet"
        self._next_attempt = 0.0
        self._backoff = Backoff(
            initial_s=min(1.0, connection.interval_s), maximum_s=connection.reconnect_max_s
        )
        self._throttle = EventThrottle(CONNECTION_FAULT_LOG_EVERY_S)
        self._warned_insecure = False
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def endpoint(self) -> str:
        return self.connection.url

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def __aenter__(self) -> Self:
        await self._connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._drop()
        await asyncio.gather(*self._closing, return_exceptions=True)

    # -- the cycle ------------------------------------------------------------------------------

    async def read(self, hand_over: HandOver | None = None) -> ReadResult:
        """One read request (or a few, max_nodes_per_read) for every device's nodes: the samples
        come all at once, so there is nothing to hand over device by device (the poller hands the
        whole cycle over)."""
        result = ReadResult()
        if self._lost is not None:
            await self._fail(self._lost)
        if self._client is None and asyncio.get_running_loop().time() >= self._next_attempt:
            await self._connect()
        if self._client is None:
            self._all_bad(result, self._last_error)
            return result
        polled = [t for t in self.tags if t.mode is NodeMode.POLL and t.node_id is not None]
        try:
            await self._read_polled(polled, result)
            if not polled and time.monotonic() - self._last_contact >= self.connection.keepalive_s:
                await self._probe(result)
        except SESSION_ERRORS as error:
            await self._fail(describe(error, self.connection))
            self._all_bad(result, self._last_error)
            return result
        self._report(result)
        return result

    async def _read_polled(self, polled: list[NodeTag], result: ReadResult) -> None:
        chunk = self.connection.max_nodes_per_read
        for start in range(0, len(polled), chunk):
            batch = polled[start : start + chunk]
            result.requests += 1
            async with asyncio.timeout(self.connection.keepalive_s):  # silent this long: gone
                values = await self._client.uaclient.read_attributes(
                    [t.node_id for t in batch], ua.AttributeIds.Value
                )
            self._last_contact = time.monotonic()
            for tag, data_value in zip(batch, values, strict=True):
                self._latest[(tag.device, tag.tag)] = _latest(data_value, tag.spec)

    async def _probe(self, result: ReadResult) -> None:
        result.requests += 1
        async with asyncio.timeout(self.connection.keepalive_s):
            await self._client.uaclient.read_attributes(
                [ua.NodeId.from_string(SERVER_STATE)], ua.AttributeIds.Value
            )
        self._last_contact = time.monotonic()

    def _report(self, result: ReadResult) -> None:
        now = self._clock()
        errors: dict[str, list[str]] = defaultdict(list)
        for tag in self.tags:
            latest = self._latest.get((tag.device, tag.tag))
            if tag.problem is not None:
                latest = Latest(None, tag.problem)
            elif latest is None:
                latest = Latest(None, "no value from the server yet")
            if latest.error is None:
                result.samples.append(Sample(tag.device, tag.tag, latest.value, now))
            else:
                result.samples.append(Sample(tag.device, tag.tag, None, now, Quality.BAD))
                errors[tag.device].append(f"{tag.tag}: {latest.error}")
        for device in self.devices:
            problems = errors.get(device, [])
            result.statuses.append(DeviceStatus(device, True, now, "; ".join(problems[:3]) or None))

    def _all_bad(self, result: ReadResult, error: str) -> None:
        now = self._clock()
        result.samples += [Sample(t.device, t.tag, None, now, Quality.BAD) for t in self.tags]
        result.statuses += [DeviceStatus(device, False, now, error) for device in self.devices]

    # -- subscription callbacks (run on the event loop) ----------------------------------------

    def on_change(self, node_id: Any, data_value: Any) -> None:
        self._last_contact = time.monotonic()
        for tag in self._by_node.get(node_id, []):
            self._latest[(tag.device, tag.tag)] = _latest(data_value, tag.spec)

    def on_lost(self, reason: str) -> None:
        self._lost = reason

    # -- session ---------------------------------------------------------------------------------

    async def _connect(self) -> None:
        client = self._new_client()
        try:
            async with asyncio.timeout(self.connection.timeout_s * 3):
                await self._secure(client)
                await client.connect()
            self._client = client
            async with asyncio.timeout(self.connection.timeout_s * 3):
                await self._resolve()
                await self._subscribe()
        except SESSION_ERRORS as error:
            self._client = client  # so that _fail closes it
            await self._fail(describe(error, self.connection))
            return
        self._lost = None
        self._last_contact = time.monotonic()
        self._backoff.reset()
        self._throttle.reset("connect_failed")
        log.info(
            "connection=%s endpoint=%s event=connected security=%s/%s nodes=%d subscribed=%d",
            self.name,
            self.endpoint,
            self.connection.security_policy,
            self.connection.security_mode,
            len(self.tags),
            sum(1 for t in self.tags if t.mode is NodeMode.SUBSCRIBE and t.problem is None),
        )

    def _new_client(self) -> Any:
        client = Client(
            self.connection.url,
            timeout=self.connection.timeout_s,
            watchdog_intervall=self.connection.keepalive_s,
        )
        client.application_uri = self.pki.application_uri
        client.name = client.description = f"shopfloor edge agent ({self.name})"
        client.session_timeout = max(60_000, int(self.connection.keepalive_s * 4000))
        return client

    async def _secure(self, client: Any) -> None:
        connection = self.connection
        if connection.security_policy == "None":
            if not self._warned_insecure:
                self._warned_insecure = True
                log.warning(
                    "connection=%s endpoint=%s event=insecure_session detail='security_policy None: "
                    "values and passwords cross the network unencrypted and unsigned'",
                    self.name,
                    self.endpoint,
                )
        else:
            await self.pki.ensure_own_certificate()
            await client.set_security(
                getattr(security_policies, f"SecurityPolicy{connection.security_policy}"),
                str(self.pki.certificate),
                str(self.pki.private_key),
                mode=getattr(ua.MessageSecurityMode, connection.security_mode),
            )
            client.certificate_validator = self.pki.server_check(connection.url)
        if connection.username is not None:
            client.set_user(connection.username)
            if connection.password is not None:
                client.set_password(connection.password.get_secret_value())
        if connection.user_certificate is not None and connection.user_private_key is not None:
            # read here, bounded: asyncua would read whatever the path names to its end (/dev/zero)
            # or wait on it forever (a FIFO), once per reconnect
            certificate = await asyncio.to_thread(_identity_file, connection.user_certificate)
            key = await asyncio.to_thread(_identity_file, connection.user_private_key)
            await client.load_client_certificate(certificate, _key_format(connection.user_certificate))
            await client.load_private_key(key, extension=_key_format(connection.user_private_key))

    async def _resolve(self) -> None:
        """Node addresses to node ids on this session: absolute ids directly, browse paths in one call."""
        namespaces = {uri: index for index, uri in enumerate(await self._client.get_namespace_array())}
        self._by_node.clear()
        by_path: list[tuple[NodeTag, Any]] = []
        for tag in self.tags:
            tag.node_id, tag.problem = None, None
            if tag.spec.node is None and (tag.spec.path is None or tag.root is None):
                tag.problem = "neither a node id nor a browse path from the device's node"  # config-checked
                continue
            try:
                if tag.spec.node is not None:
                    tag.node_id = parse_node_id(tag.spec.node, namespaces)
                elif tag.spec.path is not None and tag.root is not None:
                    browse = ua.BrowsePath()
                    browse.StartingNode = parse_node_id(tag.root, namespaces)
                    browse.RelativePath = relative_path(path_segments(tag.spec.path, tag.aliases, namespaces))
                    by_path.append((tag, browse))
            except NodeAddressError as error:
                tag.problem = str(error)
        if by_path:
            results = await self._client.uaclient.translate_browsepaths_to_nodeids([b for _, b in by_path])
            for (tag, _), found in zip(by_path, results, strict=True):
                if found.StatusCode.is_good() and found.Targets:
                    tag.node_id = found.Targets[0].TargetId
                else:
                    tag.problem = f"browse path {tag.spec.path} not found ({found.StatusCode.name})"
        for tag in self.tags:
            if tag.problem is not None:
                self._throttle_log(
                    "node_" + tag.device + tag.tag,
                    "device=%s tag=%s event=node_unusable reason=%r",
                    tag.device,
                    tag.tag,
                    tag.problem,
                )
            elif tag.node_id is not None:
                self._by_node[tag.node_id].append(tag)

    async def _subscribe(self) -> None:
        groups: dict[tuple[float, float, int, float | None], list[NodeTag]] = defaultdict(list)
        for tag in self.tags:
            if tag.mode is NodeMode.SUBSCRIBE and tag.node_id is not None:
                groups[(tag.publishing_s, tag.sampling_s, tag.queue_size, tag.spec.deadband)].append(tag)
        subscriptions: dict[float, Any] = {}
        handler = _Changes(self)
        for (publishing_s, sampling_s, queue_size, deadband), tags in groups.items():
            if publishing_s not in subscriptions:
                subscriptions[publishing_s] = await self._client.create_subscription(
                    publishing_s * 1000, handler
                )
            subscription = subscriptions[publishing_s]
            nodes = [self._client.get_node(t.node_id) for t in tags]
            if deadband is None:
                handles = await subscription.subscribe_data_change(
                    nodes, queuesize=queue_size, sampling_interval=sampling_s * 1000
                )
            else:  # asyncua 2.1 takes no sampling interval with a deadband: the server's default applies
                handles = await subscription.deadband_monitor(nodes, deadband, 1, queue_size)
            for tag, handle in zip(tags, handles, strict=True):
                if isinstance(handle, ua.StatusCode):
                    tag.problem = f"cannot subscribe ({handle.name})"

    async def _fail(self, error: str) -> None:
        """The session is gone or unusable: drop the client, back off, say so (rate-limited)."""
        await self._drop()
        self._latest.clear()
        self._lost = None
        self._last_error = error
        delay = self._backoff.next_delay()
        self._next_attempt = asyncio.get_running_loop().time() + delay
        self._throttle_log(
            "connect_failed",
            "connection=%s endpoint=%s event=session_failed error=%r retry_in=%.1fs",
            self.name,
            self.endpoint,
            error,
            delay,
        )

    async def _drop(self) -> None:
        """Forget the client now; say goodbye to the server in the background (a hung server would
        hold a goodbye for DISCONNECT_TIMEOUT_S, and the values must turn bad at once)."""
        client, self._client = self._client, None
        if client is not None:
            task = asyncio.create_task(_close(client), name=f"driver[{self.name}].close_session")
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _throttle_log(self, key: str, message: str, *args: object) -> None:
        held = self._throttle.allow(key)
        if held is not None:
            log.warning(message + " repeats=%d", *args, held)  # noqa: G003 - a format string, not a value


async def _close(client: Any) -> None:
    try:
        async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
            await client.disconnect()
    except Exception:  # noqa: BLE001 - a dead or hung server cannot be said goodbye to
        with contextlib.suppress(Exception):
            client.disconnect_socket()


def _latest(data_value: Any, spec: NodeSpec) -> Latest:
    status = data_value.StatusCode
    if status is not None and not status.is_good():
        return Latest(None, f"status {status.name}")
    try:
        raw = data_value.Value.Value if data_value.Value is not None else None
        return Latest(to_tag_value(raw, spec), None)
    except ConversionError as error:
        return Latest(None, str(error))


def _node_tags(device: Device) -> list[NodeTag]:
    defaults = device.profile.spec.opcua
    return [
        NodeTag(
            device=device.id,
            tag=name,
            spec=spec,
            mode=spec.mode or defaults.mode,
            publishing_s=defaults.publishing_interval_s,
            sampling_s=spec.sampling_interval_s
            if spec.sampling_interval_s is not None
            else defaults.sampling_interval_s,
            queue_size=defaults.queue_size,
            aliases=dict(defaults.namespaces),
            root=device.node,
        )
        for name, spec in device.profile.spec.nodes.items()
    ]


def _identity_file(name: str) -> bytes:
    try:
        return read_bounded(Path(name), MAX_IDENTITY_FILE_BYTES, "certificate or key file")
    except FileReadError as error:
        raise IdentityFileError(f"user identity file {name}: {error}") from None


def _key_format(name: str) -> str:
    """As asyncua decides when it reads the file itself: PEM by the .pem suffix, else DER."""
    return "pem" if Path(name).suffix.lower() == ".pem" else "der"


def describe(error: BaseException, connection: OpcUaConnection) -> str:  # noqa: PLR0911 - one per kind
    """An exception from a session attempt, worded for the plant engineer."""
    if isinstance(error, UntrustedServerError | IdentityFileError):
        return str(error)
    if isinstance(error, TimeoutError):
        return f"no answer from {connection.url} within {connection.timeout_s:g} s"
    if isinstance(error, ConnectionRefusedError):
        return f"connection refused by {connection.url} (no OPC UA server on that port?)"
    if isinstance(error, UaStatusCodeError):
        name = type(error).__name__
        for code, meaning in USER_ERRORS.items():
            if code in name or code in str(error):
                return f"{meaning} ({code})"
        return f"{name}: {error}"
    if "No matching endpoints" in str(error):
        return (
            f"the server offers no endpoint with security {connection.security_policy}/"
            f"{connection.security_mode}: see `edge-agent probe {connection.url}`"
        )
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
