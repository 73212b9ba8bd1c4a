"""MQTT output (paho-mqtt 2.x), driven by the asyncio loop the way aiomqtt drives paho.

paho is not thread-safe, so it is never driven from several threads: its socket is watched with
add_reader/add_writer on the event loop and loop_misc() runs on a timer. Only the blocking
TCP/TLS connect runs once in an executor thread, while nothing else touches the client.

write() publishes a batch (at most `max_inflight` records, so that is all a reconnect can
duplicate) and returns when every message is acknowledged (PUBACK for QoS 1, PUBCOMP for QoS 2).
TLS problems are errors, never a reason to fall back to plain text.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from agent.config.bounded import FileReadError, check_regular_file
from agent.config.outputs import MqttOutput
from agent.exceptions import OutputError
from agent.records import Envelope, RecordKind
from agent.sinks.retention import RetainedFigures
from agent.sinks.topics import MqttTopics, TopicRoot
from agent.sinks.umh import UmhTopics

log = logging.getLogger(__name__)

MISC_INTERVAL_S = 1.0
MAX_TLS_FILE_BYTES = 1024 * 1024  # a CA bundle is a few hundred KB
CLOSE_TIMEOUT_S = 3.0


def describe_tls_error(error: ssl.SSLError) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"the broker's certificate was refused: {error.verify_message}"
    return f"TLS handshake failed: {error.reason or error}"


def _read(client: mqtt.Client) -> None:
    client.loop_read()


def _write(client: mqtt.Client) -> None:
    client.loop_write()


class MqttSink:
    def __init__(self, config: MqttOutput, topics: TopicRoot) -> None:
        self.name = "mqtt"
        self.config = config
        self.topics = topics
        self.style: MqttTopics = UmhTopics(topics) if config.topic_style == "umh" else topics
        self.retained = RetainedFigures(config.retain)
        self._client: mqtt.Client | None = None
        self._connack: asyncio.Future[None] | None = None
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._misc: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._fd: int | None = None

    @property
    def endpoint(self) -> str:
        return f"{'mqtts' if self.config.tls else 'mqtt'}://{self.config.host}:{self.config.port}"

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected()

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        return self  # connecting is the first write's job: a broker down at start-up stops nothing

    async def __aexit__(self, *exc: object) -> None:
        client = self._client
        if client is not None and client.is_connected():
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    info = client.publish(self.style.status, "offline", qos=1, retain=True)
                    await self._acknowledged([info.mid])
            except (TimeoutError, OutputError):
                log.warning("sink=mqtt event=offline_status_not_sent")
            client.disconnect()
        self._drop_connection("closed")

    # -- connection --------------------------------------------------------------------------

    def _new_client(self) -> mqtt.Client:
        config = self.config
        protocol = mqtt.MQTTv5 if config.protocol == "5" else mqtt.MQTTv311
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id or f"edge-agent-{self.topics.agent}",
            protocol=protocol,
            clean_session=None if protocol == mqtt.MQTTv5 else True,
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
        client.will_set(self.style.status, "offline", qos=1, retain=True)
        client.max_inflight_messages_set(config.max_inflight)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
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
                raise OutputError("mqtt", f"{self.endpoint}: tls.{key} {name}: {error}") from None

    async def _connect(self) -> mqtt.Client:
        loop = asyncio.get_running_loop()
        self._check_tls_files()
        client = self._new_client()
        self._client = client
        self._connack = loop.create_future()
        try:
            async with asyncio.timeout(self.config.timeout_s):
                # the one blocking call (DNS, TCP, TLS handshake): the client is idle meanwhile
                await loop.run_in_executor(
                    None, client.connect, self.config.host, self.config.port, self.config.keepalive_s
                )
                await self._connack
        except ssl.SSLError as error:
            self._drop_connection("tls")
            raise OutputError("mqtt", f"{self.endpoint}: {describe_tls_error(error)}") from error
        except TimeoutError as error:
            self._drop_connection("timeout")
            raise OutputError(
                "mqtt", f"{self.endpoint}: no answer within {self.config.timeout_s}s"
            ) from error
        except OSError as error:
            self._drop_connection("refused")
            raise OutputError("mqtt", f"{self.endpoint}: {error.strerror or error}") from error
        except OutputError:
            self._drop_connection("refused")
            raise
        self._misc = asyncio.create_task(self._run_misc(client), name="agent[mqtt].misc")
        info = client.publish(self.style.status, "online", qos=1, retain=True)
        await self._acknowledged([info.mid])
        log.info("sink=mqtt endpoint=%s event=connected", self.endpoint)
        return client

    async def _run_misc(self, client: mqtt.Client) -> None:
        while True:
            await asyncio.sleep(MISC_INTERVAL_S)
            client.loop_misc()  # keep-alive pings and detection of a silent broker

    def _drop_connection(self, reason: str) -> None:
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None
        client, self._client = self._client, None
        if client is not None:
            if self._fd is not None and self._loop is not None:
                self._unwatch(self._fd)
                self._fd = None
            client.disconnect()
            client.loop_write()  # lets paho close the socket now rather than at garbage collection
        for future in self._pending.values():
            if not future.done():
                future.set_exception(OutputError("mqtt", f"{self.endpoint}: connection lost ({reason})"))
        self._pending.clear()

    # -- paho callbacks (always on the event loop thread, or handed to it) ----------------------

    def _on_loop(self, function: Callable[..., object], *args: object) -> None:
        """Run on the event loop thread: now if we are on it, else handed over (connect runs in a worker)."""
        loop = self._loop
        if loop is None:  # paho calls back only once the sink was entered; nothing to hand over to
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
            self._connack.set_exception(
                OutputError("mqtt", f"{self.endpoint}: broker refused the connection: {reason}")
            )
        else:
            self._connack.set_result(None)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if client is self._client:
            log.warning("sink=mqtt endpoint=%s event=disconnected reason=%r", self.endpoint, str(reason))
            self._drop_connection(str(reason))

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Any
    ) -> None:
        future = self._pending.pop(mid, None)
        if future is None or future.done():
            return
        if reason.is_failure:
            future.set_exception(
                OutputError("mqtt", f"{self.endpoint}: broker refused message {mid}: {reason}")
            )
        else:
            future.set_result(None)

    # -- publishing --------------------------------------------------------------------------

    async def _acknowledged(self, mids: Sequence[int]) -> None:
        # a mid without a future was acknowledged before we asked (QoS 0, or a very fast broker)
        futures = [self._pending[mid] for mid in mids if mid in self._pending]
        async with asyncio.timeout(self.config.timeout_s):
            await asyncio.gather(*futures)

    async def write(self, batch: Sequence[Envelope]) -> None:
        client = self._client if self.connected else None
        if client is None:
            client = await self._connect()
        loop = asyncio.get_running_loop()
        mids = []
        # a record this topic style cannot carry (a tags record without a value UMH can store)
        # is delivered as nothing
        payloads = [(envelope, self.style.payload(envelope)) for envelope in batch]
        messages = [(self.style.topic(envelope), envelope, body) for envelope, body in payloads if body]
        retains = self.retained.flags([(topic, envelope) for topic, envelope, _ in messages])
        for (topic, _, payload), retain in zip(messages, retains, strict=True):
            info = client.publish(topic, payload, qos=self.config.qos, retain=retain)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                self._drop_connection(mqtt.error_string(info.rc))
                raise OutputError("mqtt", f"{self.endpoint}: publish failed: {mqtt.error_string(info.rc)}")
            if not info.is_published():
                self._pending[info.mid] = loop.create_future()
            mids.append(info.mid)
        try:
            await self._acknowledged(mids)
        except TimeoutError as error:
            self._drop_connection("acknowledgement timeout")
            raise OutputError(
                "mqtt", f"{self.endpoint}: no acknowledgement within {self.config.timeout_s}s"
            ) from error


__all__ = ["MqttSink", "RecordKind"]
