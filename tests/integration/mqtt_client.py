"""A test subscriber: a plain paho client on its own thread, collecting what the agent published."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def start_client(
    port: int,
    pattern: str,
    client_id: str,
    persistent: bool,
    on_message: Callable[[mqtt.Client, object, mqtt.MQTTMessage], None],
) -> mqtt.Client:
    """A paho client on its own thread, subscribed to `pattern` at QoS 1 at every (re)connect."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent, protocol=mqtt.MQTTv311
    )
    client.on_message = on_message
    client.on_connect = lambda client, *_: client.subscribe(pattern, qos=1)
    client.reconnect_delay_set(1, 1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


@dataclass
class Message:
    topic: str
    body: Any
    retain: bool


@dataclass
class Subscriber:
    port: int
    pattern: str
    client_id: str = ""
    persistent: bool = False  # keep the session (QoS 1 queue) across reconnects and broker restarts
    messages: list[Message] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Subscriber:
        self.client = start_client(self.port, self.pattern, self.client_id, self.persistent, self._on_message)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        text = message.payload.decode()
        try:
            body: Any = json.loads(text)
        except json.JSONDecodeError:
            body = text
        with self._lock:
            self.messages.append(Message(message.topic, body, bool(message.retain)))

    def snapshot(self) -> list[Message]:
        with self._lock:
            return list(self.messages)

    def wait_for(self, predicate: Any, timeout_s: float = 10.0) -> list[Message]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            messages = self.snapshot()
            if predicate(messages):
                return messages
            time.sleep(0.05)
        raise AssertionError(f"not received in {timeout_s}s; got {len(self.snapshot())} messages")
