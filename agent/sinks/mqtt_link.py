"""One MQTT session (paho-mqtt 2.x) driven by the asyncio loop, as aiomqtt drives paho: for the
outputs that speak MQTT and need more than publishing (a will of their own, subscriptions,
incoming messages), such as the Sparkplug B edge node.

paho is not thread-safe, so it is never driven from several threads: its socket is watched with
add_reader/add_writer on the event loop and loop_misc() runs on a timer. Only the blocking
TCP/TLS connect runs once in an executor thread, while nothing else touches the client. Every
await on the broker has a timeout. TLS problems are errors, never a reason to fall back to plain
text.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from agent.config.bounded import FileReadError, check_regular_file
from agent.config.outputs import BrokerOutput
from agent.exceptions import OutputError

log = logging.getLogger(__name__)

MISC_INTERVAL_S = 1.0
MAX_TLS_FILE_BYTES = 1024 * 1024  # a CA bundle is a few hundred KB
# MQTT 5.0, 3.14.2.1: DISCONNECT reason 0x04, "the Client wishes to disconnect but requires that
# the Server also publishes its Will Message".
DISCONNECT_WITH_WILL = 0x04
# A topic filter this session never subscribes to: unsubscribing from it changes nothing, and its
# UNSUBACK tells that the broker has read every packet sent before it (fence()).
FENCE_TOPIC = "$edge-agent/fence"


def describe_tls_error(error: ssl.SSLError) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"the broker's certificate was refused: {error.verify_message}"
    return f"TLS handshake failed: {error.reason or error}"


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    qos: int
    retain: bool


def _read(client: mqtt.Client) -> None:
    client.loop_read()


def _write(client: mqtt.Client) -> None:
    client.loop_write()


class MqttLink:
    """connect() opens a clean session with a will and subscriptions; publish() queues a message
    and returns its mid; acknowledged() waits for PUBACKs; fence() waits until the broker has read
    everything sent so far. A lost connection fails every wait with an OutputError and calls
    `on_lost`; the owner connects again when it next needs to."""

    def __init__(
        self,
        config: BrokerOutput,
        output: str,
        client_id: str,
        on_message: Callable[[mqtt.MQTTMessage], None],
        on_lost: Callable[[str], None],
    ) -> None:
        self.config = config
        self.output = output
        self.client_id = client_id
        self._on_message_callback = on_message
        self._on_lost_callback = on_lost
        self._client: mqtt.Client | None = None
        self._connack: asyncio.Future[None] | None = None
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._misc: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._fd: int | None = None
        # the last connect() failed before its CONNECT packet could go out (TCP or TLS refused); a
        # timeout leaves it False: the worker may still send it
        self.connect_not_sent = False

    @property
    def endpoint(self) -> str:
        return f"{'mqtts' if self.config.tls else 'mqtt'}://{self.config.host}:{self.config.port}"

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected()

    @property
    def mqtt5(self) -> bool:
        return self.config.protocol == "5"

    def bind(self) -> None:
        """Called on the event loop that will drive the client (the sink's __aenter__)."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    def error(self, reason: str) -> OutputError:
        return OutputError(self.output, f"{self.endpoint}: {reason}")

    # -- connection --------------------------------------------------------------------------

    def _new_client(self, will: Will) -> mqtt.Client:
        config = self.config
        # Sparkplug 3.0 (tck-id-message-flow-edge-node-birth-publish-connect): a clean session,
        # MQTT 3.1.1 Clean Session, or MQTT 5 Clean Start with a Session Expiry of 0 (paho's default)
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if self.mqtt5 else mqtt.MQTTv311,
            clean_session=None if self.mqtt5 else True,
        )
        if config.username is not None:
            password = config.password.get_secret_value() if config.password else None
            client.username_pw_set(config.username, password)
        if config.tls is not None:
            client.tls_set(
                ca_certs=config.tls.ca_file,
                certfile=config.tls.cert_file,
                keyfile=config.tls.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_socket_register_write
        client.on_socket_unregister_write = self._on_socket_unregister_write
        return client

    def _check_tls_files(self) -> None:
        """TLS files are read on the event loop by tls_set: a FIFO or a device named there by
        mistake would block every loop of the agent. Each must be a regular file of sane size."""
        tls = self.config.tls
        if tls is None:
            return
        for key in ("ca_file", "cert_file", "key_file"):
            name = getattr(tls, key)
            if name is None:
                continue
            try:
                check_regular_file(Path(name), MAX_TLS_FILE_BYTES, "certificate or key file")
            except FileReadError as error:
                raise self.error(f"tls.{key} {name}: {error}") from None

    async def connect(self, will: Will, subscriptions: Sequence[tuple[str, int]]) -> None:
        loop = asyncio.get_running_loop()
        self._check_tls_files()
        client = self._new_client(will)
        self._client = client
        self._connack = loop.create_future()
        timeout_s = self.config.timeout_s
        self.connect_not_sent = False
        connect = functools.partial(
            client.connect,
            self.config.host,
            self.config.port,
            self.config.keepalive_s,
            clean_start=True if self.mqtt5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
        )
        try:
            async with asyncio.timeout(timeout_s):
                await loop.run_in_executor(None, connect)  # DNS, TCP, TLS: the client is idle meanwhile
                await self._connack
        except ssl.SSLError as error:
            self.connect_not_sent = True
            self.drop("tls")
            raise self.error(describe_tls_error(error)) from error
        except TimeoutError as error:
            self.drop("timeout")
            raise self.error(f"no answer within {timeout_s}s") from error
        except OSError as error:
            self.connect_not_sent = True
            self.drop("refused")
            raise self.error(str(error.strerror or error)) from error
        except OutputError:
            self.drop("refused")
            raise
        self._misc = asyncio.create_task(self._run_misc(client), name=f"agent[{self.output}].misc")
        if subscriptions:
            result, mid = client.subscribe(list(subscriptions))
            if result != mqtt.MQTT_ERR_SUCCESS or mid is None:
                self.drop("subscribe failed")
                raise self.error(f"subscribe failed: {mqtt.error_string(result)}")
            self._expect(mid)
            await self._wait([mid], "subscription")
        log.info("output=%s endpoint=%s event=connected", self.output, self.endpoint)

    async def _run_misc(self, client: mqtt.Client) -> None:
        while True:
            await asyncio.sleep(MISC_INTERVAL_S)
            client.loop_misc()  # keep-alive pings and detection of a silent broker

    def disconnect(self, *, with_will: bool = False) -> None:
        """Close the session. with_will, on MQTT 5: the broker publishes the will (Sparkplug's NDEATH)."""
        reason = (
            ReasonCode(PacketTypes.DISCONNECT, identifier=DISCONNECT_WITH_WILL)
            if with_will and self.mqtt5
            else None
        )
        self.drop("closed", reason)

    def drop(self, reason: str, disconnect_reason: ReasonCode | None = None) -> None:
        """Forget the client first: paho calls on_disconnect from inside disconnect(), and a client
        that is no longer ours is not dropped twice (paho's callback lock is not re-entrant)."""
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None
        client, self._client = self._client, None
        if client is not None:
            if self._fd is not None and self._loop is not None:
                self._unwatch(self._fd)
                self._fd = None
            client.disconnect(reasoncode=disconnect_reason)
            client.loop_write()  # the DISCONNECT goes out and paho closes the socket now
        for future in self._pending.values():
            if not future.done():
                future.set_exception(self.error(f"connection lost ({reason})"))
        self._pending.clear()

    # -- paho callbacks (always on the event loop thread, or handed to it) ----------------------

    def _on_loop(self, function: Callable[..., object], *args: object) -> None:
        """Run on the event loop thread: now if we are on it, else handed over (connect runs in a worker)."""
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            function(*args)
        else:
            loop.call_soon_threadsafe(function, *args)

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        fd = sock.fileno()  # remembered: by the time a close is handled the socket object says -1
        self._fd = fd
        self._on_loop(self._watch, fd, client)

    def _watch(self, fd: int, client: mqtt.Client) -> None:
        if self._loop is not None:
            self._loop.add_reader(fd, functools.partial(_read, client))

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if self._fd is not None:
            self._on_loop(self._unwatch, self._fd)
            self._fd = None

    def _unwatch(self, fd: int) -> None:
        if self._loop is not None:
            self._loop.remove_reader(fd)
            self._loop.remove_writer(fd)

    def _on_socket_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if self._loop is not None and self._fd is not None:
            self._on_loop(self._loop.add_writer, self._fd, functools.partial(_write, client))

    def _on_socket_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if self._loop is not None and self._fd is not None:
            self._on_loop(self._loop.remove_writer, self._fd)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if self._connack is None or self._connack.done():
            return
        if reason.is_failure:
            self._connack.set_exception(self.error(f"broker refused the connection: {reason}"))
        else:
            self._connack.set_result(None)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if client is self._client:
            log.warning(
                "output=%s endpoint=%s event=disconnected reason=%r", self.output, self.endpoint, str(reason)
            )
            self.drop(str(reason))
            self._on_lost_callback(str(reason))

    def _settle(self, mid: int, failure: str | None) -> None:
        future = self._pending.pop(mid, None)
        if future is None or future.done():
            return
        if failure is not None:
            future.set_exception(self.error(failure))
        else:
            future.set_result(None)

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Any
    ) -> None:
        self._settle(mid, f"broker refused message {mid}: {reason}" if reason.is_failure else None)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode], properties: Any
    ) -> None:
        # UNSUBACK of FENCE_TOPIC says "no subscription existed" (0x11) on MQTT 5: that is the answer
        refused = [str(r) for r in reasons if r.is_failure and r.value != 0x11]
        self._settle(mid, f"broker refused a subscription: {', '.join(refused)}" if refused else None)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        # handled after paho's callback returns: a handler that disconnects (a host went offline)
        # would wait inside it on paho's callback lock, which is not re-entrant
        if client is self._client and self._loop is not None:
            self._loop.call_soon(self._on_message_callback, message)

    # -- publishing --------------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int, *, retain: bool = False) -> int:
        """Queue a message; its mid, to wait for with acknowledged() (QoS 1 and 2)."""
        client = self._client
        if client is None or not client.is_connected():
            raise self.error("not connected")
        info = client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.drop(mqtt.error_string(info.rc))
            raise self.error(f"publish failed: {mqtt.error_string(info.rc)}")
        if qos > 0 and not info.is_published():
            self._expect(info.mid)
        return info.mid

    def _expect(self, mid: int) -> None:
        """An answer to wait for; made before any await, so it cannot arrive unexpected."""
        if self._loop is not None:
            self._pending[mid] = self._loop.create_future()

    async def acknowledged(self, mids: Sequence[int]) -> None:
        await self._wait(mids, "acknowledgement")

    async def fence(self) -> None:
        """Return once the broker has read every packet sent before: it answers a connection's
        packets in order (MQTT 5.0, 4.6), so the UNSUBACK of a later UNSUBSCRIBE covers the QoS 0
        messages sent before it, which have no acknowledgement of their own."""
        client = self._client
        if client is None or not client.is_connected():
            raise self.error("not connected")
        result, mid = client.unsubscribe(FENCE_TOPIC)
        if result != mqtt.MQTT_ERR_SUCCESS or mid is None:
            self.drop(mqtt.error_string(result))
            raise self.error(f"unsubscribe failed: {mqtt.error_string(result)}")
        self._expect(mid)
        await self._wait([mid], "acknowledgement")

    async def _wait(self, mids: Sequence[int], what: str) -> None:
        # a mid without a future was answered before we asked (QoS 0, or a very fast broker)
        futures = [self._pending[mid] for mid in mids if mid in self._pending]
        try:
            async with asyncio.timeout(self.config.timeout_s):
                await asyncio.gather(*futures)
        except TimeoutError as error:
            self.drop(f"{what} timeout")
            raise self.error(f"no {what} within {self.config.timeout_s}s") from error
